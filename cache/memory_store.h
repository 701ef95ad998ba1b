#pragma once
// MemoryStore: the in-memory tier (L1) shared by every worker (style.md G2, §4.3).
//
// Layout: N shards (a power of two, picked by key hash), each {std::mutex, unordered_map<key,
// Entry>, EvictionPolicy}. The byte budget (`cache.memory`) is split evenly across shards and
// each shard evicts on its own, so no operation takes more than one lock (purge and stats visit
// the shards one after another). Every entry embeds its policy node (cache/eviction.h), so an
// object costs one map node and nothing else beyond the CachedObject it shares.
//
// Objects are immutable and shared (CachedObjectPtr): lookup copies a shared_ptr under the
// lock, never the body. Objects dropped by replace/evict/purge are released after the lock is
// let go, so freeing a large body never stalls other threads on the shard.
//
// Size limits: an object whose chargedBytes() exceeds `max_object` is refused (the pipeline
// streams such responses through uncached). Because each shard holds 1/N of the budget, the
// shard count is lowered (down to 1) until a shard holds at least kObjectsPerShardFloor
// max-size objects; if even one shard cannot hold max_object, the effective limit is the shard
// budget. maxObjectBytes() reports the effective limit.
//
// Thread: every public method is thread-safe (see cache/store.h).
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "cache/eviction.h"
#include "cache/store.h"

namespace portico::cache {

struct MemoryStoreOptions {
  std::uint64_t capacity_bytes = 256ull << 20;   // cache.memory
  std::uint64_t max_object_bytes = 16ull << 20;  // cache.max_object
  std::size_t shards = 16;                       // rounded down to a power of two, >= 1
  EvictionKind eviction = EvictionKind::S3Fifo;  // the winner of the Zipf simulation
  // Optional: the group a key belongs to (the server groups by site), for groupStats(). Must be
  // cheap and pure (it runs under a shard lock); returns a view into `key`, "" for no group.
  std::function<std::string_view(std::string_view key)> group_of;
};

// Per-group figures (groupStats()).
struct GroupStats {
  std::uint64_t objects = 0;    // gauge
  std::uint64_t bytes = 0;      // gauge: charged bytes
  std::uint64_t evictions = 0;  // counter
};

class MemoryStore final : public Store {
 public:
  static constexpr std::uint64_t kObjectsPerShardFloor = 4;

  explicit MemoryStore(const MemoryStoreOptions& options);
  ~MemoryStore() override;
  MemoryStore(const MemoryStore&) = delete;
  MemoryStore& operator=(const MemoryStore&) = delete;

  CachedObjectPtr lookup(std::string_view key) override;
  bool insert(std::string_view key, CachedObjectPtr object) override;
  bool remove(std::string_view key) override;
  std::size_t purgePrefix(std::string_view prefix) override;
  std::size_t removeIf(const RemovePredicate& pred) override;
  StoreStats stats() const override;
  // Objects, bytes and evictions by group (MemoryStoreOptions::group_of; empty without it).
  // Objects and bytes are counted by a scan, shard by shard under each lock: for metrics
  // scrapes, not for hot paths.
  std::map<std::string, GroupStats, std::less<>> groupStats() const;

  std::size_t shardCount() const { return shards_.size(); }
  std::uint64_t shardCapacity() const { return shard_capacity_; }
  std::uint64_t maxObjectBytes() const { return max_object_; }
  EvictionKind evictionKind() const { return kind_; }

 private:
  struct KeyHash {
    using is_transparent = void;
    std::size_t operator()(std::string_view k) const { return std::hash<std::string_view>{}(k); }
  };
  struct KeyEq {
    using is_transparent = void;
    bool operator()(std::string_view a, std::string_view b) const { return a == b; }
  };
  struct Entry {
    CachedObjectPtr object;
    EvictionNode node;  // node.key views this entry's map key
  };
  using Map = std::unordered_map<std::string, Entry, KeyHash, KeyEq>;
  struct Shard {
    mutable std::mutex mu;
    Map map;                                 // guarded by mu
    std::unique_ptr<EvictionPolicy> policy;  // guarded by mu
    StoreStats counters;                     // guarded by mu (objects/bytes/capacity unused)
    std::unordered_map<std::string, std::uint64_t, KeyHash, KeyEq> group_evictions;  // by mu
  };

  Shard& shardFor(std::string_view key);
  // Erases the victims the policy chose; their objects move to `released` (freed after unlock).
  // Returns true if `self` was among them. Caller holds s.mu.
  bool dropVictims(Shard& s, const std::vector<EvictionNode*>& victims, const EvictionNode* self,
                   std::vector<CachedObjectPtr>& released);
  template <typename Pred>
  std::size_t removeMatching(Pred&& pred);

  EvictionKind kind_;
  std::function<std::string_view(std::string_view)> group_of_;
  std::uint64_t capacity_;
  std::uint64_t shard_capacity_;
  std::uint64_t max_object_;
  std::size_t shard_mask_;
  std::vector<std::unique_ptr<Shard>> shards_;
};

}  // namespace portico::cache
