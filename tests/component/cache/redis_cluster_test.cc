// RedisCluster against a real 3-master Redis Cluster (tests/support/redis_cluster.h) and against
// FakeRedis seeds for hostile replies, on a real libuv loop pumped by hand (style.md G7, G8).
// Skipped when redis-server / redis-cli are not installed. The only waits are bounded waits for
// the server processes; everything else pumps the loop until the expected event was observed.
#include "cache/redis_cluster.h"

#include <gtest/gtest.h>
#include <uv.h>

#include <algorithm>
#include <chrono>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "tests/support/loop_pump.h"
#include "tests/support/redis_cluster.h"
#include "tests/support/redis_server.h"

namespace portico::cache {
namespace {

using namespace std::chrono_literals;

// ---- pure: slots and CLUSTER NODES ---------------------------------------------------------

TEST(RedisClusterSlotTest, Crc16AndKeySlotKnownVectors) {
  EXPECT_EQ(redisCrc16("123456789"), 0x31C3);
  EXPECT_EQ(redisCrc16(""), 0);
  EXPECT_EQ(redisKeySlot("foo"), 12182);
  EXPECT_EQ(redisKeySlot("{user1000}.following"), redisKeySlot("{user1000}.followers"));
  EXPECT_EQ(redisKeySlot("{user1000}.following"), redisKeySlot("user1000"));
  // Only a non-empty tag counts; the first '{' and the next '}' delimit it.
  EXPECT_EQ(redisKeySlot("foo{}{bar}"), redisCrc16("foo{}{bar}") % 16384);
  EXPECT_EQ(redisKeySlot("foo{{bar}}zap"), redisKeySlot("{bar"));
  EXPECT_EQ(redisKeySlot("foo{bar}{zap}"), redisKeySlot("bar"));
  EXPECT_EQ(redisKeySlot("{bar"), redisCrc16("{bar") % 16384);
}

TEST(RedisClusterSlotTest, ParsesClusterNodes) {
  const std::string text =
      "07c3 127.0.0.1:30004@31004 slave e7d1 0 1426238317239 4 connected\n"
      "67ed 127.0.0.1:30002@31002 master - 0 1426238316232 2 connected 5461-10922\n"
      "292f :30003@31003,cache-3.internal master,fail? - 0 0 3 connected 10923-16383\r\n"
      "e7d1 :30001@31001 myself,master - 0 0 1 connected 0-5459 5460 [5461->-67ed] [93-<-292f]\n"
      "dead :0@0 master,noaddr - 0 0 5 disconnected\n"
      "beef 10.0.0.9:30009@31009 handshake - 0 0 0 connected\n";
  std::string error;
  const auto entries = parseClusterNodes(text, "192.168.1.5", error);
  ASSERT_TRUE(entries) << error;
  ASSERT_EQ(entries->size(), 4u);
  EXPECT_FALSE((*entries)[0].master);
  EXPECT_EQ((*entries)[1].host, "127.0.0.1");
  EXPECT_EQ((*entries)[1].port, 30002);
  EXPECT_EQ((*entries)[1].slots, (std::vector<std::pair<int, int>>{{5461, 10922}}));
  EXPECT_EQ((*entries)[2].host, "cache-3.internal");  // no IP: the announced hostname
  EXPECT_TRUE((*entries)[2].failing);
  EXPECT_EQ((*entries)[3].host, "192.168.1.5");  // neither: the node we asked
  EXPECT_EQ((*entries)[3].slots, (std::vector<std::pair<int, int>>{{0, 5459}, {5460, 5460}}));

  for (const char* bad : {"OK", "a b c d e f g", "x 1.2.3.4:1@2 master - 0 0 1 connected 5-3",
                          "x 1.2.3.4:1@2 master - 0 0 1 connected 0-16384",
                          "x 1.2.3.4:1@2 master - 0 0 1 connected abc",
                          "x nocolon master - 0 0 1 connected 1"}) {
    EXPECT_FALSE(parseClusterNodes(bad, "h", error)) << bad;
  }
}

// ---- against a real cluster ------------------------------------------------------------------

using Result = std::shared_ptr<std::optional<RedisReply>>;

class RedisClusterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(uv_loop_init(&loop_), 0);
    loop_ready_ = true;
    if (!test::RedisTestCluster::available()) {
      GTEST_SKIP() << "redis-server or redis-cli is not installed";
    }
  }

