#pragma once
// RequestPipeline: the per-request state machine (style.md G3). One instance per request,
// created by the worker when a head is complete, owned and destroyed by the connection.
//
//   Route ──> Respond                      (mock route, routing error, bad path, 405)
//     ├────> Lookup ──> Respond            (fresh hit, or stale-while-revalidate: serve stored)
//     │        ├──────> AwaitLeader        (another request is fetching this key: follow it)
//     │        ├──────> Shared ──> Respond (we lead the key and the shared tier has it)
//     │        │          └──────> Fetch   (L2 miss: after the cross-edge lock, shared_tier.h)
//     │        │           ├──> Respond    (the leader stored an object)
//     │        │           └──> Fetch      (promoted, released, timed out: fetch ourselves)
//     │        └──────> Fetch              (miss, or stale: revalidate; we may lead the key)
//     └────> Fetch ──> Respond             (origin head arrived; body streams through and is
//              │                            collected for the cache when storable)
//              ├────> Fill ──> Respond     (the client asked for a range or a condition: the
//              │                            whole body is stored first, then served from it)
//              └────> ErrorPage ──> Respond (site origin answered a status that has an error page)
//   (Lookup | AwaitLeader | Fill) ──> Compress ──> Respond
//                                          (a stored object this client gets gzip/br of: the
//                                           variant is made once, on the thread pool, or
//                                           awaited from the request making it)
//   Respond ──> Done                       (response ended or aborted)
//
// Every transition goes through transition(from, to), which checks the source phase.
// Only site GET/HEAD requests use the cache (cache/policy.h decides); everything else streams
// through, and unsafe methods invalidate what they target (RFC 9111 §4.4).
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "cache/cache_status.h"
#include "cache/cached_object.h"
#include "cache/coalescer.h"
#include "cache/policy.h"
#include "conf/route_table.h"
#include "origin/origin_client.h"
#include "proxy/core/clock.h"
#include "proxy/core/uv_util.h"
#include "proxy/core/block_cache.h"
#include "proxy/h1/http1_connection.h"
#include "proxy/pipeline/cache_fill.h"
#include "proxy/pipeline/edge_compression.h"
#include "proxy/pipeline/pipeline_context.h"
#include "proxy/pipeline/shared_tier.h"

namespace portico::proxy {

class RequestPipeline final : public RequestHandler, private origin::ResponseSink {
 public:
  RequestPipeline(PipelineContext& ctx, Exchange& exchange, const RequestFraming& framing);
  ~RequestPipeline() override;  // cancels the fetch, writes the access-log line and metrics

  // One per request and above malloc's thread cache: its memory is recycled per thread.
  static void* operator new(std::size_t n) { return core::BlockCache<RequestPipeline>::take(n); }
  static void operator delete(void* p, std::size_t n) noexcept {
    core::BlockCache<RequestPipeline>::give(p, n);
  }

  // Routes the request and starts answering it. Called once, right after construction.
  void start();

  // RequestHandler
  void onRequestBody(std::string_view chunk) override;
  void onRequestComplete() override;
  void onWritable() override;

 private:
  enum class Phase { Route, Lookup, AwaitLeader, Shared, Fetch, Fill, ErrorPage, Compress, Respond, Done };
  static std::string_view toString(Phase p);
  void transition(Phase from, Phase to);

  // origin::ResponseSink
  void onOriginHead(core::ResponseHead head) override;
  bool onOriginBody(std::string_view chunk) override;
  void onOriginDone(origin::FetchError error) override;
  void onRequestBodyDrained() override;

  void routeSite(const std::string& decoded_path);
  void routeApi();
  bool beginApiCache();  // true: the cache took the request
  // Builds cache_request_ for an API route (event fields, stage variables); false (fetch_error_
  // set) when a stage variable is missing.
  bool prepareApiRequest();
  const std::string& apiLabels() const;                // api="..",stage=".." (metrics)
  void respondNoContent(const core::HeaderMap* extra);
  void startFetch(std::string_view origin_name, origin::OriginRequest request);
  void startErrorPage();
  // `extra` (moved from) opens the head; the api's CORS headers and Content-Type follow.
  void respond(int status, std::string_view content_type, std::string_view body,
               core::HeaderMap* extra = nullptr);
  void respondApiError(int status, std::string_view message, std::string_view error_type);
  void respondOriginError(origin::FetchError error);
  void sendOriginHead(core::ResponseHead head);
  void finish();

