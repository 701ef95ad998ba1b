#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <cstdint>
#include <latch>
#include <limits>
#include <thread>
#include <vector>

#include "proxy/api/token_bucket.h"

namespace portico::proxy {
namespace {

constexpr std::int64_t kSecond = 1'000'000'000;
constexpr std::int64_t kT0 = 1'000 * kSecond;  // an arbitrary monotonic instant

// Takes until refused (bounded), returns how many were allowed.
int drain(TokenBucket& b, std::int64_t now, int limit = 100000) {
  int allowed = 0;
  while (allowed < limit && b.take(now).allowed) ++allowed;
  return allowed;
}

TEST(TokenBucket, StartsFullThenRefuses) {
  TokenBucket b(10, 5);
  for (int i = 0; i < 5; ++i) EXPECT_TRUE(b.take(kT0).allowed) << i;
  TokenBucket::Decision d = b.take(kT0);
  EXPECT_FALSE(d.allowed);
  EXPECT_EQ(d.retry_after_s, 1);
  EXPECT_FALSE(b.take(kT0).allowed);  // a refusal costs nothing, but gives nothing either
}

TEST(TokenBucket, GiveBackReturnsExactlyOneToken) {
  TokenBucket b(1.0, 2.0);
  EXPECT_TRUE(b.take(kT0).allowed);
  EXPECT_TRUE(b.take(kT0).allowed);
  EXPECT_FALSE(b.take(kT0).allowed);
  b.giveBack();  // the second request was refused elsewhere
  EXPECT_TRUE(b.take(kT0).allowed);
  EXPECT_FALSE(b.take(kT0).allowed);
  // A full bucket stays full: giving back the token of a take never adds one beyond the burst.
  TokenBucket full(1.0, 2.0);
  EXPECT_TRUE(full.take(kT0).allowed);
  full.giveBack();
  EXPECT_TRUE(full.take(kT0).allowed);
  EXPECT_TRUE(full.take(kT0).allowed);
  EXPECT_FALSE(full.take(kT0).allowed);
  // Quota mode (rate 0) too.
  TokenBucket quota(0.0, 1.0);
  EXPECT_TRUE(quota.take(kT0).allowed);
  quota.giveBack();
  EXPECT_TRUE(quota.take(kT0).allowed);
  EXPECT_FALSE(quota.take(kT0).allowed);
}

TEST(TokenBucket, AllowedDecisionHasNoRetryAfter) {
  TokenBucket b(1, 1);
  TokenBucket::Decision d = b.take(kT0);
  EXPECT_TRUE(d.allowed);
  EXPECT_EQ(d.retry_after_s, 0);
}

TEST(TokenBucket, RefillsOverInjectedTime) {
  TokenBucket b(10, 5);  // one token per 100 ms
  EXPECT_EQ(drain(b, kT0), 5);
  EXPECT_FALSE(b.take(kT0 + 99'999'999).allowed);
  EXPECT_TRUE(b.take(kT0 + 100'000'000).allowed);
  EXPECT_FALSE(b.take(kT0 + 100'000'000).allowed);
  // 350 ms later: 3 whole tokens back (the half token stays in the bucket).
  EXPECT_EQ(drain(b, kT0 + 450'000'000), 3);
  EXPECT_TRUE(b.take(kT0 + 500'000'000).allowed);  // the kept half + 50 ms = one token
}

TEST(TokenBucket, RefillNeverExceedsBurst) {
  TokenBucket b(1000, 20);
  EXPECT_EQ(drain(b, kT0), 20);
  EXPECT_EQ(drain(b, kT0 + 3600 * kSecond), 20);  // an hour idle refills only up to burst
}

TEST(TokenBucket, FractionalRate) {
  TokenBucket b(0.5, 1);  // one token every 2 s
  EXPECT_TRUE(b.take(kT0).allowed);
  TokenBucket::Decision d = b.take(kT0);
  EXPECT_FALSE(d.allowed);
  EXPECT_EQ(d.retry_after_s, 2);
  d = b.take(kT0 + kSecond);
  EXPECT_FALSE(d.allowed);
  EXPECT_EQ(d.retry_after_s, 1);
  EXPECT_FALSE(b.take(kT0 + 2 * kSecond - 1).allowed);
  EXPECT_TRUE(b.take(kT0 + 2 * kSecond).allowed);
}

TEST(TokenBucket, FractionalBurstHoldsOnlyWholeTokens) {
  TokenBucket b(1, 2.5);
  EXPECT_EQ(drain(b, kT0), 2);
  // The half token left means the next one is back after 0.5 s, not 1 s.
  EXPECT_FALSE(b.take(kT0 + kSecond / 2 - 1).allowed);
  EXPECT_TRUE(b.take(kT0 + kSecond / 2).allowed);
}

TEST(TokenBucket, RetryAfterIsCeilingOfSecondsUntilOneToken) {
  TokenBucket slow(0.1, 1);  // one token per 10 s
  ASSERT_TRUE(slow.take(kT0).allowed);
  EXPECT_EQ(slow.take(kT0).retry_after_s, 10);
  EXPECT_EQ(slow.take(kT0 + 1).retry_after_s, 10);  // 9.999999999 s -> 10
  EXPECT_EQ(slow.take(kT0 + kSecond).retry_after_s, 9);
  EXPECT_EQ(slow.take(kT0 + 9 * kSecond + 1).retry_after_s, 1);  // never 0 when refused

  TokenBucket fast(1000, 10);  // a token per ms: still at least 1 s
  ASSERT_EQ(drain(fast, kT0), 10);
  EXPECT_EQ(fast.take(kT0).retry_after_s, 1);
}

TEST(TokenBucket, RetryAfterIsForOneTokenNotAFullBucket) {
  // Refusals do not consume, so the wait is until ONE token is back, whatever the burst.
  TokenBucket b(1, 3);
  ASSERT_EQ(drain(b, kT0), 3);
  EXPECT_EQ(b.take(kT0).retry_after_s, 1);
  EXPECT_EQ(b.take(kT0 + kSecond).allowed, true);
  EXPECT_EQ(b.take(kT0 + kSecond).retry_after_s, 1);
}

TEST(TokenBucket, RateZeroIsAQuotaThatNeverRefills) {
  TokenBucket b(0, 3);
  EXPECT_EQ(drain(b, kT0), 3);
  TokenBucket::Decision d = b.take(kT0 + 1'000'000 * kSecond);
  EXPECT_FALSE(d.allowed);
  EXPECT_EQ(d.retry_after_s, TokenBucket::kNoRefillRetryAfterS);
}

TEST(TokenBucket, BurstBelowOneNeverAllows) {
  for (double burst : {0.0, 0.5, -3.0, std::nan("")}) {
    TokenBucket b(100, burst);
    TokenBucket::Decision d = b.take(kT0);
    EXPECT_FALSE(d.allowed) << burst;
    EXPECT_EQ(d.retry_after_s, TokenBucket::kNoRefillRetryAfterS) << burst;
    EXPECT_FALSE(b.take(kT0 + 1000 * kSecond).allowed) << burst;
  }
}

TEST(TokenBucket, NegativeAndNanSettingsReadAsZero) {
  TokenBucket b(-5, std::nan(""));
  EXPECT_EQ(b.rate(), 0);
  EXPECT_EQ(b.burst(), 0);
  EXPECT_FALSE(b.take(kT0).allowed);
}

TEST(TokenBucket, ExtremeSettingsAndTimesDoNotOverflow) {
  constexpr std::int64_t kMin = std::numeric_limits<std::int64_t>::min();
  constexpr std::int64_t kMax = std::numeric_limits<std::int64_t>::max();
  TokenBucket huge(std::numeric_limits<double>::infinity(), 1e300);  // 1 ns interval, capped
  EXPECT_TRUE(huge.take(kMin).allowed);
  EXPECT_TRUE(huge.take(kMax).allowed);

  TokenBucket tiny(1e-300, 1);  // interval clamped to 2^52 ns
  EXPECT_TRUE(tiny.take(kMax / 2).allowed);
  TokenBucket::Decision d = tiny.take(kMax / 2);
  EXPECT_FALSE(d.allowed);
  EXPECT_EQ(d.retry_after_s, ((std::int64_t{1} << 52) + kSecond - 1) / kSecond);
  d = tiny.take(kMin);  // time went far back: refused, saturated wait, no overflow
  EXPECT_FALSE(d.allowed);
  EXPECT_GE(d.retry_after_s, 1);
}

TEST(TokenBucket, TimeGoingBackwardsOnlyDelays) {
  TokenBucket b(1, 2);
  ASSERT_EQ(drain(b, kT0), 2);
  EXPECT_FALSE(b.take(kT0 - 10 * kSecond).allowed);
  TokenBucket::Decision d = b.take(kT0 - 10 * kSecond);
  EXPECT_EQ(d.retry_after_s, 11);
  EXPECT_TRUE(b.take(kT0 + kSecond).allowed);
}

TEST(TokenBucket, ManyThreadsNeverExceedBurstAtFixedTime) {
  constexpr int kThreads = 4;
  constexpr int kTakesPerThread = 10000;
  constexpr int kBurst = 1000;
  TokenBucket b(50, kBurst);
  std::atomic<int> allowed{0};
  std::atomic<int> refused_with_retry{0};
  std::latch start(kThreads);  // all threads race from the same instant
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      start.arrive_and_wait();
      for (int i = 0; i < kTakesPerThread; ++i) {
        TokenBucket::Decision d = b.take(kT0);
        if (d.allowed) {
          allowed.fetch_add(1, std::memory_order_relaxed);
        } else if (d.retry_after_s >= 1) {
          refused_with_retry.fetch_add(1, std::memory_order_relaxed);
        }
      }
    });
  }
  for (std::thread& th : threads) th.join();
  EXPECT_EQ(allowed.load(), kBurst);
  EXPECT_EQ(refused_with_retry.load(), kThreads * kTakesPerThread - kBurst);
}