  void TearDown() override {
    cluster_.reset();
    clients_.clear();
    if (loop_ready_) test::expectLoopClean(&loop_);
  }

  [[nodiscard]] bool startCluster() {
    std::string error;
    const bool ok = servers_.start(&error);
    EXPECT_TRUE(ok) << error;
    return ok;
  }

  // Generous timeouts: the machine running the tests may be very busy.
  static RedisOptions options(int port) {
    RedisOptions o;
    o.port = port;
    o.command_timeout_ms = 3000;
    o.connect_timeout_ms = 3000;
    o.backoff_min_ms = 10;
    o.backoff_max_ms = 100;
    return o;
  }

  RedisCluster& makeCluster(int seed_port) {
    cluster_ = std::make_unique<RedisCluster>(&loop_, options(seed_port));
    return *cluster_;
  }
  RedisCluster& connectedCluster() {
    RedisCluster& c = makeCluster(servers_.port(0));
    EXPECT_TRUE(test::pumpUntil(&loop_, [&] { return c.connected(); }, 10s)) << "never connected";
    return c;
  }
  RedisClient& connectedClient(int port) {
    clients_.push_back(std::make_unique<RedisClient>(&loop_, options(port)));
    RedisClient& c = *clients_.back();
    EXPECT_TRUE(test::pumpUntil(&loop_, [&] { return c.connected(); }, 10s));
    return c;
  }

  static Result send(RedisExecutor& e, std::vector<std::string> argv) {
    auto result = std::make_shared<std::optional<RedisReply>>();
    e.command(std::move(argv), [result](RedisReply r) {
      EXPECT_FALSE(result->has_value()) << "callback called twice";
      result->emplace(std::move(r));
    });
    EXPECT_FALSE(result->has_value()) << "callback called synchronously";
    return result;
  }
  RedisReply wait(const Result& result, std::chrono::milliseconds budget = 10s) {
    EXPECT_TRUE(test::pumpUntil(&loop_, [&] { return result->has_value(); }, budget))
        << "no callback";
    return result->value_or(RedisReply{RedisStatus::Disconnected, "<no callback>", {}, 0});
  }
  RedisReply run(RedisExecutor& e, std::vector<std::string> argv) { return wait(send(e, argv)); }

  // A key (with a hash tag, so siblings can share its slot) in a slot node `owner` owns.
  std::string keyOwnedBy(std::size_t owner, const std::string& prefix) {
    for (int i = 0; i < 1000; ++i) {
      const std::string tag = prefix + std::to_string(i);
      if (servers_.ownerOf(redisKeySlot(tag)) == static_cast<int>(owner)) return tag;
    }
    ADD_FAILURE() << "no key found for node " << owner;
    return prefix;
  }

  uv_loop_t loop_{};
  bool loop_ready_ = false;
  test::RedisTestCluster servers_;
  std::vector<std::unique_ptr<RedisClient>> clients_;
  std::unique_ptr<RedisCluster> cluster_;
};

TEST_F(RedisClusterTest, SetGetSpreadOverAllMasters) {
  ASSERT_TRUE(startCluster());
  // Issued at once: before the slot map is known they go to the seed, which redirects them.
  RedisCluster& c = makeCluster(servers_.port(0));
  std::vector<Result> sets;
  for (int i = 0; i < 200; ++i) {
    sets.push_back(send(c, {"SET", "key:" + std::to_string(i), "value-" + std::to_string(i)}));
  }
  for (auto& r : sets) {
    const RedisReply reply = wait(r);
    EXPECT_EQ(reply.status, RedisStatus::Ok) << reply.value;
  }
  EXPECT_TRUE(test::pumpUntil(&loop_, [&] { return c.connected(); }));
  std::vector<Result> gets;
  for (int i = 0; i < 200; ++i) gets.push_back(send(c, {"GET", "key:" + std::to_string(i)}));
  for (int i = 0; i < 200; ++i) {
    const RedisReply reply = wait(gets[i]);
    EXPECT_EQ(reply.status, RedisStatus::Ok) << reply.value;
    EXPECT_EQ(reply.value, "value-" + std::to_string(i));
  }
  EXPECT_EQ(run(c, {"GET", "missing-key"}).status, RedisStatus::Nil);
  // The keys really live on different masters.
  std::int64_t total = 0;
  for (std::size_t i = 0; i < servers_.size(); ++i) {
    const RedisReply size = run(connectedClient(servers_.port(i)), {"DBSIZE"});
    ASSERT_EQ(size.status, RedisStatus::Ok) << size.value;
    EXPECT_GT(size.integer, 0) << "node " << i;
    total += size.integer;
  }
  EXPECT_EQ(total, 200);
  EXPECT_EQ(c.clusterStats().commands, 401u);
  EXPECT_GE(c.clusterStats().refreshes, 1u);
  EXPECT_EQ(c.clusterStats().nodes, 3u);
  EXPECT_GE(c.stats().commands, 401u);
}

