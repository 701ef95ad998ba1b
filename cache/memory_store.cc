#include "cache/memory_store.h"

#include <algorithm>
#include <utility>

namespace portico::cache {

namespace {
std::size_t floorPow2(std::size_t n) {
  std::size_t p = 1;
  while (p * 2 <= n) p *= 2;
  return p;
}
}  // namespace

MemoryStore::MemoryStore(const MemoryStoreOptions& options)
    : kind_(options.eviction), group_of_(options.group_of), capacity_(options.capacity_bytes) {
  std::size_t n = floorPow2(std::max<std::size_t>(options.shards, 1));
  // A shard must hold several max-size objects, or one big object would flush a whole shard
  // (and one bigger than a shard could never be stored).
  while (n > 1 && capacity_ / n < kObjectsPerShardFloor * options.max_object_bytes) n /= 2;
  shard_capacity_ = capacity_ / n;
  max_object_ = std::min(options.max_object_bytes, shard_capacity_);
  shard_mask_ = n - 1;
  shards_.reserve(n);
  for (std::size_t i = 0; i < n; ++i) {
    auto s = std::make_unique<Shard>();
    s->policy = makeEvictionPolicy(kind_, shard_capacity_);
    shards_.push_back(std::move(s));
  }
}

MemoryStore::~MemoryStore() = default;

MemoryStore::Shard& MemoryStore::shardFor(std::string_view key) {
  // The map re-hashes within the shard with a prime bucket count, so reusing the low bits of
  // the same hash here does not cluster keys inside a shard.
  return *shards_[KeyHash{}(key) & shard_mask_];
}

CachedObjectPtr MemoryStore::lookup(std::string_view key) {
  Shard& s = shardFor(key);
  std::lock_guard<std::mutex> lock(s.mu);
  auto it = s.map.find(key);
  if (it == s.map.end()) {
    ++s.counters.misses;
    return nullptr;
  }
  ++s.counters.hits;
  s.policy->access(&it->second.node);
  return it->second.object;
}

bool MemoryStore::dropVictims(Shard& s, const std::vector<EvictionNode*>& victims,
                              const EvictionNode* self, std::vector<CachedObjectPtr>& released) {
  bool self_dropped = false;
  for (EvictionNode* v : victims) {
    if (v == self) {
      self_dropped = true;
    } else {
      ++s.counters.evictions;
      if (group_of_) {
        std::string_view group = group_of_(v->key);
        if (!group.empty()) {
          auto g = s.group_evictions.find(group);
          if (g == s.group_evictions.end()) g = s.group_evictions.emplace(std::string(group), 0).first;
          ++g->second;
        }
      }
    }
    auto it = s.map.find(v->key);  // v->key views it->first: look up before erasing
    released.push_back(std::move(it->second.object));
    s.map.erase(it);
  }
  return self_dropped;
}

bool MemoryStore::insert(std::string_view key, CachedObjectPtr object) {
  if (object == nullptr) return false;
  const std::uint64_t bytes = object->chargedBytes();
  std::vector<CachedObjectPtr> released;  // destroyed after the lock is released
  released.push_back(std::move(object));  // [0]: the new object until it is placed
  Shard& s = shardFor(key);
  std::lock_guard<std::mutex> lock(s.mu);
  auto it = s.map.find(key);
  if (bytes > max_object_) {
    ++s.counters.rejections;
    if (it != s.map.end()) {
      ++s.counters.removals;
      s.policy->remove(&it->second.node);
      released.push_back(std::move(it->second.object));
      s.map.erase(it);
    }
    return false;
  }
  std::vector<EvictionNode*> victims;
  EvictionNode* self;
  if (it != s.map.end()) {
    std::swap(it->second.object, released[0]);  // the old object is released instead
    self = &it->second.node;
    s.policy->update(self, bytes, victims);
  } else {
    it = s.map.try_emplace(std::string(key)).first;
    it->second.object = std::move(released[0]);
    self = &it->second.node;
    self->key = it->first;
    s.policy->admit(self, bytes, victims);
  }
  const bool self_dropped = dropVictims(s, victims, self, released);
  if (self_dropped) {
    ++s.counters.rejections;
    return false;
  }
  ++s.counters.inserts;
  return true;
}

bool MemoryStore::remove(std::string_view key) {
  CachedObjectPtr released;
  Shard& s = shardFor(key);
  std::lock_guard<std::mutex> lock(s.mu);
  auto it = s.map.find(key);
  if (it == s.map.end()) return false;
  ++s.counters.removals;
  s.policy->remove(&it->second.node);
  released = std::move(it->second.object);
  s.map.erase(it);
  return true;
}

template <typename Pred>
std::size_t MemoryStore::removeMatching(Pred&& pred) {
  std::size_t count = 0;
  for (auto& sp : shards_) {
    Shard& s = *sp;
    std::vector<CachedObjectPtr> released;
    std::lock_guard<std::mutex> lock(s.mu);
    for (auto it = s.map.begin(); it != s.map.end();) {
      if (pred(std::string_view(it->first), *it->second.object)) {
        s.policy->remove(&it->second.node);
        released.push_back(std::move(it->second.object));
        it = s.map.erase(it);
        ++count;
        ++s.counters.removals;
      } else {
        ++it;
      }
    }
    // `lock` is destroyed before `released` (reverse declaration order): bodies are freed
    // with the shard already unlocked.
  }
  return count;
}

std::size_t MemoryStore::purgePrefix(std::string_view prefix) {
  return removeMatching([prefix](std::string_view key, const CachedObject&) {
    return key.substr(0, prefix.size()) == prefix;
  });
}

std::size_t MemoryStore::removeIf(const RemovePredicate& pred) {
  if (!pred) return 0;
  return removeMatching(pred);
}

std::map<std::string, GroupStats, std::less<>> MemoryStore::groupStats() const {
  std::map<std::string, GroupStats, std::less<>> out;
  if (!group_of_) return out;
  for (const auto& sp : shards_) {
    const Shard& s = *sp;
    std::lock_guard<std::mutex> lock(s.mu);
    for (const auto& [key, entry] : s.map) {
      std::string_view group = group_of_(key);
      if (group.empty()) continue;
      auto g = out.find(group);
      if (g == out.end()) g = out.emplace(std::string(group), GroupStats{}).first;
      ++g->second.objects;
      g->second.bytes += entry.node.bytes;
    }
    for (const auto& [group, n] : s.group_evictions) out[group].evictions += n;
  }
  return out;
}

StoreStats MemoryStore::stats() const {
  StoreStats out;
  out.capacity = capacity_;
  for (const auto& sp : shards_) {
    const Shard& s = *sp;
    std::lock_guard<std::mutex> lock(s.mu);
    out.objects += s.map.size();
    out.bytes += s.policy->bytes();
    out.hits += s.counters.hits;
    out.misses += s.counters.misses;
    out.inserts += s.counters.inserts;
    out.rejections += s.counters.rejections;
    out.evictions += s.counters.evictions;
    out.removals += s.counters.removals;
  }
  return out;
}

}  // namespace portico::cache
