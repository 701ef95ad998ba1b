#include "cache/coalescer.h"

#include <algorithm>

namespace portico::cache {

namespace detail {

// One follower. `poster` and `joined_at` are immutable; `cb` and `cancelled` are touched only
// on the follower's own loop thread (by its WaiterHandle and by the closure posted there).
struct Waiter {
  core::LoopPoster* poster = nullptr;
  WaitCallback cb;
  core::MonoTime joined_at{};
  bool cancelled = false;  // set when the handle goes or the result is delivered
};

// One key's in-flight fetch. `key` and `shard` are immutable; the rest is guarded by the
// shard's mutex.
struct Flight {
  std::string key;
  std::size_t shard = 0;
  std::uint64_t generation = 0;  // bumped on each promotion: only the newest token may finish
  bool finished = false;         // removed from the shard's table
  std::vector<std::shared_ptr<Waiter>> waiters;  // oldest first
};

}  // namespace detail

namespace {
struct KeyHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view k) const { return std::hash<std::string_view>{}(k); }
};
struct KeyEq {
  using is_transparent = void;
  bool operator()(std::string_view a, std::string_view b) const { return a == b; }
};
std::size_t floorPow2(std::size_t n) {
  std::size_t p = 1;
  while (p * 2 <= n) p *= 2;
  return p;
}
}  // namespace

struct Coalescer::Shard {
  std::mutex mu;
  std::unordered_map<std::string, std::shared_ptr<detail::Flight>, KeyHash, KeyEq> flights;
  std::unordered_map<std::string, core::MonoTime, KeyHash, KeyEq> memo;  // key -> until
};

std::string_view toString(WaitOutcome o) {
  switch (o) {
    case WaitOutcome::Done: return "Done";
    case WaitOutcome::GiveUp: return "GiveUp";
    case WaitOutcome::TransientError: return "TransientError";
    case WaitOutcome::WaitTimeout: return "WaitTimeout";
    case WaitOutcome::Promoted: return "Promoted";
  }
  return "Unknown";
}

std::string_view toString(Role r) {
  switch (r) {
    case Role::Leader: return "Leader";
    case Role::Follower: return "Follower";
    case Role::Pass: return "Pass";
  }
  return "Unknown";
}

// ---- LeaderToken ----------------------------------------------------------------------------

LeaderToken::~LeaderToken() {
  if (flight_ != nullptr) finish(Finish::Dangling, nullptr, {});
}

LeaderToken::LeaderToken(LeaderToken&& other) noexcept
    : owner_(other.owner_), flight_(std::move(other.flight_)), generation_(other.generation_) {}

LeaderToken& LeaderToken::operator=(LeaderToken&& other) noexcept {
  if (this != &other) {
    if (flight_ != nullptr) finish(Finish::Dangling, nullptr, {});
    owner_ = other.owner_;
    flight_ = std::move(other.flight_);
    generation_ = other.generation_;
  }
  return *this;
}

void LeaderToken::complete(CachedObjectPtr object) {
  if (flight_ != nullptr) finish(Finish::Complete, std::move(object), {});
}

void LeaderToken::giveUp(std::chrono::milliseconds memo_ttl) {
  if (flight_ != nullptr) finish(Finish::GiveUp, nullptr, memo_ttl);
}

void LeaderToken::fail() {
  if (flight_ != nullptr) finish(Finish::Fail, nullptr, {});
}

void LeaderToken::finish(Finish how, CachedObjectPtr object, std::chrono::milliseconds memo_ttl) {
  owner_->finishFlight(*this, how, std::move(object), memo_ttl);
}

// ---- WaiterHandle ---------------------------------------------------------------------------

WaiterHandle::~WaiterHandle() { reset(); }

WaiterHandle& WaiterHandle::operator=(WaiterHandle&& other) noexcept {
  if (this != &other) {
    reset();
    owner_ = other.owner_;
    flight_ = std::move(other.flight_);
    waiter_ = std::move(other.waiter_);
  }
  return *this;
}

void WaiterHandle::reset() {
  if (waiter_ != nullptr) owner_->cancelWaiter(flight_, waiter_);
  flight_.reset();
  waiter_.reset();
}

