// One conformance suite for every cache::Store (style.md G2; Envoy's
// HttpCacheImplementationTest TEST_P over delegates). MemoryStore with each eviction policy
// now; the Redis and tiered stores add an instantiation here (skipping without redis-server).
#include <gtest/gtest.h>

#include <functional>
#include <memory>
#include <string>

#include "cache/memory_store.h"
#include "cache/store.h"

namespace portico::cache {
namespace {

struct StoreFactory {
  std::string name;
  // A store with room for at least 100 objects of 1 KiB and max_object >= 64 KiB.
  std::function<std::unique_ptr<Store>()> make;
};

CachedObjectPtr makeObject(std::string body, int status = 200) {
  auto o = std::make_shared<CachedObject>();
  o->head.status = status;
  o->head.headers.add("Content-Type", "text/plain");
  o->head.headers.add("ETag", "\"v1\"");
  o->body = std::make_shared<const std::string>(std::move(body));
  o->meta.etag = "\"v1\"";
  o->meta.freshness_lifetime_s = 60;
  return o;
}

// Keys shaped as cache/store.h describes: site \x1f host \x1f path?query \x1e variant.
std::string key(const std::string& site, const std::string& path, const std::string& variant = "") {
  return site + "\x1f" + "h.test\x1f" + path + "\x1e" + variant;
}

class StoreConformanceTest : public ::testing::TestWithParam<StoreFactory> {
 protected:
  void SetUp() override { store_ = GetParam().make(); }
  std::unique_ptr<Store> store_;
};

TEST_P(StoreConformanceTest, MissThenInsertThenHit) {
  EXPECT_EQ(store_->lookup(key("s", "/a")), nullptr);
  ASSERT_TRUE(store_->insert(key("s", "/a"), makeObject("hello")));
  CachedObjectPtr got = store_->lookup(key("s", "/a"));
  ASSERT_NE(got, nullptr);
  EXPECT_EQ(*got->body, "hello");
  EXPECT_EQ(got->head.status, 200);
  EXPECT_EQ(got->head.headers.get("etag").value_or(""), "\"v1\"");
  EXPECT_EQ(got->meta.freshness_lifetime_s, 60);
  StoreStats st = store_->stats();
  EXPECT_EQ(st.objects, 1u);
  EXPECT_EQ(st.hits, 1u);
  EXPECT_EQ(st.misses, 1u);
  EXPECT_EQ(st.inserts, 1u);
  EXPECT_EQ(st.bytes, got->chargedBytes());
}

TEST_P(StoreConformanceTest, KeysAreExactNotPrefixes) {
  ASSERT_TRUE(store_->insert(key("s", "/a"), makeObject("a")));
  EXPECT_EQ(store_->lookup(key("s", "/a").substr(0, 5)), nullptr);
  EXPECT_EQ(store_->lookup(key("s", "/a", "gzip")), nullptr);
  EXPECT_EQ(store_->lookup(key("s", "/ab")), nullptr);
}

TEST_P(StoreConformanceTest, InsertReplaces) {
  ASSERT_TRUE(store_->insert(key("s", "/a"), makeObject("old")));
  CachedObjectPtr reader = store_->lookup(key("s", "/a"));
  ASSERT_TRUE(store_->insert(key("s", "/a"), makeObject("new!")));
  EXPECT_EQ(*store_->lookup(key("s", "/a"))->body, "new!");
  EXPECT_EQ(*reader->body, "old");  // a reader keeps what it got
  StoreStats st = store_->stats();
  EXPECT_EQ(st.objects, 1u);
  EXPECT_EQ(st.bytes, makeObject("new!")->chargedBytes());
}

TEST_P(StoreConformanceTest, NullInsertIsRefused) {
  EXPECT_FALSE(store_->insert(key("s", "/a"), nullptr));
  EXPECT_EQ(store_->lookup(key("s", "/a")), nullptr);
}

TEST_P(StoreConformanceTest, RemoveDropsOneKey) {
  ASSERT_TRUE(store_->insert(key("s", "/a"), makeObject("a")));
  ASSERT_TRUE(store_->insert(key("s", "/b"), makeObject("b")));
  EXPECT_TRUE(store_->remove(key("s", "/a")));
  EXPECT_FALSE(store_->remove(key("s", "/a")));
  EXPECT_EQ(store_->lookup(key("s", "/a")), nullptr);
  EXPECT_NE(store_->lookup(key("s", "/b")), nullptr);
  StoreStats st = store_->stats();
  EXPECT_EQ(st.objects, 1u);
  EXPECT_EQ(st.removals, 1u);
}

TEST_P(StoreConformanceTest, PurgeAllVariantsOfAPath) {
  for (const char* v : {"", "br", "gzip"}) ASSERT_TRUE(store_->insert(key("s", "/a", v), makeObject(v)));
  ASSERT_TRUE(store_->insert(key("s", "/ab"), makeObject("ab")));
  ASSERT_TRUE(store_->insert(key("s", "/a?x=1"), makeObject("q")));
  // Exact path, all variants: the prefix ends at the variant separator.
  EXPECT_EQ(store_->purgePrefix("s\x1fh.test\x1f/a\x1e"), 3u);
  EXPECT_EQ(store_->lookup(key("s", "/a", "br")), nullptr);
  EXPECT_NE(store_->lookup(key("s", "/ab")), nullptr);
  EXPECT_NE(store_->lookup(key("s", "/a?x=1")), nullptr);
  EXPECT_EQ(store_->purgePrefix("s\x1fh.test\x1f/a\x1e"), 0u);
}

TEST_P(StoreConformanceTest, PurgeTrailingStarPrefixAndWholeSite) {
  for (const char* p : {"/img/a.png", "/img/b.png", "/img/sub/c.png", "/index.html"})
    ASSERT_TRUE(store_->insert(key("s", p), makeObject(p)));
  ASSERT_TRUE(store_->insert(key("s2", "/img/a.png"), makeObject("other site")));
  // "/img/*" -> prefix "/img/"
  EXPECT_EQ(store_->purgePrefix("s\x1fh.test\x1f/img/"), 3u);
  EXPECT_NE(store_->lookup(key("s", "/index.html")), nullptr);
  // A whole site; "s" must not take "s2" with it, hence the separator.
  EXPECT_EQ(store_->purgePrefix("s\x1f"), 1u);
  EXPECT_NE(store_->lookup(key("s2", "/img/a.png")), nullptr);
  EXPECT_EQ(store_->stats().objects, 1u);
  EXPECT_EQ(store_->purgePrefix(""), 1u);
  EXPECT_EQ(store_->stats().objects, 0u);
  EXPECT_EQ(store_->stats().bytes, 0u);
}

TEST_P(StoreConformanceTest, RemoveIfSeesKeyAndObject) {
  ASSERT_TRUE(store_->insert(key("s", "/ok"), makeObject("ok", 200)));
  ASSERT_TRUE(store_->insert(key("s", "/gone"), makeObject("gone", 404)));
  ASSERT_TRUE(store_->insert(key("s", "/gone2"), makeObject("gone", 404)));
  EXPECT_EQ(store_->removeIf([](std::string_view, const CachedObject& o) { return o.head.status == 404; }),
            2u);
  EXPECT_EQ(store_->removeIf([](std::string_view k, const CachedObject&) {
              return k.find("/ok") != std::string_view::npos;
            }),
            1u);
  EXPECT_EQ(store_->stats().objects, 0u);
  EXPECT_EQ(store_->removeIf(nullptr), 0u);
}

TEST_P(StoreConformanceTest, BinaryKeysAndBodiesRoundTrip) {
  const std::string k = std::string("s\x1fh\x1f/\0bin", 9) + "\x1e" + "v";
  const std::string body("\0\x01\xff body", 8);
  ASSERT_TRUE(store_->insert(k, makeObject(body)));
  ASSERT_NE(store_->lookup(k), nullptr);
  EXPECT_EQ(*store_->lookup(k)->body, body);
}

TEST_P(StoreConformanceTest, ManyObjectsAllRetrievableWithinCapacity) {
  for (int i = 0; i < 100; ++i)
    ASSERT_TRUE(store_->insert(key("s", "/o" + std::to_string(i)), makeObject(std::string(1024, 'a'))));
  for (int i = 0; i < 100; ++i)
    EXPECT_NE(store_->lookup(key("s", "/o" + std::to_string(i))), nullptr) << i;
  StoreStats st = store_->stats();
  EXPECT_EQ(st.objects, 100u);
  EXPECT_EQ(st.evictions, 0u);
  EXPECT_LE(st.bytes, st.capacity);
}

std::unique_ptr<Store> memoryStore(EvictionKind kind) {
  MemoryStoreOptions o;
  o.capacity_bytes = 16ull << 20;
  o.max_object_bytes = 1ull << 20;
  o.eviction = kind;
  return std::make_unique<MemoryStore>(o);
}

INSTANTIATE_TEST_SUITE_P(
    Stores, StoreConformanceTest,
    ::testing::Values(StoreFactory{"MemoryLru", [] { return memoryStore(EvictionKind::Lru); }},
                      StoreFactory{"MemoryS3Fifo", [] { return memoryStore(EvictionKind::S3Fifo); }}),
    [](const ::testing::TestParamInfo<StoreFactory>& info) { return info.param.name; });

}  // namespace
}  // namespace portico::cache