TEST_F(RedisClusterTest, SlotsAgreeWithTheServerAndHashTagsShareASlot) {
  ASSERT_TRUE(startCluster());
  RedisCluster& c = connectedCluster();
  for (const std::string key : {"foo", "bar", "123456789", "{user1000}.following",
                                "{user1000}.followers", "a{b}c", "x{}y", "\xff\x00z"}) {
    const RedisReply slot = run(c, {"CLUSTER", "KEYSLOT", key});
    ASSERT_EQ(slot.status, RedisStatus::Ok) << slot.value;
    EXPECT_EQ(slot.integer, redisKeySlot(key)) << key;
  }
  std::set<std::string> owners;
  for (int i = 0; i < 20; ++i) {
    const std::string key = "{cart:42}." + std::to_string(i);
    EXPECT_EQ(run(c, {"SET", key, "x"}).status, RedisStatus::Ok);
    owners.insert(c.slotOwner(redisKeySlot(key)));
  }
  EXPECT_EQ(owners.size(), 1u);
  // One slot: a multi-key command works (it would fail with CROSSSLOT otherwise).
  const RedisReply del = run(c, {"DEL", "{cart:42}.0", "{cart:42}.1", "{cart:42}.2"});
  EXPECT_EQ(del.status, RedisStatus::Ok) << del.value;
  EXPECT_EQ(del.integer, 3);
}

TEST_F(RedisClusterTest, FollowsMovedAfterTheSlotMoved) {
  ASSERT_TRUE(startCluster());
  RedisCluster& c = connectedCluster();
  const std::string key = keyOwnedBy(0, "moving");
  const int slot = redisKeySlot(key);
  ASSERT_EQ(run(c, {"SET", key, "v1"}).status, RedisStatus::Ok);
  const std::string old_owner = c.slotOwner(slot);
  EXPECT_EQ(old_owner, "127.0.0.1:" + std::to_string(servers_.port(0)));

  std::string error;
  ASSERT_TRUE(servers_.moveSlot(slot, 0, 1, &error)) << error;
  EXPECT_EQ(c.slotOwner(slot), old_owner);  // the client still has the old map
  const RedisReply get = run(c, {"GET", key});
  EXPECT_EQ(get.status, RedisStatus::Ok) << get.value;
  EXPECT_EQ(get.value, "v1");
  EXPECT_GE(c.clusterStats().moved, 1u);
  EXPECT_EQ(c.slotOwner(slot), "127.0.0.1:" + std::to_string(servers_.port(1)));
  // Writes go to the new owner directly now.
  const auto moved_before = c.clusterStats().moved;
  EXPECT_EQ(run(c, {"SET", key, "v2"}).status, RedisStatus::Ok);
  EXPECT_EQ(c.clusterStats().moved, moved_before);
  EXPECT_EQ(run(connectedClient(servers_.port(1)), {"GET", key}).value, "v2");
}

TEST_F(RedisClusterTest, FollowsAskWhileTheSlotIsMigrating) {
  ASSERT_TRUE(startCluster());
  RedisCluster& c = connectedCluster();
  const std::string tag = "{" + keyOwnedBy(0, "ask") + "}";
  const std::string migrated = tag + ".migrated", stays = tag + ".stays";
  const int slot = redisKeySlot(migrated);
  ASSERT_EQ(run(c, {"SET", migrated, "there"}).status, RedisStatus::Ok);
  ASSERT_EQ(run(c, {"SET", stays, "here"}).status, RedisStatus::Ok);

  std::string error;
  ASSERT_TRUE(servers_.beginMigration(slot, 0, 2, &error)) << error;
  ASSERT_TRUE(servers_.migrateKeys(0, 2, {migrated}, &error)) << error;
  const RedisReply moved_key = run(c, {"GET", migrated});
  EXPECT_EQ(moved_key.status, RedisStatus::Ok) << moved_key.value;
  EXPECT_EQ(moved_key.value, "there");
  EXPECT_GE(c.clusterStats().asked, 1u);
  EXPECT_EQ(run(c, {"GET", stays}).value, "here");
  // ASK does not change the map: the source still owns the slot.
  EXPECT_EQ(c.slotOwner(slot), "127.0.0.1:" + std::to_string(servers_.port(0)));
  EXPECT_EQ(c.clusterStats().moved, 0u);
}

