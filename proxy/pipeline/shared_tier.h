#pragma once
// The shared tier (L2): one Redis (or Redis Cluster) behind every edge's memory tier (L1).
//
//   request ──L1 miss──> lead the key (in-process coalescing, cache/coalescer.h)
//                          └─> L2 GET ──hit──> L1 fill, served ("Hit from portico")
//                                 └─miss──> cross-edge lock (SET NX PX) ──won──> origin fetch
//                                              │                                  └─> L1 + L2 fill,
//                                              │                                      lock released
//                                              └─held by another edge──> poll L2 (bounded wait),
//                                                                        then fetch anyway
//
// Keys. An object stored in L1 under store key K (cache_runtime.h: primary, or primary +
// variant) lives in Redis under "ptc:" + G + "|" + K, where G is the purge generation of K's
// scope (a site: "site|<name>|", an API stage: "api|<api>|<stage>|"). Vary markers are stored
// too (markerBytes()), so an edge follows them like its L1 does. Values are
// cache/object_codec.h bytes with `SET ... PX <remaining freshness + stale allowance>`; objects
// above cache.redis_max_object stay in L1 only.
//
// Purges without scanning Redis: a purge of a site (whole or some paths) or a stage flush INCRs
// "ptc:gen:<scope>" and publishes the new generation on kPurgeChannel; every edge adopts it (its
// next keys name the new generation, so older entries are unreachable and expire by their TTL)
// and drops the purged objects from its own L1. A path purge therefore retires the scope's whole
// L2 content (L1s stay precise); edges poll the generations every second as well, so one that
// missed a message (pub/sub has no replay) is back in step within a second.
//
// Failure never reaches a client: until the generations are loaded, and while the main thread's
// connection is down, the tier is skipped (no per-request timeouts while Redis is away); a
// failed, timed-out or garbage reply is a miss; writes are fire-and-forget.
//
// Threads: SharedTierState is shared by the main thread (generations, purges) and the workers
// (key building, counters); it is internally synchronised. SharedTier is one worker's: its
// loop's thread only.
#include <uv.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "cache/cached_object.h"
#include "cache/redis_client.h"
#include "cache/store.h"
#include "proxy/core/header_map.h"

namespace portico::proxy {

inline constexpr const char* kPurgeChannel = "ptc:purge";
// The cross-edge fill lock lives this long unless released; waiters poll for at most kLockWaitMs
// (every kLockPollMs) before fetching on their own.
inline constexpr std::uint64_t kLockTtlMs = 5000;
inline constexpr std::uint64_t kLockWaitMs = 2000;
inline constexpr std::uint64_t kLockPollMs = 20;

// The purge scope of a store key: "site|<name>|" or "api|<api>|<stage>|" (escapes kept), ""
// for anything else.
std::string_view scopeOfKey(std::string_view store_key);

// Vary markers in Redis (the codec refuses status 0): "PTCV" 0x01, the marker's since time in
// unix ms as decimal, then "\n<name>" per Vary name.
std::string markerBytes(const cache::CachedObject& marker);
cache::CachedObjectPtr markerFromBytes(std::string_view bytes);  // null when not a marker

// How long Redis keeps `object` (ms): its remaining freshness plus the longer of its
// stale-while-revalidate / stale-if-error allowances; 0 = not worth writing.
std::uint64_t sharedTtlMs(const cache::ObjectMeta& meta, core::WallTime now);

class SharedTierState {
 public:
  SharedTierState(cache::RedisOptions options, bool cluster, std::uint64_t max_object);

  // A new executor for `loop` (RedisClient, or a RedisCluster seeded with the URL's node).
  // Call on the loop's thread.
  std::unique_ptr<cache::RedisExecutor> connect(uv_loop_t* loop) const;
  std::uint64_t maxObject() const { return max_object_; }
  const std::string& nodeId() const { return node_id_; }

  // False until the generations were loaded, and while the main thread cannot reach Redis.
  bool ready() const { return ready_.load(std::memory_order_acquire); }
  void setReady(bool ready) { ready_.store(ready, std::memory_order_release); }