TEST(TokenBucket, ManyThreadsWithAdvancingTimeStayWithinRatePlusBurst) {
  // Each thread walks its own clock over the same 10 s (interleavings reorder `now`, which only
  // makes the bucket stricter): the total can never exceed burst + rate * 10 s.
  constexpr int kThreads = 4;
  constexpr int kTakes = 10000;
  TokenBucket b(100, 50);
  std::atomic<int> allowed{0};
  std::latch start(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      start.arrive_and_wait();
      for (int i = 0; i < kTakes; ++i) {
        if (b.take(kT0 + static_cast<std::int64_t>(i) * (10 * kSecond / kTakes)).allowed) {
          allowed.fetch_add(1, std::memory_order_relaxed);
        }
      }
    });
  }
  for (std::thread& th : threads) th.join();
  EXPECT_LE(allowed.load(), 50 + 100 * 10);
  EXPECT_GE(allowed.load(), 50 + 100 * 9);  // and the refill is not lost under contention
}

TEST(TokenBuckets, SameSettingsKeepTheBucketAcrossReloads) {
  TokenBuckets buckets;
  const std::string key = TokenBuckets::bucketKey("billing", "prod", "GET /bill/{id}");
  TokenBucketPtr a = buckets.get(key, 10, 2);
  ASSERT_NE(a, nullptr);
  ASSERT_EQ(drain(*a, kT0), 2);
  TokenBucketPtr again = buckets.get(key, 10, 2);  // the reload kept (rate, burst)
  EXPECT_EQ(again, a);
  EXPECT_FALSE(again->take(kT0).allowed);  // not refilled by the reload
  EXPECT_EQ(buckets.size(), 1u);
}

