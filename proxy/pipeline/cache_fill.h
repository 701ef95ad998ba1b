#pragma once
// Filling the cache from an origin answer, shared by the request pipeline (misses and
// revalidations it leads) and by background refreshes (stale-while-revalidate).
//
// CacheFill lifecycle: begin() on the origin head decides storability (cache/policy.h) and,
// when storable, starts collecting -> append() per body chunk (gives up past the size limit)
// -> commit() on a complete body builds the immutable CachedObject and inserts it (with a Vary
// marker under the primary key when the response varies). Nothing is stored if the body was
// cut short: the owner simply never calls commit().
#include <chrono>
#include <memory>
#include <string>

#include "cache/cached_object.h"
#include "cache/coalescer.h"
#include "cache/policy.h"
#include "cache/store.h"
#include "conf/config.h"
#include "origin/origin_client.h"
#include "proxy/core/defer_queue.h"
#include "proxy/core/http_message.h"
#include "proxy/pipeline/cache_runtime.h"

namespace portico::proxy {

// How long an uncacheable answer is remembered (hit-for-miss): requests for that key skip the
// coalescing queue meanwhile (Varnish's default is 120 s; shorter here because a URL that turns
// cacheable is then cached sooner).
inline constexpr std::chrono::milliseconds kHitForMiss{10000};
// How long an object declared larger than cache.max_object is remembered as such: range and
// HEAD requests for it go straight to the origin meanwhile (a ranged GET, not the whole object).
inline constexpr std::chrono::milliseconds kTooLargeMemo{120000};

class CacheFill {
 public:
  // Whether the answer `origin_head` to `request` may be stored; if so, collecting starts.
  // `primary_key` is the request's primary key; the object goes to it, or to its variant key
  // when the answer carries Vary. `lifetime_override_s` >= 0 replaces the freshness lifetime
  // (error pages: ErrorPage::ttl_s).
  bool begin(const core::RequestHead& request, const core::ResponseHead& origin_head,
             const conf::Behavior& behavior, const cache::StaleDefaults& defaults,
             core::WallTime request_time, core::WallTime response_time,
             const std::string& primary_key, std::uint64_t max_object,
             std::int64_t lifetime_override_s = -1);
  // False once the body outgrew the limit (collecting stopped, nothing will be stored).
  bool append(std::string_view chunk);
  bool collecting() const { return collecting_; }
  cache::NoCacheReason reason() const { return reason_; }
  // The last begin() refused a storable answer only for its Content-Length above max_object.
  bool tooLarge() const { return too_large_; }
  // Builds and inserts the object; returns it (also when the store refused it).
  cache::CachedObjectPtr commit(cache::Store& store);
  const std::string& storeKey() const { return store_key_; }  // where commit() stores it
  void abandon() { collecting_ = false; body_.clear(); }

 private:
  bool collecting_ = false;
  bool too_large_ = false;
  cache::NoCacheReason reason_ = cache::NoCacheReason::None;
  std::string primary_key_;
  std::string store_key_;
  std::uint64_t limit_ = 0;
  core::ResponseHead head_;
  cache::ObjectMeta meta_;
  std::string body_;
};

// The variant key of `request` under a stored Vary marker / object with `vary` names.
std::string variantStoreKey(const std::string& primary_key, const std::vector<std::string>& vary,
                            const core::HeaderMap& request_headers);

// A 304 answer to a revalidation of `stale`: the refreshed object (new head and meta, the same
// shared body), inserted under `store_key`. Null if the 304 does not select the stored response
// or the merged response is not storable (the caller then fetches in full / drops the entry).
cache::CachedObjectPtr refreshNotModified(const cache::CachedObjectPtr& stale,
                                          const core::ResponseHead& not_modified,
                                          const core::RequestHead& request,
                                          const conf::Behavior& behavior,
                                          const cache::StaleDefaults& defaults,
                                          core::WallTime request_time,
                                          core::WallTime response_time, cache::Store& store,
                                          const std::string& store_key);

// A stale-while-revalidate refresh: one conditional origin request whose answer replaces the
// stale entry; nobody waits for it. Holds the coalescer's leader token for the key, so
// concurrent misses on it follow this fetch instead of starting their own. Owned by the
// worker's BackgroundJobs; removes itself (deferred) when done.
class BackgroundRefresh final : public BackgroundJob, private origin::ResponseSink {
 public:
  struct Params {
    CacheRuntime* runtime = nullptr;
    cache::Store* store = nullptr;  // where the key lives (the shared tier or a stage's own)
    core::DeferQueue* defer = nullptr;
    origin::OriginClient* origin = nullptr;
    origin::OriginRequest request;  // already carries the revalidation headers
    core::RequestHead client_head;  // the request that found the entry stale
    cache::CachedObjectPtr stale;
    std::string primary_key;
    std::string store_key;
    conf::Behavior behavior;
    cache::StaleDefaults defaults;
    cache::LeaderToken token;
    std::shared_ptr<const void> keep_alive;  // e.g. the snapshot the behavior points into
  };
  explicit BackgroundRefresh(Params params);
  ~BackgroundRefresh() override;
  void start();

 private:
  void onOriginHead(core::ResponseHead head) override;
  bool onOriginBody(std::string_view chunk) override;
  void onOriginDone(origin::FetchError error) override;
  void finishLater();

  Params p_;
  origin::FetchPtr fetch_;
  CacheFill fill_;
  core::WallTime request_time_;
  bool finished_ = false;
};

}  // namespace portico::proxy
