// Coalescer on real libuv loops pumped by hand (style.md G4, G5, G8). Time is a FakeClock:
// nothing here waits for time to pass.
#include "cache/coalescer.h"

#include <gtest/gtest.h>
#include <uv.h>

#include <atomic>
#include <barrier>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "proxy/core/loop_poster.h"
#include "tests/support/loop_pump.h"

namespace portico::cache {
namespace {

using namespace std::chrono_literals;

class FakeClock final : public core::Clock {
 public:
  core::WallTime wallNow() const override { return core::WallTime{} + offset(); }
  core::MonoTime monoNow() const override { return core::MonoTime{} + offset(); }
  void advance(std::chrono::milliseconds d) { ms_.fetch_add(d.count()); }

 private:
  std::chrono::milliseconds offset() const { return std::chrono::milliseconds(ms_.load()); }
  std::atomic<std::int64_t> ms_{1'000'000};
};

CachedObjectPtr makeObject(std::string body) {
  auto o = std::make_shared<CachedObject>();
  o->body = std::make_shared<const std::string>(std::move(body));
  return o;
}

// What one follower saw; touched only on its loop's thread.
struct Seen {
  int calls = 0;
  std::optional<WaitResult> result;
  std::thread::id thread;
};

WaitCallback record(std::shared_ptr<Seen> seen) {
  return [seen](WaitResult r) {
    ++seen->calls;
    seen->thread = std::this_thread::get_id();
    seen->result.emplace(std::move(r));
  };
}

// One loop on the test thread with its poster.
class CoalescerTest : public ::testing::Test {
 protected:
  CoalescerTest() {
    uv_loop_init(&loop_);
    poster_ = std::make_unique<core::LoopPoster>(&loop_);
  }
  ~CoalescerTest() override {
    poster_.reset();
    test::expectLoopClean(&loop_);
  }
  CoalescerOptions opts() {
    CoalescerOptions o;
    o.shards = 4;
    o.wait_timeout = 5s;
    return o;
  }
  JoinResult follow(Coalescer& c, const std::string& key, const std::shared_ptr<Seen>& seen) {
    JoinResult j = c.join(key, *poster_, record(seen));
    EXPECT_EQ(j.role, Role::Follower);
    return j;
  }
  bool pumpUntil(const std::function<bool()>& pred) { return test::pumpUntil(&loop_, pred, 5s); }

