// The shared tier's pure parts: purge scopes of real keys, Vary markers in Redis (round trip and
// hostile bytes), the Redis TTL of an object, and the generation bookkeeping that keeps a poll
// answered before a purge from bringing the old generation back.
#include "proxy/pipeline/shared_tier.h"

#include <gtest/gtest.h>

#include "cache/cache_key.h"
#include "proxy/pipeline/cache_runtime.h"

namespace portico::proxy {
namespace {

using namespace std::chrono_literals;

std::string siteKey(const std::string& site, const std::string& path) {
  conf::Site s;
  s.name = site;
  conf::Behavior b;
  b.path = "/img/*";
  core::RequestHead r;
  r.method = "GET";
  r.authority = "a|b.test";  // escaped in the key: must not end the scope early
  r.path = path;
  return cache::sitePrimaryKey(s, b, r);
}

TEST(SharedTierScope, SiteAndStageKeys) {
  EXPECT_EQ(scopeOfKey(siteKey("shop", "/img/a.png")), cache::sitePrefix("shop"));
  EXPECT_EQ(scopeOfKey(siteKey("shop", "/img/a.png") + kVariantSeparator + "gzip"), cache::sitePrefix("shop"));
  EXPECT_EQ(scopeOfKey(cache::apiStagePrefix("billing", "prod") + "/items|m:GET"),
            cache::apiStagePrefix("billing", "prod"));
  // Escaped separators inside a name stay inside it.
  EXPECT_EQ(scopeOfKey(cache::sitePrefix("we|ird") + "rest"), cache::sitePrefix("we|ird"));
  EXPECT_EQ(scopeOfKey("garbage"), "");
  EXPECT_EQ(scopeOfKey("site|unterminated"), "");
  EXPECT_EQ(scopeOfKey("api|only|"), "");
}

TEST(SharedTierMarker, RoundTrip) {
  const core::WallTime since{std::chrono::milliseconds(1700000000123)};
  cache::CachedObjectPtr marker = makeVaryMarker({"accept-encoding", "x-tenant"}, since);
  const std::string bytes = markerBytes(*marker);
  cache::CachedObjectPtr back = markerFromBytes(bytes);
  ASSERT_TRUE(back);
  EXPECT_TRUE(isVaryMarker(*back));
  EXPECT_EQ(back->meta.vary, marker->meta.vary);
  EXPECT_EQ(back->meta.response_time, since);
}

TEST(SharedTierMarker, RefusesGarbage) {
  const std::string magic("PTCV\x01", 5);
  for (const std::string& bad :
       {std::string(), std::string("PTC\x01"), magic, magic + "12", magic + "x\naccept", magic + "-5\naccept",
        magic + "12\n", magic + "12\nAccept", magic + "12\nbad name", magic + "12\na\n\nb",
        magic + "12\na\r\nb", magic + "99999999999999999999999\na"}) {
    EXPECT_FALSE(markerFromBytes(bad)) << bad;
  }
  std::string many = magic + "1";
  for (int i = 0; i < 100; ++i) many += "\nh" + std::to_string(i);
  EXPECT_FALSE(markerFromBytes(many));
}

TEST(SharedTierTtl, RemainingFreshnessPlusStaleAllowance) {
  const core::WallTime t0{std::chrono::seconds(1700000000)};
  cache::ObjectMeta m;
  m.request_time = m.response_time = t0;
  m.freshness_lifetime_s = 60;
  EXPECT_EQ(sharedTtlMs(m, t0), 60000u);
  EXPECT_EQ(sharedTtlMs(m, t0 + 20s), 40000u);
  EXPECT_EQ(sharedTtlMs(m, t0 + 60s), 0u);  // expired: not written
  m.stale_while_revalidate_s = 30;
  m.stale_if_error_s = 100;
  EXPECT_EQ(sharedTtlMs(m, t0 + 20s), 140000u);  // the longer allowance
  m.must_revalidate = true;                      // never served stale: no allowance
  EXPECT_EQ(sharedTtlMs(m, t0 + 20s), 40000u);
  m.must_revalidate = false;
  m.no_cache = true;  // every use revalidates: not worth sharing
  EXPECT_EQ(sharedTtlMs(m, t0), 0u);
}

TEST(SharedTierState, GenerationsAndKeys) {
  SharedTierState state(cache::RedisOptions{}, false, 1 << 20);
  EXPECT_FALSE(state.ready());
  EXPECT_EQ(state.nodeId().size(), 16u);
  const std::string key = siteKey("shop", "/img/a.png");
  EXPECT_EQ(state.redisKey(key), "ptc:0|" + key);
  state.setGeneration(cache::sitePrefix("shop"), "7");
  EXPECT_EQ(state.redisKey(key), "ptc:7|" + key);
  // Other scopes keep theirs.
  const std::string api = cache::apiStagePrefix("billing", "prod") + "/x";
  EXPECT_EQ(state.redisKey(api), "ptc:0|" + api);
}

TEST(SharedTierState, PollAnsweredBeforeAPurgeDoesNotWin) {
  SharedTierState state(cache::RedisOptions{}, false, 1 << 20);
  const std::string scope = cache::sitePrefix("shop");
  const std::uint64_t seen = state.updateCount();  // a poll goes out
  state.setGeneration(scope, "8");                 // a purge message arrives meanwhile
  state.pollGeneration(scope, "7", seen);          // the poll's (older) answer
  EXPECT_EQ(state.generation(scope), "8");
  // A poll issued after the message is adopted (e.g. Redis was flushed: generations restart).
  state.pollGeneration(scope, "0", state.updateCount());
  EXPECT_EQ(state.generation(scope), "0");
}

}  // namespace
}  // namespace portico::proxy
