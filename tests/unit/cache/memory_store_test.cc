// MemoryStore specifics beyond the Store conformance suite: sharing without copies, the byte
// budget, the size limit, shard sizing and thread safety.
#include "cache/memory_store.h"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <thread>
#include <vector>

namespace portico::cache {
namespace {

CachedObjectPtr makeObject(std::size_t body_bytes, char fill = 'x') {
  auto o = std::make_shared<CachedObject>();
  o->head.headers.add("Content-Type", "application/octet-stream");
  o->body = std::make_shared<const std::string>(body_bytes, fill);
  return o;
}

MemoryStoreOptions options(std::uint64_t capacity, std::uint64_t max_object, std::size_t shards,
                           EvictionKind kind) {
  MemoryStoreOptions o;
  o.capacity_bytes = capacity;
  o.max_object_bytes = max_object;
  o.shards = shards;
  o.eviction = kind;
  return o;
}

class MemoryStoreTest : public ::testing::TestWithParam<EvictionKind> {};

TEST_P(MemoryStoreTest, LookupSharesTheObjectAndBodyWithoutCopying) {
  MemoryStore store(options(1 << 20, 64 << 10, 4, GetParam()));
  CachedObjectPtr obj = makeObject(1000);
  ASSERT_TRUE(store.insert("k", obj));
  CachedObjectPtr a = store.lookup("k");
  CachedObjectPtr b = store.lookup("k");
  EXPECT_EQ(a.get(), obj.get());
  EXPECT_EQ(b.get(), obj.get());
  EXPECT_EQ(a->body.get(), obj->body.get());  // the very same bytes
}

TEST_P(MemoryStoreTest, ObjectsOverMaxObjectAreRefusedAndSupersedeTheOldOne) {
  MemoryStore store(options(1 << 20, 4096, 4, GetParam()));
  ASSERT_TRUE(store.insert("k", makeObject(1000)));
  EXPECT_FALSE(store.insert("k", makeObject(5000)));
  EXPECT_EQ(store.lookup("k"), nullptr);  // the older answer is outdated now
  EXPECT_FALSE(store.insert("k2", makeObject(4096)));  // chargedBytes() > body size
  StoreStats st = store.stats();
  EXPECT_EQ(st.rejections, 2u);
  EXPECT_EQ(st.objects, 0u);
  EXPECT_EQ(st.bytes, 0u);
}

TEST(MemoryStoreSizingTest, ShardsShrinkSoEachHoldsSeveralMaxObjects) {
  MemoryStore a(options(256ull << 20, 16ull << 20, 16, EvictionKind::S3Fifo));
  EXPECT_EQ(a.shardCount(), 4u);  // 64 MiB shards hold 4 x 16 MiB
  EXPECT_EQ(a.maxObjectBytes(), 16ull << 20);
  MemoryStore b(options(256ull << 20, 1ull << 20, 16, EvictionKind::S3Fifo));
  EXPECT_EQ(b.shardCount(), 16u);
  MemoryStore c(options(1 << 20, 4 << 20, 16, EvictionKind::S3Fifo));
  EXPECT_EQ(c.shardCount(), 1u);
  EXPECT_EQ(c.maxObjectBytes(), 1u << 20);  // cannot exceed what a shard holds
  MemoryStore d(options(1 << 20, 1024, 12, EvictionKind::S3Fifo));
  EXPECT_EQ(d.shardCount(), 8u);  // rounded down to a power of two
  EXPECT_EQ(d.shardCapacity(), (1u << 20) / 8);
  MemoryStore zero(options(0, 1024, 4, EvictionKind::S3Fifo));
  EXPECT_FALSE(zero.insert("k", makeObject(1)));
}

TEST_P(MemoryStoreTest, ByteBudgetHoldsUnderChurnAndEvictionsAreCounted) {
  const std::uint64_t capacity = 200 << 10;
  MemoryStore store(options(capacity, 8 << 10, 4, GetParam()));
  const int n = 2000;
  for (int i = 0; i < n; ++i) store.insert("k" + std::to_string(i), makeObject(700 + (i % 7) * 300));
  StoreStats st = store.stats();
  EXPECT_LE(st.bytes, capacity);
  EXPECT_GT(st.bytes, capacity / 2);
  EXPECT_GT(st.evictions, 0u);
  EXPECT_EQ(st.inserts + st.rejections, static_cast<std::uint64_t>(n));
  EXPECT_EQ(st.objects, st.inserts - st.evictions);
  // The objects counted are the objects findable, and their bytes are the bytes counted.
  std::uint64_t found = 0, bytes = 0;
  for (int i = 0; i < n; ++i) {
    if (auto o = store.lookup("k" + std::to_string(i))) {
      ++found;
      bytes += o->chargedBytes();
    }
  }
  EXPECT_EQ(found, st.objects);
  EXPECT_EQ(bytes, st.bytes);
}

TEST_P(MemoryStoreTest, ReaderKeepsAnEvictedObjectAliveAndTheStoreLetsGo) {
  MemoryStore store(options(64 << 10, 8 << 10, 1, GetParam()));
  CachedObjectPtr held = makeObject(1000, 'f');  // what a reader that got it holds
  ASSERT_TRUE(store.insert("first", held));
  // No lookups while filling (a hit would keep it); the store's reference is the second one.
  for (int i = 0; i < 500 && held.use_count() > 1; ++i)
    store.insert("filler" + std::to_string(i), makeObject(1000));
  EXPECT_EQ(held.use_count(), 1) << "never evicted";  // the store dropped its reference
  EXPECT_EQ(store.lookup("first"), nullptr);
  EXPECT_EQ(*held->body, std::string(1000, 'f'));
}

TEST_P(MemoryStoreTest, ReplacingKeepsOneEntryAndAccountsTheNewSize) {
  MemoryStore store(options(1 << 20, 64 << 10, 2, GetParam()));
  ASSERT_TRUE(store.insert("k", makeObject(1000)));
  ASSERT_TRUE(store.insert("k", makeObject(3000)));
  StoreStats st = store.stats();
  EXPECT_EQ(st.objects, 1u);
  EXPECT_EQ(st.bytes, makeObject(3000)->chargedBytes());
  EXPECT_EQ(st.inserts, 2u);
}

// Two threads hammer overlapping keys with lookups, inserts, removes and purges while the
// budget forces evictions. Afterwards the books must balance (ASan/TSan builds run this too).
TEST_P(MemoryStoreTest, ConcurrentUseKeepsTheAccountsConsistent) {
  const std::uint64_t capacity = 100 << 10;
  MemoryStore store(options(capacity, 4 << 10, 4, GetParam()));
  auto work = [&store](unsigned seed) {
    std::mt19937 rng(seed);
    std::uniform_int_distribution<int> key(0, 299), op(0, 99), size(100, 3000);
    for (int i = 0; i < 20000; ++i) {
      const std::string k = "s\x1f" "h\x1f/" + std::to_string(key(rng));
      const int o = op(rng);
      if (o < 60) {
        if (auto obj = store.lookup(k)) {
          ASSERT_FALSE(obj->body->empty());
        }
      } else if (o < 95) {
        store.insert(k, makeObject(static_cast<std::size_t>(size(rng))));
      } else if (o < 99) {
        store.remove(k);
      } else {
        store.purgePrefix("s\x1fh\x1f/1");
      }
    }
  };
  std::thread t1(work, 1u), t2(work, 2u);
  t1.join();
  t2.join();
  StoreStats st = store.stats();
  EXPECT_LE(st.bytes, capacity);
  std::uint64_t found = 0, bytes = 0;
  for (int i = 0; i < 300; ++i) {
    if (auto o = store.lookup("s\x1fh\x1f/" + std::to_string(i))) {
      ++found;
      bytes += o->chargedBytes();
    }
  }
  EXPECT_EQ(found, st.objects);
  EXPECT_EQ(bytes, st.bytes);
}

INSTANTIATE_TEST_SUITE_P(Policies, MemoryStoreTest,
                         ::testing::Values(EvictionKind::Lru, EvictionKind::S3Fifo),
                         [](const ::testing::TestParamInfo<EvictionKind>& info) {
                           return std::string(toString(info.param));
                         });

}  // namespace
}  // namespace portico::cache