  uv_loop_t loop_;
  std::unique_ptr<core::LoopPoster> poster_;
  FakeClock clock_;
};

TEST_F(CoalescerTest, ThreeJoinsOneLeaderAndFollowersGetTheObject) {
  Coalescer c(opts(), clock_);
  auto s1 = std::make_shared<Seen>(), s2 = std::make_shared<Seen>();
  JoinResult lead = c.join("k", *poster_, [](WaitResult) { ADD_FAILURE() << "leader called"; });
  ASSERT_EQ(lead.role, Role::Leader);
  ASSERT_TRUE(lead.leader.active());
  JoinResult f1 = follow(c, "k", s1), f2 = follow(c, "k", s2);
  EXPECT_EQ(c.stats().in_flight, 1u);
  CachedObjectPtr obj = makeObject("body");
  lead.leader.complete(obj);
  EXPECT_FALSE(lead.leader.active());
  EXPECT_EQ(s1->calls, 0) << "never synchronously inside complete()";
  ASSERT_TRUE(pumpUntil([&] { return s1->calls && s2->calls; }));
  for (auto* s : {s1.get(), s2.get()}) {
    EXPECT_EQ(s->result->outcome, WaitOutcome::Done);
    EXPECT_EQ(s->result->object.get(), obj.get());
  }
  test::pumpTurns(&loop_, 2);
  EXPECT_EQ(s1->calls, 1) << "exactly once";
  CoalescerStats st = c.stats();
  EXPECT_EQ(st.leaders, 1u);
  EXPECT_EQ(st.followers, 2u);
  EXPECT_EQ(st.in_flight, 0u);
  // The key is free again: the next miss leads a new fetch.
  EXPECT_EQ(c.join("k", *poster_, nullptr).role, Role::Leader);
}

TEST_F(CoalescerTest, DifferentKeysDoNotCoalesce) {
  Coalescer c(opts(), clock_);
  JoinResult a = c.join("a", *poster_, nullptr);
  JoinResult b = c.join("b", *poster_, nullptr);
  EXPECT_EQ(a.role, Role::Leader);
  EXPECT_EQ(b.role, Role::Leader);
}

TEST_F(CoalescerTest, LeaderVanishingPromotesTheOldestFollower) {
  Coalescer c(opts(), clock_);
  auto s1 = std::make_shared<Seen>(), s2 = std::make_shared<Seen>();
  std::optional<JoinResult> lead(c.join("k", *poster_, nullptr));
  JoinResult f1 = follow(c, "k", s1), f2 = follow(c, "k", s2);
  lead.reset();  // Dangling: destroyed unfinished
  ASSERT_TRUE(pumpUntil([&] { return s1->calls > 0; }));
  ASSERT_EQ(s1->result->outcome, WaitOutcome::Promoted);
  ASSERT_TRUE(s1->result->leader.active());
  EXPECT_EQ(s2->calls, 0) << "the others keep waiting on the new leader";
  EXPECT_EQ(c.stats().promotions, 1u);
  // A newcomer still follows: one fetch in flight.
  auto s3 = std::make_shared<Seen>();
  JoinResult f3 = follow(c, "k", s3);
  s1->result->leader.complete(makeObject("second try"));
  ASSERT_TRUE(pumpUntil([&] { return s2->calls && s3->calls; }));
  EXPECT_EQ(s2->result->outcome, WaitOutcome::Done);
  EXPECT_EQ(*s3->result->object->body, "second try");
}

TEST_F(CoalescerTest, PromotionToACancelledFollowerPassesToTheNext) {
  Coalescer c(opts(), clock_);
  auto s1 = std::make_shared<Seen>(), s2 = std::make_shared<Seen>();
  std::optional<JoinResult> lead(c.join("k", *poster_, nullptr));
  std::optional<JoinResult> f1(follow(c, "k", s1));
  JoinResult f2 = follow(c, "k", s2);
  lead.reset();  // s1 is picked and its Promoted result is posted...
  f1.reset();    // ...but s1 leaves before its loop runs it
  ASSERT_TRUE(pumpUntil([&] { return s2->calls > 0; }));
  EXPECT_EQ(s1->calls, 0);
  EXPECT_EQ(s2->result->outcome, WaitOutcome::Promoted);
  EXPECT_EQ(c.stats().promotions, 2u);
}

TEST_F(CoalescerTest, PromotedLeaderThatAlsoVanishesWithNoFollowersFreesTheKey) {
  Coalescer c(opts(), clock_);
  auto s1 = std::make_shared<Seen>();
  std::optional<JoinResult> lead(c.join("k", *poster_, nullptr));
  JoinResult f1 = follow(c, "k", s1);
  lead.reset();
  ASSERT_TRUE(pumpUntil([&] { return s1->calls > 0; }));
  s1->result.reset();  // the promoted token is dropped unfinished: nobody left to promote
  EXPECT_EQ(c.stats().in_flight, 0u);
  EXPECT_EQ(c.join("k", *poster_, nullptr).role, Role::Leader);
}

TEST_F(CoalescerTest, GiveUpReleasesFollowersAndMemoizesForTheTtl) {
  Coalescer c(opts(), clock_);
  auto s1 = std::make_shared<Seen>(), s2 = std::make_shared<Seen>();
  JoinResult lead = c.join("k", *poster_, nullptr);
  JoinResult f1 = follow(c, "k", s1), f2 = follow(c, "k", s2);
  lead.leader.giveUp(2s);
  ASSERT_TRUE(pumpUntil([&] { return s1->calls && s2->calls; }));
  EXPECT_EQ(s1->result->outcome, WaitOutcome::GiveUp);
  EXPECT_EQ(s2->result->outcome, WaitOutcome::GiveUp);
  EXPECT_EQ(s1->result->object, nullptr);
  // Hit-for-miss: nobody queues behind this URL while the memo lasts.
  EXPECT_TRUE(c.isMemoized("k"));
  EXPECT_EQ(c.join("k", *poster_, nullptr).role, Role::Pass);
  EXPECT_EQ(c.join("k", *poster_, nullptr).role, Role::Pass);
  EXPECT_EQ(c.stats().passes, 2u);
  clock_.advance(1999ms);
  EXPECT_EQ(c.join("k", *poster_, nullptr).role, Role::Pass);
  clock_.advance(1ms);
  EXPECT_FALSE(c.isMemoized("k"));
  EXPECT_EQ(c.join("k", *poster_, nullptr).role, Role::Leader);
}

TEST_F(CoalescerTest, GiveUpWithoutTtlRemembersNothingAndForgetClearsAMemo) {
  Coalescer c(opts(), clock_);
  c.join("a", *poster_, nullptr).leader.giveUp(0ms);
  EXPECT_EQ(c.join("a", *poster_, nullptr).role, Role::Leader);
  c.join("b", *poster_, nullptr).leader.giveUp(60s);
  EXPECT_EQ(c.join("b", *poster_, nullptr).role, Role::Pass);
  c.forget("b");
  EXPECT_EQ(c.join("b", *poster_, nullptr).role, Role::Leader);
}

TEST_F(CoalescerTest, MemoIsBounded) {
  CoalescerOptions o = opts();
  o.shards = 1;
  o.max_memo = 10;
  Coalescer c(o, clock_);
  for (int i = 0; i < 100; ++i) c.join("k" + std::to_string(i), *poster_, nullptr).leader.giveUp(60s);
  EXPECT_EQ(c.stats().memo, 10u);
  EXPECT_TRUE(c.isMemoized("k99"));  // the newest is always kept
}

TEST_F(CoalescerTest, FailReleasesFollowersWithTransientErrorAndFreesTheKey) {
  Coalescer c(opts(), clock_);
  auto s1 = std::make_shared<Seen>();
  JoinResult lead = c.join("k", *poster_, nullptr);
  JoinResult f1 = follow(c, "k", s1);
  lead.leader.fail();
  lead.leader.complete(makeObject("ignored"));  // already finished: ignored
  ASSERT_TRUE(pumpUntil([&] { return s1->calls > 0; }));
  EXPECT_EQ(s1->result->outcome, WaitOutcome::TransientError);
  EXPECT_FALSE(c.isMemoized("k"));
  EXPECT_EQ(c.join("k", *poster_, nullptr).role, Role::Leader);  // a new leader is elected
}

TEST_F(CoalescerTest, DestroyedWaiterHandleGetsNoCallback) {
  Coalescer c(opts(), clock_);
  auto gone_early = std::make_shared<Seen>(), gone_late = std::make_shared<Seen>(),
       stays = std::make_shared<Seen>();
  JoinResult lead = c.join("k", *poster_, nullptr);
  std::optional<JoinResult> early(follow(c, "k", gone_early));
  std::optional<JoinResult> late(follow(c, "k", gone_late));
  JoinResult stay = follow(c, "k", stays);
  early.reset();  // leaves before the leader finishes
  lead.leader.complete(makeObject("x"));
  late.reset();  // leaves after its result was posted, before its loop ran it
  ASSERT_TRUE(pumpUntil([&] { return stays->calls > 0; }));
  test::pumpTurns(&loop_, 3);
  EXPECT_EQ(gone_early->calls, 0);
  EXPECT_EQ(gone_late->calls, 0);
  EXPECT_EQ(stays->calls, 1);
}

TEST_F(CoalescerTest, CallbackMayDestroyItsOwnHandle) {
  Coalescer c(opts(), clock_);
  JoinResult lead = c.join("k", *poster_, nullptr);
  auto holder = std::make_shared<std::optional<JoinResult>>();
  int calls = 0;
  holder->emplace(c.join("k", *poster_, [holder, &calls](WaitResult) {
    ++calls;
    holder->reset();  // destroys the WaiterHandle (and this very callback's owner) from inside
  }));
  ASSERT_EQ((*holder)->role, Role::Follower);
  lead.leader.complete(makeObject("x"));
  ASSERT_TRUE(pumpUntil([&] { return calls > 0; }));
  EXPECT_FALSE(holder->has_value());
}

TEST_F(CoalescerTest, SweepReleasesFollowersOfAHungLeaderWithWaitTimeout) {
  Coalescer c(opts(), clock_);  // wait_timeout 5 s
  auto old = std::make_shared<Seen>(), fresh = std::make_shared<Seen>();
  JoinResult lead = c.join("k", *poster_, nullptr);
  JoinResult f1 = follow(c, "k", old);
  clock_.advance(3s);
  JoinResult f2 = follow(c, "k", fresh);
  EXPECT_EQ(c.sweep(), 0u);
  clock_.advance(2s);
  EXPECT_EQ(c.sweep(), 1u);
  ASSERT_TRUE(pumpUntil([&] { return old->calls > 0; }));
  EXPECT_EQ(old->result->outcome, WaitOutcome::WaitTimeout);
  EXPECT_EQ(fresh->calls, 0);
  EXPECT_EQ(c.stats().timeouts, 1u);
  lead.leader.complete(makeObject("late"));
  ASSERT_TRUE(pumpUntil([&] { return fresh->calls > 0; }));
  EXPECT_EQ(fresh->result->outcome, WaitOutcome::Done);
  EXPECT_EQ(old->calls, 1);
}

TEST_F(CoalescerTest, SweepDropsExpiredMemos) {
  Coalescer c(opts(), clock_);
  c.join("k", *poster_, nullptr).leader.giveUp(1s);
  EXPECT_EQ(c.stats().memo, 1u);
  clock_.advance(1s);
  c.sweep();
  EXPECT_EQ(c.stats().memo, 0u);
}

TEST(CoalescerNamesTest, ToString) {
  EXPECT_EQ(toString(WaitOutcome::Promoted), "Promoted");
  EXPECT_EQ(toString(WaitOutcome::WaitTimeout), "WaitTimeout");
  EXPECT_EQ(toString(Role::Pass), "Pass");
}

// Two workers, each with its own loop on its own thread, miss the same key at the same moment
// (a barrier lines them up). Exactly one join leads; every follower is told on its own loop's
// thread.
TEST(CoalescerCrossLoopTest, ConcurrentJoinsOnTwoLoopsMakeOneLeader) {
  constexpr int kPerThread = 50;
  constexpr int kRounds = 20;
  FakeClock clock;
  Coalescer c(CoalescerOptions{}, clock);
  for (int round = 0; round < kRounds; ++round) {
    const std::string key = "site\x1fh\x1f/hot?round=" + std::to_string(round);
    const CachedObjectPtr obj = makeObject("payload");
    std::barrier start(2), joined(2);
    std::atomic<int> leaders{0};
    std::atomic<int> done{0};
    auto worker = [&]() {
      uv_loop_t loop;
      uv_loop_init(&loop);
      {
        core::LoopPoster poster(&loop);
        std::vector<std::shared_ptr<Seen>> seen;
        std::vector<JoinResult> joins;
        start.arrive_and_wait();
        for (int i = 0; i < kPerThread; ++i) {
          seen.push_back(std::make_shared<Seen>());
          joins.push_back(c.join(key, poster, record(seen.back())));
        }
        joined.arrive_and_wait();
        int mine = 0;
        for (auto& j : joins) {
          if (j.role == Role::Leader) {
            leaders.fetch_add(1);
            j.leader.complete(obj);
          } else {
            EXPECT_EQ(j.role, Role::Follower);
            ++mine;
          }
        }
        auto all_called = [&] {
          int n = 0;
          for (auto& s : seen) n += s->calls;
          return n == mine;
        };
        EXPECT_TRUE(test::pumpUntil(&loop, all_called, 5s));
        for (auto& s : seen) {
          if (s->calls == 0) continue;
          EXPECT_EQ(s->calls, 1);
          EXPECT_EQ(s->thread, std::this_thread::get_id()) << "called on another loop's thread";
          EXPECT_EQ(s->result->outcome, WaitOutcome::Done);
          EXPECT_EQ(s->result->object.get(), obj.get());
          done.fetch_add(1);
        }
      }
      test::expectLoopClean(&loop);
    };
    std::thread a(worker), b(worker);
    a.join();
    b.join();
    ASSERT_EQ(leaders.load(), 1) << "round " << round;
    ASSERT_EQ(done.load(), 2 * kPerThread - 1) << "round " << round;
  }
  EXPECT_EQ(c.stats().leaders, static_cast<std::uint64_t>(kRounds));
  EXPECT_EQ(c.stats().in_flight, 0u);
}

// The leader vanishes on one loop; the promoted follower on the other loop finishes the fetch.
TEST(CoalescerCrossLoopTest, LeaderVanishingOnOneLoopPromotesAFollowerOnAnother) {
  FakeClock clock;
  Coalescer c(CoalescerOptions{}, clock);
  uv_loop_t loop_b;
  uv_loop_init(&loop_b);
  auto seen_b = std::make_shared<Seen>();
  std::atomic<bool> b_joined{false};
  std::optional<JoinResult> lead_a;
  {
    // Thread A leads, then waits until B has joined, then drops its token unfinished.
    uv_loop_t loop_a;
    uv_loop_init(&loop_a);
    {
      core::LoopPoster poster_a(&loop_a);
      lead_a.emplace(c.join("k", poster_a, nullptr));
      ASSERT_EQ(lead_a->role, Role::Leader);
    }
    test::expectLoopClean(&loop_a);
  }
  std::thread b([&] {
    {
      core::LoopPoster poster_b(&loop_b);
      JoinResult f = c.join("k", poster_b, record(seen_b));
      EXPECT_EQ(f.role, Role::Follower);
      b_joined = true;
      EXPECT_TRUE(test::pumpUntil(&loop_b, [&] { return seen_b->calls > 0; }, 5s));
      ASSERT_EQ(seen_b->result->outcome, WaitOutcome::Promoted);
      EXPECT_EQ(seen_b->thread, std::this_thread::get_id());
      seen_b->result->leader.complete(makeObject("from b"));
    }
    test::expectLoopClean(&loop_b);
  });
  while (!b_joined) std::this_thread::yield();
  lead_a.reset();  // on this thread: Dangling
  b.join();
  EXPECT_EQ(c.stats().promotions, 1u);
  EXPECT_EQ(c.stats().in_flight, 0u);
}

}  // namespace
}  // namespace portico::cache