  // The Redis key of store key `key` under its scope's current generation.
  std::string redisKey(std::string_view key) const;
  std::string generation(std::string_view scope) const;
  // From a pub/sub message or an INCR reply: adopted at once.
  void setGeneration(std::string_view scope, std::string generation);
  // From a poll issued when updateCount() was `seen`: adopted only if no message came since
  // (a poll answered before a purge must not bring the old generation back).
  void pollGeneration(std::string_view scope, std::string generation, std::uint64_t seen);
  std::uint64_t updateCount() const;

  struct Counters {
    std::atomic<std::uint64_t> hits{0}, misses{0}, errors{0}, timeouts{0}, writes{0},
        too_large{0}, skipped{0}, skipped_lookups{0};
  };
  Counters counters;
  std::atomic<std::uint64_t> reconnects{0};  // summed over the workers' connections when they end

 private:
  cache::RedisOptions options_;
  bool cluster_;
  std::uint64_t max_object_;
  std::string node_id_;
  std::atomic<bool> ready_{false};
  mutable std::mutex mutex_;
  std::map<std::string, std::string, std::less<>> generations_;  // scope -> generation
  std::uint64_t updates_ = 0;
};

class SharedTier {
 public:
  SharedTier(uv_loop_t* loop, SharedTierState& state);
  ~SharedTier();

  // Whether a request should consult the tier now (ready, and this worker's connection up).
  bool usable() const;
  // A lookup that did not consult the tier because it was not usable (metrics).
  void countSkippedLookup() { state_.counters.skipped_lookups.fetch_add(1, std::memory_order_relaxed); }

  struct Found {
    cache::CachedObjectPtr object;  // null: miss (or any failure)
    cache::CachedObjectPtr marker;  // the Vary marker followed to find it, if any
    std::string store_key;          // where `object` belongs in L1
  };
  // Looks `primary_key` up, following a Vary marker with `request_headers`. `cb` exactly once,
  // on the loop, never inside lookup(); not called if the tier is destroyed first.
  void lookup(const std::string& primary_key, const core::HeaderMap& request_headers,
              std::function<void(Found)> cb);

  enum class Lock { Acquired, Busy, Pass, Unavailable };
  // Tries to take the cross-edge fill lock of `primary_key` (SET NX PX ... GET): Acquired, Busy
  // (another edge fetches it), Pass (its last answer was not storable: fetch without waiting),
  // Unavailable (no answer). Same callback contract as lookup().
  void lock(const std::string& primary_key, std::function<void(Lock)> cb);
  void unlock(const std::string& primary_key);
  // Drops the key (an unsafe method invalidated it, RFC 9111 §4.4): the object, or the Vary
  // marker (its variants are then unreachable: a new marker is newer than all of them).
  void remove(const std::string& primary_key);
  // Marks the key's lock "pass" for `ttl_ms`: other edges fetch it without waiting.
  void pass(const std::string& primary_key, std::uint64_t ttl_ms);

  // Writes `object` (and the Vary marker it was stored behind, if any) with its remaining
  // lifetime as TTL. Fire-and-forget; false when it was not sent (tier unusable, object above
  // redis_max_object, or no lifetime left).
  bool write(const std::string& primary_key, const std::string& store_key,
             const cache::CachedObject& object, const cache::CachedObject* marker, core::WallTime now);

 private:
  void get(std::string key, std::function<void(cache::RedisReply)> cb);
  void count(const cache::RedisReply& reply);

  SharedTierState& state_;
  std::unique_ptr<cache::RedisExecutor> redis_;
  std::uint64_t reconnects_seen_ = 0;
};

// Writes `object`, just stored in L1 `store` under `store_key`, to L2 through `shared` (no-op
// when null), with the Vary marker L1 holds for `primary_key`. Returns SharedTier::write's answer.
bool shareStoredObject(SharedTier* shared, cache::Store& store, const std::string& primary_key,
                       const std::string& store_key, const cache::CachedObjectPtr& object);

}  // namespace portico::proxy