  // ---- cache (see the phase diagram) ----
  // True if the request goes through the cache (the lookup has then run).
  bool beginCache(origin::OriginRequest& request);
  void lookup();
  void joinFlight();
  void onFlightResult(cache::WaitResult result);
  void fetchForCache();
  // The shared tier (L2), for the leader of a key L1 cannot answer.
  void sharedLookup();
  void onSharedFound(SharedTier::Found found);
  void onSharedLock(SharedTier::Lock lock);
  // Writes a stored object to L2 and releases the cross-edge lock.
  void shareStored(const cache::CachedObjectPtr& object, const std::string& store_key);
  // Releases the cross-edge lock (`pass`: the answer was not storable: others fetch at once).
  void releaseSharedLock(bool pass);
  // The client's own request (its Range, conditions and method) to the origin, outside the
  // cache: for keys known not to be stored (hit-for-miss, or larger than cache.max_object),
  // where fetching the whole object to answer a range or a HEAD would be waste.
  void fetchUncached();
  // Serves a stored object, or its compressed variant (edge compression) when the behavior
  // compresses and the client accepts one.
  void serveStored(const cache::CachedObjectPtr& object, cache::CacheStatus status);
  void sendStored(const cache::CachedObjectPtr& object, cache::CacheStatus status,
                  bool vary_accept_encoding);
  void beginCompression(const cache::CachedObjectPtr& identity, cache::CacheStatus status,
                        CompressionPlan plan);
  void runCompression(cache::LeaderToken token);
  void onCompressFlight(cache::WaitResult result);
  void onCompressed(const cache::CachedObjectPtr& variant);
  void startBackgroundRefresh(const cache::CachedObjectPtr& stale);
  // The cache's part of an origin head; false when the head was consumed (answered from a
  // stored object).
  bool cacheOriginHead(core::ResponseHead& head);
  bool finishFlight(origin::FetchError error);  // true: the request was answered here
  void invalidateAfterUnsafe(const core::ResponseHead& head);
  cache::StaleDefaults staleDefaults() const;
  void countCache(std::string_view what);

  PipelineContext& ctx_;
  Exchange& ex_;
  WorkerViewPtr view_;
  RequestFraming framing_;
  Phase phase_ = Phase::Route;
  conf::RouteMatch match_;
  origin::FetchPtr fetch_;
  origin::OriginClient* origin_ = nullptr;
  std::string origin_name_;
  const conf::ErrorPage* error_page_ = nullptr;
  int error_status_ = 0;
  bool forward_body_ = false;
  bool ignore_origin_ = false;  // the current fetch was superseded (error page)
  std::shared_ptr<bool> alive_;

  // For the access log and metrics.
  core::MonoTime started_;
  core::MonoTime fetch_started_;
  std::optional<double> origin_ms_;
  int status_ = 0;
  std::uint64_t body_in_ = 0;
  std::uint64_t body_out_ = 0;
  std::string kind_ = "none";
  std::string name_;
  std::string stage_;
  mutable std::string api_labels_;  // apiLabels(), once made
  std::string fetch_error_;
  std::string cache_status_ = "bypass";

  // Cache state (site GET/HEAD only).
  CacheRuntime* cache_ = nullptr;
  const conf::Behavior* behavior_ = nullptr;  // the site's behavior, or api_behavior_
  cache::Store* store_ = nullptr;             // the shared tier, or the stage's own store
  conf::Behavior api_behavior_;               // cache::apiStageBehavior() of an API request
  core::HeaderMap api_headers_;               // added to every API answer (CORS, Warning)
  std::optional<std::map<std::string, std::string>> api_claims_;  // the authorizer's
  bool api_request_ready_ = true;             // false: cache_request_ still to be built
  origin::OriginRequest cache_request_;  // the origin request, kept to fetch after a lookup
  std::string primary_key_;              // "" when the request bypasses the cache
  std::string flight_key_;               // the key coalesced on (primary, or its variant)
  bool may_store_ = false;               // request no-store: look up but never store
  bool serve_after_fill_ = false;        // Range / conditional on a miss: store, then serve
  bool refetched_uncached_ = false;      // fetchUncached() ran once (never twice)
  int lookups_ = 0;                      // lookups so far (bounded: followers look again)
  cache::CachedObjectPtr stale_;         // the entry being revalidated
  cache::CachedObjectPtr serving_;       // the stored object being sent (backpressure)
  std::uint64_t serve_offset_ = 0;
  std::uint64_t serve_end_ = 0;
  cache::LeaderToken leader_;
  bool shared_lock_held_ = false;        // we hold the cross-edge fill lock of primary_key_
  core::MonoTime shared_wait_until_{};   // while the lock is busy: poll L2 until then
  cache::WaiterHandle waiter_;
  std::unique_ptr<core::Timer> wait_timer_;
  CacheFill fill_;
  core::WallTime request_time_{};
  cache::CacheStatus xcache_ = cache::CacheStatus::Miss;
  // Edge compression (Compress phase): the identity object, how it was found, the plan.
  cache::CachedObjectPtr compress_identity_;
  cache::CacheStatus compress_status_ = cache::CacheStatus::Miss;
  CompressionPlan compress_plan_;
};

}  // namespace portico::proxy
