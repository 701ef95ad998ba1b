#pragma once
// Store: the storage layer of the HTTP cache (style.md G2), a plain key -> CachedObject map.
// It never looks at a header: freshness, validation, Vary and coalescing live above it (Envoy:
// "the HttpCache only needs to support simple read/write operations").
//
// Keys are strings built by the caller (cache/cache_key.*), of the shape
//     site \x1f host \x1f path[?query] \x1e variant
// so that "every variant of a path", "everything under a path prefix" and "a whole site" are
// all key prefixes, and purgePrefix() serves all three.
//
// Contract for every implementation (the conformance suite in
// tests/unit/cache/store_conformance_test.cc checks it):
//  - Thread: every method may be called from any thread concurrently (all workers share one
//    memory tier). Methods are synchronous: they return the answer and call nothing back.
//    (The Redis tier is asynchronous by nature and gets its own adapter over this shape.)
//  - Objects are immutable and shared: lookup() hands out the stored CachedObjectPtr, never a
//    copy of the body; a reader keeps its object alive after it is replaced, purged or evicted.
//  - insert() takes a reference to the object and replaces any object under the same key.
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string_view>

#include "cache/cached_object.h"

namespace portico::cache {

struct StoreStats {
  std::uint64_t objects = 0;     // gauge: objects stored now
  std::uint64_t bytes = 0;       // gauge: sum of chargedBytes() of those
  std::uint64_t capacity = 0;    // the byte budget
  std::uint64_t hits = 0;        // lookups that found an object
  std::uint64_t misses = 0;      // lookups that did not
  std::uint64_t inserts = 0;     // objects admitted (replacements included)
  std::uint64_t rejections = 0;  // inserts refused: too big, or evicted by their own admission
  std::uint64_t evictions = 0;   // objects dropped to make room
  std::uint64_t removals = 0;    // objects dropped by remove() / purge / removeIf
};

class Store {
 public:
  virtual ~Store() = default;

  // The object under `key`, or null. Counts as an access for eviction.
  virtual CachedObjectPtr lookup(std::string_view key) = 0;

  // Stores `object` (non-null) under `key`, replacing what was there. Returns whether it was
  // admitted. A refused insert also drops any older object under `key` (it has been superseded
  // by the response being refused, so serving it would be serving an outdated answer).
  virtual bool insert(std::string_view key, CachedObjectPtr object) = 0;

  // Drops the object under `key`. Returns whether there was one.
  virtual bool remove(std::string_view key) = 0;

  // Drops every object whose key starts with `prefix` ("" empties the store). Returns the count.
  // Cost: a scan of all keys (MemoryStore: shard by shard, each under its lock, so other keys'
  // traffic waits only for one shard's scan at a time). Purges are rare admin operations; the
  // scan keeps the hot path free of any secondary index.
  virtual std::size_t purgePrefix(std::string_view prefix) = 0;

  // Drops every object for which `pred(key, object)` holds. Returns the count. `pred` runs with
  // a store lock held: it must be quick and must not call back into the store.
  using RemovePredicate = std::function<bool(std::string_view key, const CachedObject& object)>;
  virtual std::size_t removeIf(const RemovePredicate& pred) = 0;

  // A consistent-enough snapshot (each shard read under its lock, shards one after another).
  virtual StoreStats stats() const = 0;
};

}  // namespace portico::cache
