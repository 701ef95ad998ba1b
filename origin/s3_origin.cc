#include "origin/s3_origin.h"

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstdlib>
#include <string_view>
#include <utility>

#include "origin/http_origin.h"

namespace portico::origin {
namespace {

constexpr std::array<std::string_view, 5> kForwarded = {"Range", "If-Match", "If-None-Match",
                                                        "If-Modified-Since", "If-Unmodified-Since"};

std::string fromEnv(const std::string& name) {
  if (name.empty()) return {};
  const char* v = std::getenv(name.c_str());
  return v == nullptr ? std::string() : std::string(v);
}

}  // namespace

S3OriginClient::S3OriginClient(CurlMulti& multi, conf::S3Origin cfg)
    : multi_(multi),
      cfg_(std::move(cfg)),
      access_key_(fromEnv(cfg_.access_key_env)),
      secret_key_(fromEnv(cfg_.secret_key_env)) {}

std::string S3OriginClient::objectUrl(const std::string& path) const {
  return joinUrl(joinUrl(cfg_.endpoint, "/" + cfg_.bucket, ""), path, "");
}

FetchPtr S3OriginClient::fetch(OriginRequest request, ResponseSink& sink) {
  HttpFetchSpec spec;
  spec.url = objectUrl(request.path);
  spec.method = request.head.isHead() ? "HEAD" : "GET";
  for (std::string_view name : kForwarded) {
    for (std::string_view v : request.head.headers.getAll(name)) spec.headers.add(name, v);
  }
  spec.headers.add("x-amz-content-sha256", kEmptyPayloadSha256);
  spec.timeout_ms = cfg_.timeout_ms;
  spec.connect_timeout_ms = std::min<std::uint64_t>(cfg_.timeout_ms, 2000);
  if (signs()) {
    spec.aws_sigv4 = "aws:amz:" + cfg_.region + ":s3";
    spec.aws_access_key = access_key_;
    spec.aws_secret_key = secret_key_;
  }
  return startHttpFetch(multi_, std::move(spec), sink);
}

}  // namespace portico::origin