TEST_F(RedisClusterTest, RedirectLoopEndsWithAnError) {
  ASSERT_TRUE(startCluster());
  RedisCluster& c = connectedCluster();
  const std::string key = keyOwnedBy(0, "loop");
  const int slot = redisKeySlot(key);
  // MIGRATING on the source without IMPORTING on the target: a missing key gets ASK from the
  // source and MOVED (back to the source) from the target, forever.
  std::string error;
  ASSERT_TRUE(servers_.cli(0, {"CLUSTER", "SETSLOT", std::to_string(slot), "MIGRATING",
                               servers_.nodeId(1)},
                           &error))
      << error;
  const RedisReply get = run(c, {"GET", key});
  EXPECT_EQ(get.status, RedisStatus::Error);
  EXPECT_NE(get.value.find("too many cluster redirections"), std::string::npos) << get.value;
  EXPECT_GE(c.clusterStats().redirect_errors, 1u);
  ASSERT_TRUE(servers_.cli(0, {"CLUSTER", "SETSLOT", std::to_string(slot), "STABLE"}, &error));
  EXPECT_EQ(run(c, {"GET", key}).status, RedisStatus::Nil);
}

TEST_F(RedisClusterTest, KilledMasterFailsPromptlyOthersKeepWorking) {
  ASSERT_TRUE(startCluster());
  RedisCluster& c = connectedCluster();
  const std::string dead_key = keyOwnedBy(2, "dead"), live_key = keyOwnedBy(1, "live");
  ASSERT_EQ(run(c, {"SET", dead_key, "x"}).status, RedisStatus::Ok);
  ASSERT_EQ(run(c, {"SET", live_key, "y"}).status, RedisStatus::Ok);
  servers_.kill(2);
  for (int i = 0; i < 3; ++i) {
    const auto start = std::chrono::steady_clock::now();
    const RedisReply get = run(c, {"GET", dead_key});
    const auto took = std::chrono::steady_clock::now() - start;
    EXPECT_TRUE(get.status == RedisStatus::Disconnected || get.status == RedisStatus::Timeout ||
                get.status == RedisStatus::Error)
        << toString(get.status) << " " << get.value;
    EXPECT_LT(took, 3500ms);  // the command timeout, plus slack
    const RedisReply live = run(c, {"GET", live_key});
    EXPECT_EQ(live.status, RedisStatus::Ok) << live.value;
    EXPECT_EQ(live.value, "y");
  }
  EXPECT_GE(c.stats().errors, 3u);
  EXPECT_TRUE(c.connected());
}

TEST_F(RedisClusterTest, PublishReachesSubscriber) {
  ASSERT_TRUE(startCluster());
  RedisCluster& c = connectedCluster();
  std::vector<std::string> got;
  c.subscribe("invalidate", [&got](std::string_view m) { got.emplace_back(m); });
  // Subscribed once a PUBLISH reaches the handler (the SUBSCRIBE is confirmed asynchronously).
  EXPECT_TRUE(test::pumpUntil(&loop_, [&] {
    run(c, {"PUBLISH", "invalidate", "k1"});
    return !got.empty();
  }));
  // Published through another node: cluster PUBLISH is broadcast to every node.
  got.clear();
  RedisClient& other = connectedClient(servers_.port(2));
  EXPECT_TRUE(test::pumpUntil(&loop_, [&] {
    run(other, {"PUBLISH", "invalidate", "k2"});
    return std::find(got.begin(), got.end(), "k2") != got.end();  // k1s may still arrive
  }));
}