// ---- Coalescer ------------------------------------------------------------------------------

Coalescer::Coalescer(const CoalescerOptions& options, const core::Clock& clock)
    : options_(options), clock_(clock) {
  const std::size_t n = floorPow2(std::max<std::size_t>(options.shards, 1));
  shard_mask_ = n - 1;
  memo_per_shard_ = std::max<std::size_t>(options.max_memo / n, 1);
  shards_.reserve(n);
  for (std::size_t i = 0; i < n; ++i) shards_.push_back(std::make_unique<Shard>());
}

Coalescer::~Coalescer() = default;

std::size_t Coalescer::shardIndex(std::string_view key) const {
  return KeyHash{}(key) & shard_mask_;
}

JoinResult Coalescer::join(std::string_view key, core::LoopPoster& poster, WaitCallback cb) {
  JoinResult r;
  const std::size_t idx = shardIndex(key);
  Shard& s = *shards_[idx];
  const core::MonoTime now = clock_.monoNow();
  std::lock_guard<std::mutex> lock(s.mu);
  if (auto m = s.memo.find(key); m != s.memo.end()) {
    if (now < m->second) {
      passes_.fetch_add(1, std::memory_order_relaxed);
      r.role = Role::Pass;
      return r;
    }
    s.memo.erase(m);
  }
  if (auto f = s.flights.find(key); f != s.flights.end()) {
    auto w = std::make_shared<detail::Waiter>();
    w->poster = &poster;
    w->cb = std::move(cb);
    w->joined_at = now;
    f->second->waiters.push_back(w);
    followers_.fetch_add(1, std::memory_order_relaxed);
    r.role = Role::Follower;
    r.waiter = WaiterHandle(this, f->second, std::move(w));
    return r;
  }
  auto flight = std::make_shared<detail::Flight>();
  flight->key = std::string(key);
  flight->shard = idx;
  s.flights.emplace(flight->key, flight);
  leaders_.fetch_add(1, std::memory_order_relaxed);
  r.role = Role::Leader;
  r.leader = LeaderToken(this, std::move(flight), 0);
  return r;
}

void Coalescer::postResult(const std::shared_ptr<detail::Waiter>& waiter, WaitResult&& result) {
  // std::function needs a copyable closure and a WaitResult may carry a move-only token.
  auto res = std::make_shared<WaitResult>(std::move(result));
  waiter->poster->post([waiter, res]() {
    if (waiter->cancelled) return;  // a carried token dies with the closure: next promotion
    waiter->cancelled = true;       // delivered: the handle's later reset is a no-op
    // Moved out first: the callback may destroy its own WaiterHandle, which clears `cb`.
    WaitCallback cb = std::move(waiter->cb);
    waiter->cb = nullptr;
    if (cb) cb(std::move(*res));
  });
}

void Coalescer::finishFlight(LeaderToken& token, LeaderToken::Finish how, CachedObjectPtr object,
                             std::chrono::milliseconds memo_ttl) {
  std::shared_ptr<detail::Flight> flight = std::move(token.flight_);
  Shard& s = *shards_[flight->shard];
  std::vector<std::shared_ptr<detail::Waiter>> woken;  // released after the lock
  const core::MonoTime now = clock_.monoNow();
  std::lock_guard<std::mutex> lock(s.mu);
  if (flight->finished || flight->generation != token.generation_) return;  // not ours any more
  if (how == LeaderToken::Finish::Dangling && !flight->waiters.empty()) {
    // Pingora: a write lock dropped without release makes the readers treat it as failed and
    // one of them takes over. Here the oldest waiter is handed the lead directly.
    std::shared_ptr<detail::Waiter> heir = flight->waiters.front();
    flight->waiters.erase(flight->waiters.begin());
    ++flight->generation;
    WaitResult res;
    res.outcome = WaitOutcome::Promoted;
    res.leader = LeaderToken(this, flight, flight->generation);
    postResult(heir, std::move(res));
    promotions_.fetch_add(1, std::memory_order_relaxed);
    woken.push_back(std::move(heir));
    return;
  }
  flight->finished = true;
  woken.swap(flight->waiters);
  s.flights.erase(flight->key);
  WaitOutcome outcome = WaitOutcome::TransientError;
  switch (how) {
    case LeaderToken::Finish::Complete: outcome = WaitOutcome::Done; break;
    case LeaderToken::Finish::GiveUp:
      outcome = WaitOutcome::GiveUp;
      if (memo_ttl.count() > 0) rememberLocked(s, flight->key, now + memo_ttl);
      break;
    case LeaderToken::Finish::Fail:
    case LeaderToken::Finish::Dangling: outcome = WaitOutcome::TransientError; break;
  }
  for (const auto& w : woken) {
    WaitResult res;
    res.outcome = outcome;
    if (outcome == WaitOutcome::Done) res.object = object;
    postResult(w, std::move(res));
  }
}

