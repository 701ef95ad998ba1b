// Purge matching over real site keys in a real MemoryStore (no mocks): exact paths, trailing '*'
// prefixes, whole sites, variants, and keys of other sites / APIs left alone.
#include "proxy/pipeline/cache_runtime.h"

#include <gtest/gtest.h>

#include "cache/cache_key.h"
#include "cache/memory_store.h"
#include "proxy/pipeline/cache_fill.h"

namespace portico::proxy {
namespace {

cache::CachedObjectPtr object(std::string body) {
  auto o = std::make_shared<cache::CachedObject>();
  o->body = std::make_shared<const std::string>(std::move(body));
  return o;
}

std::string siteKey(const std::string& site, const std::string& host, const std::string& path,
                    const std::string& query = "") {
  conf::Site s;
  s.name = site;
  conf::Behavior b;
  core::RequestHead r;
  r.method = "GET";
  r.authority = host;
  r.path = path;
  r.query = query;
  return cache::sitePrimaryKey(s, b, r);
}

class PurgeTest : public ::testing::Test {
 protected:
  PurgeTest() : store_(cache::MemoryStoreOptions{}) {
    for (const char* p : {"/a.html", "/a.html2", "/images/1.png", "/images/sub/2.png", "/b|c"}) {
      store_.insert(siteKey("www", "example.test", p), object(p));
    }
    store_.insert(siteKey("www", "example.test", "/a.html", "x=1"), object("q"));
    store_.insert(siteKey("www", "other.test", "/a.html"), object("other host"));
    store_.insert(siteKey("docs", "docs.test", "/a.html"), object("docs"));
    core::HeaderMap h;
    h.add("Accept-Encoding", "gzip");
    std::string primary = siteKey("www", "example.test", "/v.txt");
    store_.insert(primary, makeVaryMarker({"accept-encoding"}));
    store_.insert(variantStoreKey(primary, {"accept-encoding"}, h), object("gz"));
    store_.insert("api|billing|prod|/bill/{id}|p:id=1", object("api"));
  }
  cache::MemoryStore store_;
};

TEST_F(PurgeTest, ExactPathRemovesEveryHostButNotTheQueryVariant) {
  EXPECT_EQ(purgeSite(store_, "www", {"/a.html"}), 2u);  // both hosts of the site
  EXPECT_FALSE(store_.lookup(siteKey("www", "example.test", "/a.html")));
  EXPECT_TRUE(store_.lookup(siteKey("www", "example.test", "/a.html", "x=1")));
  EXPECT_TRUE(store_.lookup(siteKey("www", "example.test", "/a.html2")));
  EXPECT_TRUE(store_.lookup(siteKey("docs", "docs.test", "/a.html")));
}

TEST_F(PurgeTest, TrailingStarIsAPrefix) {
  EXPECT_EQ(purgeSite(store_, "www", {"/images/*"}), 2u);
  EXPECT_EQ(purgeSite(store_, "www", {"/a.html*"}), 4u);  // a.html x2 hosts, ?x=1, a.html2
}

TEST_F(PurgeTest, VariantsGoWithTheirPath) {
  EXPECT_EQ(purgeSite(store_, "www", {"/v.txt"}), 2u);  // the marker and the variant
}

TEST_F(PurgeTest, EscapedSeparatorsInPathsStillMatch) {
  EXPECT_EQ(purgeSite(store_, "www", {"/b|c"}), 1u);
}

TEST_F(PurgeTest, WholeSiteLeavesOtherSitesAndApis) {
  EXPECT_EQ(purgeSite(store_, "www", {}), 9u);  // 5 paths, ?x=1, other host, marker, variant
  EXPECT_TRUE(store_.lookup(siteKey("docs", "docs.test", "/a.html")));
  EXPECT_TRUE(store_.lookup("api|billing|prod|/bill/{id}|p:id=1"));
  EXPECT_EQ(purgeSite(store_, "nosuch", {}), 0u);
}

TEST(SplitSiteKey, RejectsNonSiteKeys) {
  std::string site, pq;
  EXPECT_FALSE(splitSiteKey("api|billing|prod|/x|", site, pq));
  EXPECT_FALSE(splitSiteKey("site|www", site, pq));
  EXPECT_FALSE(splitSiteKey("", site, pq));
  ASSERT_TRUE(splitSiteKey(siteKey("www", "h", "/p", "a=1"), site, pq));
  EXPECT_EQ(site, "www");
  EXPECT_EQ(pq, "/p?a=1");
}

TEST(BackgroundJobs, DoneDestroysTheJob) {
  struct Job : BackgroundJob {
    explicit Job(bool& gone) : gone_(gone) {}
    ~Job() override { gone_ = true; }
    bool& gone_;
  };
  bool gone = false;
  BackgroundJobs jobs;
  BackgroundJob* j = jobs.adopt(std::make_unique<Job>(gone));
  EXPECT_EQ(jobs.size(), 1u);
  jobs.done(j);
  EXPECT_TRUE(gone);
  EXPECT_EQ(jobs.size(), 0u);
  jobs.done(j);  // unknown now: ignored
}

}  // namespace
}  // namespace portico::proxy

namespace portico::proxy {
namespace {

TEST(SiteOfKey, NamesTheSiteOfSiteKeysOnly) {
  EXPECT_EQ(siteOfKey(siteKey("www", "h", "/p")), "www");
  EXPECT_EQ(siteOfKey("api|billing|prod|/x"), "");
  EXPECT_EQ(siteOfKey("site|unterminated"), "");
  EXPECT_EQ(siteOfKey(""), "");
}

TEST(GroupStats, ObjectsBytesAndEvictionsBySite) {
  cache::MemoryStoreOptions options;
  options.capacity_bytes = 64 * 1024;
  options.max_object_bytes = 8 * 1024;
  options.shards = 1;
  options.group_of = &siteOfKey;
  cache::MemoryStore store(options);
  for (int i = 0; i < 3; ++i) store.insert(siteKey("docs", "d", "/" + std::to_string(i)), object("d"));
  store.insert("api|billing|prod|/bill", object("api"));  // no group
  auto before = store.groupStats();
  ASSERT_EQ(before.size(), 1u);
  EXPECT_EQ(before["docs"].objects, 3u);
  EXPECT_GT(before["docs"].bytes, 3u * 640);
  EXPECT_EQ(before["docs"].evictions, 0u);
  // Fill far past the budget with "www" objects: "docs" objects get evicted along the way.
  for (int i = 0; i < 200; ++i) {
    store.insert(siteKey("www", "w", "/" + std::to_string(i)), object(std::string(2000, 'w')));
  }
  auto after = store.groupStats();
  const cache::StoreStats total = store.stats();
  // The API key belongs to no site: it is in the totals only (stored, or evicted by now).
  const std::uint64_t api_left = store.lookup("api|billing|prod|/bill") ? 1 : 0;
  EXPECT_EQ(after["www"].objects + after["docs"].objects, total.objects - api_left);
  EXPECT_EQ(after["www"].evictions + after["docs"].evictions, total.evictions - (1 - api_left));
  EXPECT_GT(after["www"].evictions, 0u);
  EXPECT_LE(after["www"].bytes + after["docs"].bytes, options.capacity_bytes);
}

}  // namespace
}  // namespace portico::proxy
