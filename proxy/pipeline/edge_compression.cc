#include "proxy/pipeline/edge_compression.h"

#include <optional>
#include <utility>

#include "cache/cache_key.h"
#include "proxy/compress/compressor.h"
#include "proxy/core/http_conditional.h"
#include "proxy/pipeline/cache_fill.h"

namespace portico::proxy {
namespace {

std::optional<std::string_view> acceptEncoding(const core::RequestHead& request,
                                               std::string& joined) {
  if (request.headers.count("accept-encoding") <= 1) return request.headers.get("accept-encoding");
  joined = *request.headers.getJoined("accept-encoding");
  return joined;
}

// The variant for `identity`: its head with the coding's fields, its meta, the given body.
// `out` empty: the identity bytes themselves (the coding saved nothing).
cache::CachedObjectPtr buildVariant(const cache::CachedObject& identity, ContentCoding coding,
                                    std::optional<std::string> out) {
  auto v = std::make_shared<cache::CachedObject>();
  v->head = identity.head;
  v->meta = identity.meta;
  addVaryAcceptEncoding(v->head.headers);
  if (out) {
    v->head.headers.set("Content-Encoding", codingToken(coding));
    v->head.headers.remove("content-length");
    // A different representation: its validator must not match the identity's strongly.
    if (!v->meta.etag.empty()) {
      v->meta.etag = weakenEtag(v->meta.etag);
      v->head.headers.set("ETag", v->meta.etag);
    }
    v->body = std::make_shared<const std::string>(std::move(*out));
  } else {
    v->body = identity.body;
  }
  return v;
}

struct CompressJob {
  uv_work_t req{};
  CacheRuntime* runtime = nullptr;
  cache::CachedObjectPtr identity;
  CompressionPlan plan;
  cache::LeaderToken token;
  std::weak_ptr<bool> alive;
  CompressedCallback done;
  std::optional<std::string> out;  // written on the pool thread, read after it finished
};

}  // namespace

CompressionPlan planCompression(const conf::Behavior& behavior, const core::RequestHead& request,
                                const cache::CachedObject& identity, std::string_view store_key) {
  CompressionPlan plan;
  if (!behavior.compress || !compressionApplies(identity.head, identity.bodySize())) return plan;
  plan.applies = true;
  if (request.headers.has("range")) return plan;
  std::string joined;
  plan.coding = negotiateCoding(acceptEncoding(request, joined));
  if (plan.coding == ContentCoding::Identity) return plan;
  plan.variant_key = store_key;
  plan.variant_key += kVariantSeparator;
  plan.variant_key += "ce=";
  plan.variant_key += codingToken(plan.coding);
  return plan;
}

bool compressAfterFill(const conf::Behavior& behavior, const core::RequestHead& request,
                       const core::ResponseHead& origin_head) {
  if (!behavior.compress || request.headers.has("range")) return false;
  auto length = core::contentLength(origin_head.headers);
  if (!length || !compressionApplies(origin_head, *length)) return false;
  std::string joined;
  return negotiateCoding(acceptEncoding(request, joined)) != ContentCoding::Identity;
}

cache::CachedObjectPtr findCompressed(cache::Store& store, const CompressionPlan& plan,
                                      const cache::CachedObject& identity) {
  if (plan.variant_key.empty()) return nullptr;
  cache::CachedObjectPtr v = store.lookup(plan.variant_key);
  if (!v || v->meta.request_time != identity.meta.request_time ||
      v->meta.response_time != identity.meta.response_time) {
    return nullptr;
  }
  return v;
}

void startCompression(uv_loop_t* loop, CacheRuntime& runtime, cache::CachedObjectPtr identity,
                      CompressionPlan plan, cache::LeaderToken token, std::weak_ptr<bool> alive,
                      CompressedCallback done) {
  auto job = std::make_unique<CompressJob>();
  job->runtime = &runtime;
  job->identity = std::move(identity);
  job->plan = std::move(plan);
  job->token = std::move(token);
  job->alive = std::move(alive);
  job->done = std::move(done);
  job->req.data = job.get();
  auto work = [](uv_work_t* req) {
    auto* j = static_cast<CompressJob*>(req->data);
    j->out = compressBody(j->plan.coding, j->identity->bodyView());
  };
  auto after = [](uv_work_t* req, int status) {
    std::unique_ptr<CompressJob> j(static_cast<CompressJob*>(req->data));
    std::optional<std::string> out;
    if (status == 0 && j->out && j->out->size() < j->identity->bodySize()) out = std::move(j->out);
    cache::CachedObjectPtr variant = buildVariant(*j->identity, j->plan.coding, std::move(out));
    j->runtime->store->insert(j->plan.variant_key, variant);
    j->token.complete(variant);
    auto a = j->alive.lock();
    if (a && *a) j->done(std::move(variant));
  };
  if (uv_queue_work(loop, &job->req, work, after) == 0) {
    job.release();  // owned by the thread pool until `after` runs
    return;
  }
  // Not queued (the loop is closing): nothing stored, followers fetch or serve on their own.
  job->token.giveUp(std::chrono::milliseconds(0));
  auto a = job->alive.lock();
  if (a && *a) job->done(nullptr);
}

}  // namespace portico::proxy