void Coalescer::cancelWaiter(const std::shared_ptr<detail::Flight>& flight,
                             const std::shared_ptr<detail::Waiter>& waiter) {
  {
    Shard& s = *shards_[flight->shard];
    std::lock_guard<std::mutex> lock(s.mu);
    auto& v = flight->waiters;
    v.erase(std::remove(v.begin(), v.end(), waiter), v.end());
  }
  // Owner thread: nothing else touches these. The callback's captures die here, on its loop.
  waiter->cancelled = true;
  waiter->cb = nullptr;
}

void Coalescer::rememberLocked(Shard& s, const std::string& key, core::MonoTime until) {
  if (s.memo.size() >= memo_per_shard_ && s.memo.find(key) == s.memo.end()) {
    const core::MonoTime now = clock_.monoNow();
    std::erase_if(s.memo, [now](const auto& kv) { return kv.second <= now; });
    if (s.memo.size() >= memo_per_shard_) s.memo.erase(s.memo.begin());
  }
  s.memo[key] = until;
}

std::size_t Coalescer::sweep() {
  const core::MonoTime now = clock_.monoNow();
  std::size_t released = 0;
  for (auto& sp : shards_) {
    Shard& s = *sp;
    std::vector<std::shared_ptr<detail::Waiter>> woken;  // released after the lock
    std::lock_guard<std::mutex> lock(s.mu);
    for (auto& [key, flight] : s.flights) {
      auto& v = flight->waiters;
      for (auto it = v.begin(); it != v.end();) {
        if (now - (*it)->joined_at >= options_.wait_timeout) {
          WaitResult res;
          res.outcome = WaitOutcome::WaitTimeout;
          postResult(*it, std::move(res));
          woken.push_back(std::move(*it));
          it = v.erase(it);
        } else {
          ++it;
        }
      }
    }
    std::erase_if(s.memo, [now](const auto& kv) { return kv.second <= now; });
    released += woken.size();
  }
  timeouts_.fetch_add(released, std::memory_order_relaxed);
  return released;
}

bool Coalescer::isMemoized(std::string_view key) {
  Shard& s = *shards_[shardIndex(key)];
  const core::MonoTime now = clock_.monoNow();
  std::lock_guard<std::mutex> lock(s.mu);
  auto m = s.memo.find(key);
  return m != s.memo.end() && now < m->second;
}

void Coalescer::forget(std::string_view key) {
  Shard& s = *shards_[shardIndex(key)];
  std::lock_guard<std::mutex> lock(s.mu);
  if (auto m = s.memo.find(key); m != s.memo.end()) s.memo.erase(m);
}

CoalescerStats Coalescer::stats() const {
  CoalescerStats out;
  out.leaders = leaders_.load(std::memory_order_relaxed);
  out.followers = followers_.load(std::memory_order_relaxed);
  out.passes = passes_.load(std::memory_order_relaxed);
  out.promotions = promotions_.load(std::memory_order_relaxed);
  out.timeouts = timeouts_.load(std::memory_order_relaxed);
  for (const auto& sp : shards_) {
    std::lock_guard<std::mutex> lock(sp->mu);
    out.in_flight += sp->flights.size();
    out.memo += sp->memo.size();
  }
  return out;
}

}  // namespace portico::cache