TEST(TokenBuckets, ChangedSettingsReplaceTheBucket) {
  TokenBuckets buckets;
  TokenBucketPtr a = buckets.get("k", 10, 2);
  ASSERT_EQ(drain(*a, kT0), 2);
  TokenBucketPtr b = buckets.get("k", 10, 3);
  EXPECT_NE(b, a);
  EXPECT_EQ(b->burst(), 3);
  EXPECT_EQ(drain(*b, kT0), 3);  // a new bucket starts full
  TokenBucketPtr c = buckets.get("k", 20, 3);
  EXPECT_NE(c, b);
  EXPECT_EQ(c->rate(), 20);
  EXPECT_EQ(buckets.get("k", 20, 3), c);
  EXPECT_EQ(buckets.size(), 1u);
  EXPECT_FALSE(a->take(kT0).allowed);  // an old holder keeps a working bucket
}

TEST(TokenBuckets, DistinctKeysAreIndependentAndKeysDoNotCollide) {
  TokenBuckets buckets;
  EXPECT_NE(TokenBuckets::bucketKey("a", "bc", "d"), TokenBuckets::bucketKey("ab", "c", "d"));
  EXPECT_NE(TokenBuckets::bucketKey("a", "", "b"), TokenBuckets::bucketKey("a", "b", ""));
  TokenBucketPtr x = buckets.get(TokenBuckets::bucketKey("api", "prod", ""), 1, 1);
  TokenBucketPtr y = buckets.get(TokenBuckets::bucketKey("api", "dev", ""), 1, 1);
  EXPECT_NE(x, y);
  EXPECT_TRUE(x->take(kT0).allowed);
  EXPECT_TRUE(y->take(kT0).allowed);
  EXPECT_EQ(buckets.size(), 2u);
}

TEST(TokenBuckets, NanSettingsCompareEqualAfterSanitizing) {
  TokenBuckets buckets;
  TokenBucketPtr a = buckets.get("k", std::nan(""), 5);
  EXPECT_EQ(buckets.get("k", std::nan(""), 5), a);
  EXPECT_EQ(buckets.get("k", 0, 5), a);
}

TEST(TokenBuckets, RetainOnlyDropsRemovedKeys) {
  TokenBuckets buckets;
  TokenBucketPtr keep = buckets.get("keep", 1, 1);
  buckets.get("drop", 1, 1);
  buckets.retainOnly([](const std::string& key) { return key == "keep"; });
  EXPECT_EQ(buckets.size(), 1u);
  EXPECT_EQ(buckets.get("keep", 1, 1), keep);
}

TEST(TokenBuckets, ConcurrentGetsShareOneBucket) {
  TokenBuckets buckets;
  constexpr int kThreads = 4;
  std::vector<TokenBucketPtr> seen(kThreads);
  std::atomic<int> allowed{0};
  std::latch start(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      start.arrive_and_wait();
      for (int i = 0; i < 1000; ++i) {
        TokenBucketPtr b = buckets.get("stage", 1, 100);
        if (i == 0) seen[t] = b;
        if (b->take(kT0).allowed) allowed.fetch_add(1, std::memory_order_relaxed);
      }
    });
  }
  for (std::thread& th : threads) th.join();
  for (int t = 1; t < kThreads; ++t) EXPECT_EQ(seen[t], seen[0]);
  EXPECT_EQ(allowed.load(), 100);
}

}  // namespace
}  // namespace portico::proxy
