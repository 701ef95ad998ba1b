#include "origin/origin_factory.h"

#include <memory>
#include <type_traits>
#include <variant>

#include "origin/dir_origin.h"
#include "origin/http_origin.h"
#include "origin/lambda_origin.h"
#include "origin/s3_origin.h"

namespace portico::origin {

OriginClientPtr makeOriginClient(const conf::OriginConfig& cfg, const OriginContext& ctx) {
  return std::visit(
      [&](const auto& spec) -> OriginClientPtr {
        using T = std::decay_t<decltype(spec)>;
        if constexpr (std::is_same_v<T, conf::DirOrigin>) {
          return std::make_unique<DirOriginClient>(ctx.loop, spec);
        } else if constexpr (std::is_same_v<T, conf::HttpOrigin>) {
          if (ctx.curl == nullptr) return nullptr;
          return std::make_unique<HttpOriginClient>(*ctx.curl, spec);
        } else if constexpr (std::is_same_v<T, conf::LambdaOrigin>) {
          if (ctx.curl == nullptr) return nullptr;
          return std::make_unique<LambdaOriginClient>(ctx.loop, *ctx.curl, spec);
        } else {
          static_assert(std::is_same_v<T, conf::S3Origin>);
          if (ctx.curl == nullptr) return nullptr;
          return std::make_unique<S3OriginClient>(*ctx.curl, spec);
        }
      },
      cfg.spec);
}

}  // namespace portico::origin
