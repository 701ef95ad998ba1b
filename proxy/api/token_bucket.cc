#include "proxy/api/token_bucket.h"

#include <cmath>
#include <limits>

namespace portico::proxy {
namespace {

constexpr std::int64_t kNsPerSecond = 1'000'000'000;
constexpr std::int64_t kMaxIntervalNs = std::int64_t{1} << 52;  // ~52 days per token
constexpr std::int64_t kMaxCapacityNs = std::int64_t{1} << 61;  // ~73 years of refill
constexpr std::int64_t kMaxQuota = std::int64_t{1} << 62;
constexpr std::int64_t kUnset = std::numeric_limits<std::int64_t>::min();

// Saturating arithmetic: a `now` from a broken caller (or INT64_MIN, the initial TAT) must not
// overflow into undefined behaviour.
std::int64_t satAdd(std::int64_t a, std::int64_t b) {
  std::int64_t r;
  if (__builtin_add_overflow(a, b, &r)) {
    return b > 0 ? std::numeric_limits<std::int64_t>::max() : std::numeric_limits<std::int64_t>::min();
  }
  return r;
}

std::int64_t satSub(std::int64_t a, std::int64_t b) {
  std::int64_t r;
  if (__builtin_sub_overflow(a, b, &r)) {
    return b < 0 ? std::numeric_limits<std::int64_t>::max() : std::numeric_limits<std::int64_t>::min();
  }
  return r;
}

// ceil(ns / 1e9) for ns > 0, at least 1.
std::int64_t ceilSeconds(std::int64_t ns) {
  std::int64_t s = ns / kNsPerSecond + (ns % kNsPerSecond != 0 ? 1 : 0);
  return s < 1 ? 1 : s;
}

}  // namespace

TokenBucket::TokenBucket(double rate, double burst)
    : rate_(sanitize(rate)), burst_(sanitize(burst)), state_(0) {
  if (burst_ < 1) {
    mode_ = Mode::Never;
    return;
  }
  if (rate_ == 0) {
    mode_ = Mode::Quota;
    quota_ = burst_ >= static_cast<double>(kMaxQuota) ? kMaxQuota
                                                     : static_cast<std::int64_t>(std::floor(burst_));
    return;
  }
  mode_ = Mode::Rate;
  // Round the interval up so the bucket never admits more than `rate` per second. Comparing
  // in double first keeps huge values (1/rate for rate 1e-300, or +inf) out of the cast.
  const double interval = std::ceil(static_cast<double>(kNsPerSecond) / rate_);
  interval_ns_ = interval >= static_cast<double>(kMaxIntervalNs) ? kMaxIntervalNs
                 : interval < 1                                   ? 1
                                                                  : static_cast<std::int64_t>(interval);
  const double capacity = std::floor(burst_ * static_cast<double>(interval_ns_));
  capacity_ns_ = capacity >= static_cast<double>(kMaxCapacityNs) ? kMaxCapacityNs
                                                                 : static_cast<std::int64_t>(capacity);
  if (capacity_ns_ < interval_ns_) capacity_ns_ = interval_ns_;  // burst >= 1: float rounding only
  state_.store(kUnset, std::memory_order_relaxed);
}

TokenBucket::Decision TokenBucket::take(std::int64_t now_ns) {
  switch (mode_) {
    case Mode::Rate:
      return takeRate(now_ns);
    case Mode::Quota:
      return takeQuota();
    case Mode::Never:
      break;
  }
  return Decision{false, kNoRefillRetryAfterS};
}

TokenBucket::Decision TokenBucket::takeRate(std::int64_t now_ns) {
  // Relaxed ordering is enough: the bucket publishes no other data, and read-modify-write
  // operations on one atomic are totally ordered whatever the memory order.
  std::int64_t tat = state_.load(std::memory_order_relaxed);
  for (;;) {
    const std::int64_t base = tat > now_ns ? tat : now_ns;
    const std::int64_t next = satAdd(base, interval_ns_);
    const std::int64_t ahead = satSub(next, now_ns);
    if (ahead > capacity_ns_) {
      // Refused; the take would succeed once `now` reaches next - capacity.
      return Decision{false, ceilSeconds(ahead - capacity_ns_)};
    }
    if (state_.compare_exchange_weak(tat, next, std::memory_order_relaxed)) {
      return Decision{true, 0};
    }
    // `tat` now holds the value another thread stored: recompute from it.
  }
}

TokenBucket::Decision TokenBucket::takeQuota() {
  std::int64_t taken = state_.load(std::memory_order_relaxed);
  for (;;) {
    if (taken >= quota_) return Decision{false, kNoRefillRetryAfterS};
    if (state_.compare_exchange_weak(taken, taken + 1, std::memory_order_relaxed)) {
      return Decision{true, 0};
    }
  }
}

void TokenBucket::giveBack() {
  switch (mode_) {
    case Mode::Rate:
      // Moving the TAT back one interval is the inverse of a take; fetch_sub is atomic with
      // concurrent takes (they read the TAT afresh in their CAS loop).
      state_.fetch_sub(interval_ns_, std::memory_order_relaxed);
      return;
    case Mode::Quota:
      state_.fetch_sub(1, std::memory_order_relaxed);
      return;
    case Mode::Never:
      return;
  }
}

TokenBucketPtr TokenBuckets::get(const std::string& key, double rate, double burst) {
  rate = TokenBucket::sanitize(rate);
  burst = TokenBucket::sanitize(burst);
  std::lock_guard<std::mutex> lock(mu_);
  TokenBucketPtr& slot = buckets_[key];
  if (!slot || slot->rate() != rate || slot->burst() != burst) {
    slot = std::make_shared<TokenBucket>(rate, burst);
  }
  return slot;
}

std::size_t TokenBuckets::size() const {
  std::lock_guard<std::mutex> lock(mu_);
  return buckets_.size();
}

std::string TokenBuckets::bucketKey(std::string_view api, std::string_view stage,
                                    std::string_view route) {
  std::string key;
  key.reserve(api.size() + stage.size() + route.size() + 16);
  for (std::string_view part : {api, stage, route}) {
    key += std::to_string(part.size());
    key += ':';
    key += part;
  }
  return key;
}

}  // namespace portico::proxy
