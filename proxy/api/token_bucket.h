#pragma once
// Request throttling for API stages and routes (API Gateway's "rate" and "burst"): a token
// bucket that refills `rate` tokens per second up to `burst`, and a process-wide registry that
// keeps buckets across conf reloads.
//
// Implementation: GCRA (the generic cell rate algorithm of ITU-T I.371, as in redis-cell). It is
// exactly a token bucket, but its whole state is ONE 64-bit number, the "theoretical arrival
// time" (TAT): the instant at which the bucket would be full again. A take at `now` is allowed
// iff  max(TAT, now) + interval - now <= capacity,  where interval = 1e9 / rate nanoseconds (the
// time one token takes to come back) and capacity = burst * interval. Because the state is one
// word, take() is a lock-free compare-and-swap loop on a std::atomic<int64_t>:
// no mutex, no torn reads, and contention costs one retried CAS.
//
// Precision: the interval is rounded UP to whole nanoseconds, so a bucket never admits more than
// `rate` per second; the error is < 1 ns per token (rate 3/s admits 2.99999999 tokens per second).
// Rates above 1e9/s are treated as 1e9/s; rates below one token per 2^52 ns (~52 days) as one
// per 2^52 ns; the capacity is capped at 2^61 ns of refill (~73 years).
//
// Edge cases (conf/ rejects both, so they only reach here through direct use):
//   - rate <= 0 (or NaN): no refill. The bucket is a quota: floor(burst) requests in total,
//     then refused forever with retry_after_s = kNoRefillRetryAfterS.
//   - burst < 1 (or NaN): the bucket can never hold a whole token: every take is refused,
//     retry_after_s = kNoRefillRetryAfterS.
// NOTE conf::Throttle documents rate 0 as "unlimited": that is the caller's decision (no bucket
// at all), not this class's.
#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

namespace portico::proxy {

// One token bucket shared by every worker thread of a stage (or route). Starts full.
// Thread-safe: take() may be called concurrently from any thread (lock-free CAS loop, see above).
// Time is passed in (monotonic nanoseconds) so tests use no clock and no sleeps. A `now` that
// goes backwards is harmless: it only makes the bucket look emptier until time catches up.
class TokenBucket {
 public:
  // Retry-After for a token that will never come back (rate 0, or burst < 1): one day, so that
  // well-behaved clients stop hammering.
  static constexpr std::int64_t kNoRefillRetryAfterS = 86400;

  struct Decision {
    bool allowed;
    // >= 1 when refused: whole seconds until one token is back (rounded up); 0 when allowed.
    std::int64_t retry_after_s;
  };

  TokenBucket(double rate, double burst);
  TokenBucket(const TokenBucket&) = delete;
  TokenBucket& operator=(const TokenBucket&) = delete;

  // Takes one token at `now_ns` if there is one. Never blocks.
  Decision take(std::int64_t now_ns);
  // Returns a token take() gave (the request was refused by another bucket after all). Only
  // after an allowed take(): the TAT never moves below where that take found it.
  void giveBack();

  // The settings as constructed (NaN and negative values read as 0).
  double rate() const { return rate_; }
  double burst() const { return burst_; }

  // Negative and NaN settings read as 0 (what the constructor stores, and what
  // TokenBuckets::get compares against).
  static double sanitize(double v) { return v > 0 ? v : 0; }

 private:
  enum class Mode { Rate, Quota, Never };

  Decision takeRate(std::int64_t now_ns);
  Decision takeQuota();

  const double rate_;
  const double burst_;
  Mode mode_ = Mode::Rate;
  std::int64_t interval_ns_ = 0;  // Rate mode: ns for one token to come back (>= 1)
  std::int64_t capacity_ns_ = 0;  // Rate mode: burst * interval (>= interval)
  std::int64_t quota_ = 0;        // Quota mode: floor(burst)
  // Rate mode: the TAT (INT64_MIN until the first take: "full since forever").
  // Quota mode: tokens taken so far.
  std::atomic<std::int64_t> state_;
};

using TokenBucketPtr = std::shared_ptr<TokenBucket>;

// Buckets live as long as the process, and survive conf reloads when (key, rate, burst) are
// unchanged, so a SIGHUP does not refill everybody's bucket. The key names the scope; build it
// with bucketKey() so that distinct (api, stage, route) triples never collide.
// Thread-safe: get() may be called from any thread (one mutex around a hash lookup). Memory:
// one entry per distinct key ever asked for; keys come from the conf, so this is bounded by the
// conf's size (buckets of routes removed by a reload stay until retainOnly() drops them).
class TokenBuckets {
 public:
  // The bucket for `key` with these settings: the existing one if rate and burst match (after
  // TokenBucket::sanitize), else a new full one that replaces it. Never returns null. Holders of
  // a replaced bucket keep it alive and keep using it until they call get() again.
  TokenBucketPtr get(const std::string& key, double rate, double burst);

  // Drops every bucket whose key `keep(key)` returns false for (after a reload removed routes).
  template <typename Pred>
  void retainOnly(Pred keep) {
    std::lock_guard<std::mutex> lock(mu_);
    std::erase_if(buckets_, [&](const auto& kv) { return !keep(kv.first); });
  }

  std::size_t size() const;

  // Length-prefixed "3:api5:stage4:/a/b", unambiguous whatever the names contain.
  static std::string bucketKey(std::string_view api, std::string_view stage, std::string_view route);

 private:
  mutable std::mutex mu_;
  std::unordered_map<std::string, TokenBucketPtr> buckets_;  // guarded by mu_
};

}  // namespace portico::proxy
