#pragma once
// Coalescer: request coalescing for cache misses (style.md G4, G5). Concurrent misses on one key
// make ONE origin fetch: the first joiner becomes the leader and fetches; the others follow and
// are told the outcome on their own loops.
//
// Anchors: Pingora CacheKeyLock / LockStatus (Done, TransientError, GiveUp, Dangling,
// WaitTimeout), Varnish waiting list + hit-for-miss (hsh_rush1 picks waiters under the lock,
// hsh_rush2 wakes them after), Envoy posting to the subscriber's dispatcher.
//
// Per-key lifecycle (a "flight"; G11 lifecycle table):
//   absent ──join──▶ Fetching(leader token, waiters…)
//   Fetching ──complete(obj)──▶ absent; every waiter gets Done(obj)
//   Fetching ──giveUp(ttl)────▶ Memo(until now+ttl); every waiter gets GiveUp
//   Fetching ──fail()─────────▶ absent; every waiter gets TransientError
//   Fetching ──token destroyed unfinished (Dangling)──▶
//        no waiters: absent;  else: the oldest waiter gets Promoted + a new LeaderToken,
//        the rest keep waiting on it
//   Memo ──join before `until`──▶ Pass (no waiting: hit-for-miss, requests never queue behind
//        an uncacheable URL);  Memo ──`until` passed──▶ absent
//
// Threads: every method of Coalescer may be called from any thread. A LeaderToken and a
// WaiterHandle are each used by one thread at a time (the owner's); a token may be moved to
// another thread (a promoted token arrives on the follower's loop).
//
// Waking: the waiters of a flight are chosen under the shard lock; for each, a closure is
// enqueued on the waiter's own core::LoopPoster while the lock is held (enqueueing runs no user
// code, and doing it under the lock is what lets a WaiterHandle destroyed on its loop guarantee
// that its poster is never touched afterwards). The callback itself always runs later, on the
// waiter's loop, with no coalescer lock held: never synchronously inside join() or inside the
// leader's complete()/giveUp()/fail().
//
// Exactly once: a follower's callback runs exactly once, unless its WaiterHandle is destroyed
// first, in which case it never runs (G5: destroying the handle cancels). A Promoted result
// that reaches a cancelled waiter (or is dropped with its loop's poster) destroys its token,
// which promotes the next waiter: a leader that fails or vanishes never leaves followers
// hanging.
//
// A leader that hangs: each follower bounds its own wait. Either its owner runs a timer and
// destroys the WaiterHandle when it fires (then fetches on its own), or someone calls sweep()
// periodically, which releases followers that have waited longer than `wait_timeout` with
// WaitTimeout. Both are safe at any time.
//
// Ownership: the Coalescer must outlive every LeaderToken and WaiterHandle it issued. A
// WaiterHandle must be destroyed (or its callback have run) before its LoopPoster is.
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "cache/cached_object.h"
#include "proxy/core/clock.h"
#include "proxy/core/loop_poster.h"

namespace portico::cache {

class Coalescer;
namespace detail {
struct Flight;
struct Waiter;
}  // namespace detail

// RAII leadership of one key's fetch. Exactly one of complete()/giveUp()/fail() finishes it;
// destroying (or move-assigning over) an unfinished token is Dangling. Calls after the first
// finish are ignored.
class LeaderToken {
 public:
  LeaderToken() = default;
  ~LeaderToken();
  LeaderToken(LeaderToken&& other) noexcept;
  LeaderToken& operator=(LeaderToken&& other) noexcept;
  LeaderToken(const LeaderToken&) = delete;
  LeaderToken& operator=(const LeaderToken&) = delete;

  // True while it leads an unfinished flight.
  bool active() const { return flight_ != nullptr; }
  explicit operator bool() const { return active(); }

  // The fetch produced `object` (stored by the caller, or null: followers look the key up
  // again). Followers get Done with this object.
  void complete(CachedObjectPtr object);
  // The answer is uncacheable: followers get GiveUp and fetch on their own; joins during the
  // next `memo_ttl` get Role::Pass (0: remember nothing).
  void giveUp(std::chrono::milliseconds memo_ttl);
  // The fetch failed (origin error, timeout): followers get TransientError.
  void fail();

 private:
  friend class Coalescer;
  enum class Finish { Complete, GiveUp, Fail, Dangling };
  LeaderToken(Coalescer* owner, std::shared_ptr<detail::Flight> flight, std::uint64_t generation)
      : owner_(owner), flight_(std::move(flight)), generation_(generation) {}
  void finish(Finish how, CachedObjectPtr object, std::chrono::milliseconds memo_ttl);