TEST_F(RedisClusterTest, SubscriptionMovesWhenItsNodeDies) {
  ASSERT_TRUE(startCluster());
  RedisCluster& c = connectedCluster();
  std::vector<std::string> got;
  c.subscribe("events", [&got](std::string_view m) { got.emplace_back(m); });
  EXPECT_TRUE(test::pumpUntil(&loop_, [&] {
    run(c, {"PUBLISH", "events", "before"});
    return !got.empty();
  }));
  servers_.kill(0);  // the seed, which holds the subscription
  got.clear();
  RedisClient& publisher = connectedClient(servers_.port(1));
  EXPECT_TRUE(test::pumpUntil(
      &loop_,
      [&] {
        run(publisher, {"PUBLISH", "events", "after"});
        return std::find(got.begin(), got.end(), "after") != got.end();
      },
      20s));
  EXPECT_EQ(c.clusterStats().pubsub_moves, 1u);
}

TEST_F(RedisClusterTest, DestroyingTheClusterInsideACallbackIsSafe) {
  ASSERT_TRUE(startCluster());
  RedisCluster& c = connectedCluster();
  int called = 0;
  for (int i = 0; i < 10; ++i) {
    c.command({"SET", "d" + std::to_string(i), "v"}, [&](RedisReply) {
      ++called;
      cluster_.reset();  // the others are dropped, never called
    });
  }
  EXPECT_TRUE(test::pumpUntil(&loop_, [&] { return cluster_ == nullptr; }));
  test::pumpTurns(&loop_, 20);
  EXPECT_EQ(called, 1);

  // Also from a callback of a command that got MOVED (redirected through a second node).
  RedisCluster& fresh = makeCluster(servers_.port(0));
  const std::string key = keyOwnedBy(2, "far");
  fresh.command({"GET", key}, [&](RedisReply) { cluster_.reset(); });
  fresh.command({"GET", key}, [&](RedisReply) { ADD_FAILURE() << "called after destruction"; });
  EXPECT_TRUE(test::pumpUntil(&loop_, [&] { return cluster_ == nullptr; }));
  test::pumpTurns(&loop_, 20);
}

// ---- hostile seeds ---------------------------------------------------------------------------

TEST_F(RedisClusterTest, GarbageRedirectionsAreErrors) {
  for (const std::string reply :
       {"-MOVED 1 notanaddress\r\n", "-MOVED 1 127.0.0.1:0\r\n", "-MOVED 99999 127.0.0.1:1\r\n",
        "-ASK 1 ?:7000\r\n", "-MOVED 1 bad/host:7000\r\n", "-MOVED\r\n", "-ASK 1 1 1\r\n"}) {
    test::FakeRedis fake(reply);
    RedisCluster& c = makeCluster(fake.port());
    // The fake answers once per read: let the slot map request (an error reply) go first.
    EXPECT_TRUE(test::pumpUntil(&loop_, [&] { return c.clusterStats().refresh_failures > 0; }));
    const RedisReply get = run(c, {"GET", "k"});
    EXPECT_EQ(get.status, RedisStatus::Error) << reply;
    EXPECT_NE(get.value.find("unusable cluster redirection"), std::string::npos) << get.value;
    EXPECT_FALSE(c.connected());
    EXPECT_EQ(c.clusterStats().nodes, 1u);  // nothing was created for the garbage address
    cluster_.reset();
    test::pumpTurns(&loop_, 5);
  }
}

TEST_F(RedisClusterTest, HostileSlotMapIsBounded) {
  // A "cluster" of 100 masters (nothing listens on their ports): at most kMaxNodes clients.
  std::string nodes;
  for (int i = 0; i < 100; ++i) {
    nodes += "id" + std::to_string(i) + " 127.0.0.1:" + std::to_string(10 + i) +
             "@1 master - 0 0 1 connected " + std::to_string(i) + "\n";
  }
  test::FakeRedis fake("$" + std::to_string(nodes.size()) + "\r\n" + nodes + "\r\n");
  RedisCluster& c = makeCluster(fake.port());
  EXPECT_TRUE(test::pumpUntil(&loop_, [&] { return !c.slotOwner(0).empty(); }));
  EXPECT_EQ(c.clusterStats().nodes, RedisCluster::kMaxNodes);  // the seed + 63 of them
  EXPECT_FALSE(c.connected());  // no master of the map is reachable
  // Slot 12182 ("foo") has no owner: it goes to a connected node, the seed (the fake's reply).
  EXPECT_EQ(run(c, {"GET", "foo"}).status, RedisStatus::Ok);
  // Slot 0's owner never connects: Disconnected once its first-connect wait is over.
  const RedisReply dead = run(c, {"GET", std::string("\x00", 1)});
  EXPECT_EQ(dead.status, RedisStatus::Disconnected) << dead.value;
}

}  // namespace
}  // namespace portico::cache