  Coalescer* owner_ = nullptr;
  std::shared_ptr<detail::Flight> flight_;
  std::uint64_t generation_ = 0;
};

enum class WaitOutcome {
  Done,            // the leader finished: `object` (may be null: look the key up again)
  GiveUp,          // uncacheable: fetch on your own and do not store
  TransientError,  // the leader failed: fetch on your own, or join again (a new leader is elected)
  WaitTimeout,     // sweep(): waited longer than wait_timeout: fetch on your own
  Promoted,        // the leader vanished (Dangling): you lead now, `leader` is your token
};
std::string_view toString(WaitOutcome o);

struct WaitResult {
  WaitOutcome outcome = WaitOutcome::TransientError;
  CachedObjectPtr object;  // Done only
  LeaderToken leader;      // Promoted only
};

// Runs on the follower's loop, at most once (see above). Takes the result by value.
using WaitCallback = std::function<void(WaitResult)>;

// A follower's place in a flight. Destroying it (on the owner's loop thread) cancels: the
// callback will not run afterwards, even if a result was already posted.
class WaiterHandle {
 public:
  WaiterHandle() = default;
  ~WaiterHandle();
  WaiterHandle(WaiterHandle&& other) noexcept = default;
  WaiterHandle& operator=(WaiterHandle&& other) noexcept;
  WaiterHandle(const WaiterHandle&) = delete;
  WaiterHandle& operator=(const WaiterHandle&) = delete;
  bool valid() const { return waiter_ != nullptr; }

 private:
  friend class Coalescer;
  WaiterHandle(Coalescer* owner, std::shared_ptr<detail::Flight> flight,
               std::shared_ptr<detail::Waiter> waiter)
      : owner_(owner), flight_(std::move(flight)), waiter_(std::move(waiter)) {}
  void reset();

  Coalescer* owner_ = nullptr;
  std::shared_ptr<detail::Flight> flight_;
  std::shared_ptr<detail::Waiter> waiter_;
};

enum class Role {
  Leader,    // fetch from origin, then finish the token
  Follower,  // wait for the callback
  Pass,      // hit-for-miss: known uncacheable, fetch on your own, do not store, no waiting
};
std::string_view toString(Role r);

struct JoinResult {
  Role role = Role::Pass;
  LeaderToken leader;   // Role::Leader
  WaiterHandle waiter;  // Role::Follower
};

struct CoalescerOptions {
  std::size_t shards = 16;                                        // power of two, >= 1
  std::chrono::milliseconds wait_timeout = std::chrono::seconds(30);  // sweep() threshold
  std::size_t max_memo = 65536;  // hit-for-miss keys remembered at most (when full: expired
                                 // entries go first, then arbitrary ones)
};

struct CoalescerStats {
  std::uint64_t leaders = 0;     // joins that became leader (promotions not included)
  std::uint64_t followers = 0;   // joins that waited
  std::uint64_t passes = 0;      // joins answered Pass from the hit-for-miss memo
  std::uint64_t promotions = 0;  // dangling leaders replaced by a follower
  std::uint64_t timeouts = 0;    // followers released by sweep()
  std::uint64_t in_flight = 0;   // gauge: keys being fetched now
  std::uint64_t memo = 0;        // gauge: keys remembered as uncacheable now
};

class Coalescer {
 public:
  explicit Coalescer(const CoalescerOptions& options = {},
                     const core::Clock& clock = core::SystemClock::instance());
  ~Coalescer();
  Coalescer(const Coalescer&) = delete;
  Coalescer& operator=(const Coalescer&) = delete;

  // Joins the flight for `key`. Leader: the caller fetches and finishes the token. Follower:
  // `cb` will run on `poster`'s loop (never synchronously); keep the handle to keep waiting.
  // Pass: neither; `cb` is dropped unrun. `poster` must outlive the returned WaiterHandle.
  JoinResult join(std::string_view key, core::LoopPoster& poster, WaitCallback cb);

  // Releases every follower that has waited longer than wait_timeout (WaitTimeout) and drops
  // expired memo entries. Returns how many followers were released. Any thread.
  std::size_t sweep();

  // Hit-for-miss memo: whether `key` is remembered as uncacheable now; forget it (e.g. a Pass
  // fetch turned out cacheable after all).
  bool isMemoized(std::string_view key);
  void forget(std::string_view key);

  CoalescerStats stats() const;

 private:
  friend class LeaderToken;
  friend class WaiterHandle;
  struct Shard;

  std::size_t shardIndex(std::string_view key) const;
  void finishFlight(LeaderToken& token, LeaderToken::Finish how, CachedObjectPtr object,
                    std::chrono::milliseconds memo_ttl);
  void cancelWaiter(const std::shared_ptr<detail::Flight>& flight,
                    const std::shared_ptr<detail::Waiter>& waiter);
  // Caller holds the shard lock. Enqueues `result` on the waiter's loop.
  static void postResult(const std::shared_ptr<detail::Waiter>& waiter, WaitResult&& result);
  void rememberLocked(Shard& s, const std::string& key, core::MonoTime until);

  CoalescerOptions options_;
  const core::Clock& clock_;
  std::size_t shard_mask_;
  std::size_t memo_per_shard_;
  std::vector<std::unique_ptr<Shard>> shards_;
  std::atomic<std::uint64_t> leaders_{0}, followers_{0}, passes_{0}, promotions_{0},
      timeouts_{0};
};

}  // namespace portico::cache
