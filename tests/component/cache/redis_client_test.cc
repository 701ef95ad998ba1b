// RedisClient against a real redis-server (tests/support/redis_server.h) and against FakeRedis
// for what a real server never sends, on a real libuv loop pumped by hand (style.md G7, G8).
// Skipped when redis-server is not installed. The only waits are bounded waits for the server
// process; everything else pumps the loop until the expected event was observed.
#include "cache/redis_client.h"

#include <gtest/gtest.h>
#include <uv.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "tests/support/loop_pump.h"
#include "tests/support/redis_server.h"

namespace portico::cache {
namespace {

using namespace std::chrono_literals;
using namespace std::string_literals;

// ---- parseRedisUrl (pure) -------------------------------------------------------------------

TEST(RedisUrlTest, ParsesHostPortDbAndPassword) {
  std::string error;
  auto o = parseRedisUrl("redis://127.0.0.1:6380/2", error);
  ASSERT_TRUE(o) << error;
  EXPECT_EQ(o->host, "127.0.0.1");
  EXPECT_EQ(o->port, 6380);
  EXPECT_EQ(o->db, 2);
  EXPECT_EQ(o->password, "");

  o = parseRedisUrl("redis://:s3cr%40t%3a@cache.internal:7000/15", error);
  ASSERT_TRUE(o) << error;
  EXPECT_EQ(o->password, "s3cr@t:");
  EXPECT_EQ(o->host, "cache.internal");
  EXPECT_EQ(o->port, 7000);
  EXPECT_EQ(o->db, 15);

  o = parseRedisUrl("redis://default:pw@[::1]:6390", error);
  ASSERT_TRUE(o) << error;
  EXPECT_EQ(o->host, "::1");
  EXPECT_EQ(o->port, 6390);
  EXPECT_EQ(o->db, 0);
  EXPECT_EQ(o->password, "pw");

  o = parseRedisUrl("REDIS://localhost/", error);
  ASSERT_TRUE(o) << error;
  EXPECT_EQ(o->host, "localhost");
  EXPECT_EQ(o->port, 6379);
  EXPECT_EQ(o->db, 0);
  // Timeouts and backoff are not in the URL: they keep their defaults.
  EXPECT_EQ(o->command_timeout_ms, RedisOptions{}.command_timeout_ms);
}

TEST(RedisUrlTest, RejectsTlsWithAClearMessage) {
  std::string error;
  EXPECT_FALSE(parseRedisUrl("rediss://127.0.0.1:6379/0", error));
  EXPECT_NE(error.find("TLS"), std::string::npos) << error;
  EXPECT_NE(error.find("not supported by this hiredis"), std::string::npos) << error;
}

TEST(RedisUrlTest, RejectsMalformedUrls) {
  for (const char* bad :
       {"", "127.0.0.1:6379", "http://h:1/0", "redis://", "redis://:pw@", "redis://h:",
        "redis://h:0", "redis://h:65536", "redis://h:12ab", "redis://h:99999999999999",
        "redis://h/x", "redis://h/-1", "redis://h/1/2", "redis://h/0?timeout=1", "redis://h#f",
        "redis://user:pw@h", "redis://pw@h", "redis://:%zz@h", "redis://:%4@h",
        "redis://::1:6379", "redis://[::1", "redis://[::1]x", "redis://[nope]:1", "redis://h st",
        "unix:///tmp/r.sock"}) {
    std::string error;
    EXPECT_FALSE(parseRedisUrl(bad, error)) << bad;
    EXPECT_FALSE(error.empty()) << bad;
  }
}

TEST(RedisUrlTest, ErrorsNeverEchoThePassword) {
  std::string error;
  EXPECT_FALSE(parseRedisUrl("redis://:hunter2@h:notaport/0", error));
  EXPECT_EQ(error.find("hunter2"), std::string::npos) << error;
}

// ---- the client against a real server --------------------------------------------------------

// What one command got; shared with its callback so a test that gives up early leaves no
// dangling reference behind.
using Slot = std::shared_ptr<std::optional<RedisReply>>;

class RedisClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(uv_loop_init(&loop_), 0);
    loop_ready_ = true;
    if (test::RedisServer::binary().empty()) GTEST_SKIP() << "redis-server is not installed";
  }

  void TearDown() override {
    clients_.clear();
    if (loop_ready_) test::expectLoopClean(&loop_);
  }

  [[nodiscard]] bool startServer(std::vector<std::string> extra_args = {}) {
    std::string error;
    const bool ok = server_.start(&error, 0, std::move(extra_args));
    EXPECT_TRUE(ok) << error;
    return ok;
  }

  // Generous command timeout: the machine running the tests may be very busy. Short backoff so
  // reconnects happen within the tests' budgets.
  RedisOptions options(int port) const {
    RedisOptions o;
    o.port = port;
    o.command_timeout_ms = 3000;
    o.connect_timeout_ms = 3000;
    o.backoff_min_ms = 10;
    o.backoff_max_ms = 100;
    return o;
  }

  RedisClient& client(RedisOptions o) {
    clients_.push_back(std::make_unique<RedisClient>(&loop_, std::move(o)));
    return *clients_.back();
  }
  RedisClient& connectedClient(RedisOptions o) {
    RedisClient& c = client(std::move(o));
    EXPECT_TRUE(test::pumpUntil(&loop_, [&] { return c.connected(); })) << "never connected";
    return c;
  }

  Slot send(RedisClient& c, std::vector<std::string> argv) {
    auto slot = std::make_shared<std::optional<RedisReply>>();
    c.command(std::move(argv), [slot](RedisReply r) {
      EXPECT_FALSE(slot->has_value()) << "callback called twice";
      slot->emplace(std::move(r));
    });
    return slot;
  }
  RedisReply wait(const Slot& slot, std::chrono::milliseconds budget = 10s) {
    EXPECT_TRUE(test::pumpUntil(&loop_, [&] { return slot->has_value(); }, budget))
        << "no callback";
    return slot->value_or(RedisReply{RedisStatus::Disconnected, "<no callback>", {}, 0});
  }
  RedisReply run(RedisClient& c, std::vector<std::string> argv) { return wait(send(c, argv)); }
  // PUBLISHes until one subscriber received it (a subscription is confirmed asynchronously).
  bool published(RedisClient& publisher, const std::string& channel, const std::string& msg) {
    return test::pumpUntil(&loop_, [&] {
      return run(publisher, {"PUBLISH", channel, msg}).integer == 1;
    });
  }

  uv_loop_t loop_{};
  bool loop_ready_ = false;
  test::RedisServer server_;
  std::vector<std::unique_ptr<RedisClient>> clients_;
};

TEST_F(RedisClientTest, SetGetBinaryValuesWithNul) {
  ASSERT_TRUE(startServer());
  RedisClient& c = connectedClient(options(server_.port()));
  const std::string key = "k\0ey\r\n"s;
  const std::string value = "a\0b\r\n$3\r\n\xff\x00"s;
  RedisReply set = run(c, {"SET", key, value});
  EXPECT_EQ(set.status, RedisStatus::Ok) << set.value;
  EXPECT_EQ(set.value, "OK");
  RedisReply get = run(c, {"GET", key});
  EXPECT_EQ(get.status, RedisStatus::Ok) << get.value;
  EXPECT_EQ(get.value, value);
  EXPECT_EQ(c.stats().commands, 2u);
  EXPECT_EQ(c.stats().errors, 0u);
}

TEST_F(RedisClientTest, GetOfMissingKeyIsNil) {
  ASSERT_TRUE(startServer());
  RedisClient& c = connectedClient(options(server_.port()));
  RedisReply get = run(c, {"GET", "missing"});
  EXPECT_EQ(get.status, RedisStatus::Nil);
  EXPECT_EQ(get.value, "");
}

TEST_F(RedisClientTest, SetPxThenPttl) {
  ASSERT_TRUE(startServer());
  RedisClient& c = connectedClient(options(server_.port()));
  EXPECT_EQ(run(c, {"SET", "ttl", "v", "PX", "10000"}).status, RedisStatus::Ok);
  RedisReply pttl = run(c, {"PTTL", "ttl"});
  EXPECT_EQ(pttl.status, RedisStatus::Ok);
  EXPECT_GT(pttl.integer, 0);
  EXPECT_LE(pttl.integer, 10000);
  EXPECT_EQ(run(c, {"PTTL", "missing"}).integer, -2);
}

TEST_F(RedisClientTest, PipelinedRepliesMatchTheirCommands) {
  ASSERT_TRUE(startServer());
  RedisClient& c = connectedClient(options(server_.port()));
  std::vector<Slot> slots;
  for (int i = 0; i < 50; ++i) {
    slots.push_back(send(c, {"SET", "p" + std::to_string(i), "v" + std::to_string(i)}));
  }
  for (int i = 0; i < 50; ++i) slots.push_back(send(c, {"GET", "p" + std::to_string(i)}));
  for (int i = 0; i < 50; ++i) {
    EXPECT_EQ(wait(slots[50 + i]).value, "v" + std::to_string(i));
  }
  RedisReply range = run(c, {"MGET", "p0", "nope", "p1"});
  EXPECT_EQ(range.array, (std::vector<std::string>{"v0", "", "v1"}));
}

TEST_F(RedisClientTest, ErrorReplyFailsOnlyThatCommand) {
  ASSERT_TRUE(startServer());
  RedisClient& c = connectedClient(options(server_.port()));
  EXPECT_EQ(run(c, {"SET", "n", "not a number"}).status, RedisStatus::Ok);
  RedisReply incr = run(c, {"INCR", "n"});
  EXPECT_EQ(incr.status, RedisStatus::Error);
  EXPECT_NE(incr.value.find("not an integer"), std::string::npos) << incr.value;
  EXPECT_EQ(run(c, {"PING"}).value, "PONG");  // same connection, still fine
  EXPECT_EQ(c.stats().errors, 1u);
  EXPECT_EQ(c.stats().reconnects, 0u);
}

TEST_F(RedisClientTest, CallbacksNeverRunInsideCommand) {
  ASSERT_TRUE(startServer());
  RedisClient& c = connectedClient(options(server_.port()));
  bool returned = false;
  int calls = 0;
  auto check = [&](RedisReply) {
    EXPECT_TRUE(returned) << "callback ran synchronously inside command()";
    ++calls;
  };
  c.command({"PING"}, check);
  c.command({}, check);                    // empty: Error, later
  c.command({"subscribe", "x"}, check);    // refused: Error, later
  returned = true;
  ASSERT_TRUE(test::pumpUntil(&loop_, [&] { return calls == 3; }));
  EXPECT_EQ(c.stats().errors, 2u);
}

TEST_F(RedisClientTest, CommandWhileDisconnectedCompletesOnALaterTurn) {
  const int port = test::freeLoopbackPort();  // nothing listens there
  RedisClient& c = client(options(port));
  bool returned = false;
  auto slot = std::make_shared<std::optional<RedisReply>>();
  c.command({"GET", "k"}, [&returned, slot](RedisReply r) {
    EXPECT_TRUE(returned);
    slot->emplace(std::move(r));
  });
  returned = true;
  RedisReply r = wait(slot);
  EXPECT_EQ(r.status, RedisStatus::Disconnected);
  EXPECT_NE(r.value.find("not connected"), std::string::npos) << r.value;
  EXPECT_FALSE(c.connected());
  EXPECT_EQ(c.stats().errors, 1u);
}

// hiredis 0.14's own libuv adapter never reports a refused connect (libuv's UV_EBADF on
// POLLERR is dropped): without a connect timeout the client would wait forever. Ours retries.
TEST_F(RedisClientTest, RefusedConnectIsNoticedAndRetried) {
  const int port = test::freeLoopbackPort();
  RedisOptions o = options(port);
  o.connect_timeout_ms = 0;  // no timeout to hide a lost error
  RedisClient& c = client(o);
  test::pumpTurns(&loop_, 30);  // a few refused attempts
  EXPECT_FALSE(c.connected());
  std::string error;
  ASSERT_TRUE(server_.start(&error, port)) << error;
  ASSERT_TRUE(test::pumpUntil(&loop_, [&] { return c.connected(); }));
  EXPECT_EQ(run(c, {"PING"}).value, "PONG");
}

TEST_F(RedisClientTest, HostnameIsResolvedOffTheLoop) {
  ASSERT_TRUE(startServer());
  RedisOptions o = options(server_.port());
  o.host = "localhost";  // may resolve to ::1 first: attempts rotate through the addresses
  RedisClient& c = connectedClient(o);
  EXPECT_EQ(run(c, {"PING"}).value, "PONG");
}

TEST_F(RedisClientTest, CommandTimeoutDropsTheConnectionThenRecovers) {
  ASSERT_TRUE(startServer());
  RedisOptions o = options(server_.port());
  o.command_timeout_ms = 50;
  RedisClient& c = connectedClient(o);
  RedisClient& admin = connectedClient(options(server_.port()));
  // Every client's commands wait 500 ms from now; the pause itself is answered at once.
  ASSERT_EQ(run(admin, {"CLIENT", "PAUSE", "500"}).status, RedisStatus::Ok);
  Slot first = send(c, {"GET", "k"});
  Slot second = send(c, {"GET", "k2"});
  EXPECT_EQ(wait(first, 3s).status, RedisStatus::Timeout);
  // The second was in flight on the dropped connection: it fails without waiting its turn.
  EXPECT_EQ(wait(second, 1s).status, RedisStatus::Disconnected);
  EXPECT_EQ(c.stats().timeouts, 1u);
  // Reconnects and works again once the pause is over (earlier attempts may time out too).
  bool recovered = false;
  for (int attempt = 0; attempt < 100 && !recovered; ++attempt) {
    ASSERT_TRUE(test::pumpUntil(&loop_, [&] { return c.connected(); }));
    recovered = run(c, {"PING"}).status == RedisStatus::Ok;
  }
  EXPECT_TRUE(recovered);
  EXPECT_GE(c.stats().reconnects, 1u);
}

TEST_F(RedisClientTest, ServerKilledThenRestartedOnTheSamePort) {
  ASSERT_TRUE(startServer());
  const int port = server_.port();
  RedisClient& c = connectedClient(options(port));
  std::vector<std::string> got;
  c.subscribe("events", [&got](std::string_view m) { got.emplace_back(m); });
  RedisClient& publisher = connectedClient(options(port));
  // Subscribed once a PUBLISH reaches one receiver.
  ASSERT_TRUE(published(publisher, "events", "one"));
  ASSERT_TRUE(test::pumpUntil(&loop_, [&] { return !got.empty(); }));

  server_.kill();
  Slot during = send(c, {"GET", "k"});
  RedisReply r = wait(during, 3s);
  EXPECT_TRUE(r.status == RedisStatus::Disconnected || r.status == RedisStatus::Error)
      << toString(r.status) << " " << r.value;
  ASSERT_TRUE(test::pumpUntil(&loop_, [&] { return !c.connected(); }, 3s));

  std::string error;
  ASSERT_TRUE(server_.start(&error, port)) << error;
  ASSERT_TRUE(test::pumpUntil(&loop_, [&] { return c.connected() && publisher.connected(); }));
  EXPECT_EQ(run(c, {"SET", "after", "restart"}).status, RedisStatus::Ok);
  EXPECT_EQ(run(c, {"GET", "after"}).value, "restart");
  EXPECT_GE(c.stats().reconnects, 1u);
  // The pub/sub connection came back too and subscribed again.
  got.clear();
  ASSERT_TRUE(published(publisher, "events", "two"));
  ASSERT_TRUE(test::pumpUntil(&loop_, [&] { return !got.empty(); }));
  EXPECT_EQ(got.back(), "two");
  EXPECT_GE(c.stats().reconnects, 2u);  // both connections
}

TEST_F(RedisClientTest, PubSubDeliversMessagesPublishedByAnotherClient) {
  ASSERT_TRUE(startServer());
  RedisClient& sub = client(options(server_.port()));
  std::vector<std::string> a, b, other;
  sub.subscribe("purge", [&a](std::string_view m) { a.emplace_back(m); });
  sub.subscribe("purge", [&b](std::string_view m) { b.emplace_back(m); });
  sub.subscribe("other", [&other](std::string_view m) { other.emplace_back(m); });
  RedisClient& pub = connectedClient(options(server_.port()));
  ASSERT_TRUE(published(pub, "purge", "warmup"));
  const std::string payload = "/img/\0logo.png"s;
  EXPECT_EQ(run(pub, {"PUBLISH", "purge", payload}).integer, 1);
  ASSERT_TRUE(test::pumpUntil(&loop_, [&] { return !a.empty() && a.back() == payload; }));
  ASSERT_TRUE(test::pumpUntil(&loop_, [&] { return !b.empty() && b.back() == payload; }));
  EXPECT_TRUE(other.empty());
  EXPECT_EQ(a, b);
}

TEST_F(RedisClientTest, DestroyingTheClientCancelsEverything) {
  ASSERT_TRUE(startServer());
  int calls = 0;
  {
    auto c = std::make_unique<RedisClient>(&loop_, options(server_.port()));
    ASSERT_TRUE(test::pumpUntil(&loop_, [&] { return c->connected(); }));
    c->subscribe("ch", [&calls](std::string_view) { ++calls; });
    for (int i = 0; i < 5; ++i) c->command({"GET", "k"}, [&calls](RedisReply) { ++calls; });
    c->command({}, [&calls](RedisReply) { ++calls; });  // already failed, queued for delivery
  }
  // Destroyed before a connection (the constructor starts connecting), and one in backoff.
  { RedisClient fresh(&loop_, options(server_.port())); }
  {
    RedisClient refused(&loop_, options(test::freeLoopbackPort()));
    test::pumpTurns(&loop_, 5);
  }
  test::pumpTurns(&loop_, 10);
  EXPECT_EQ(calls, 0);
  // TearDown: expectLoopClean (every handle closed, uv_loop_close() == 0).
}

TEST_F(RedisClientTest, ACallbackMayDestroyTheClient) {
  ASSERT_TRUE(startServer());
  auto c = std::make_unique<RedisClient>(&loop_, options(server_.port()));
  ASSERT_TRUE(test::pumpUntil(&loop_, [&] { return c->connected(); }));
  int first = 0, second = 0;
  c->command({"PING"}, [&](RedisReply) {
    ++first;
    c.reset();  // the next reply may already be in the same read: it must be dropped
  });
  c->command({"PING"}, [&](RedisReply) { ++second; });
  ASSERT_TRUE(test::pumpUntil(&loop_, [&] { return first == 1; }));
  test::pumpTurns(&loop_, 10);
  EXPECT_EQ(second, 0);
}

TEST_F(RedisClientTest, AuthAndSelectOnEveryConnection) {
  ASSERT_TRUE(startServer({"--requirepass", "s3cret"}));
  RedisOptions db3 = options(server_.port());
  db3.password = "s3cret";
  db3.db = 3;
  RedisClient& c = connectedClient(db3);
  EXPECT_EQ(run(c, {"SET", "where", "db3"}).status, RedisStatus::Ok);
  RedisOptions db0 = db3;
  db0.db = 0;
  RedisClient& other = connectedClient(db0);
  EXPECT_EQ(run(other, {"GET", "where"}).status, RedisStatus::Nil);
  EXPECT_EQ(run(c, {"GET", "where"}).value, "db3");

  RedisClient& anonymous = connectedClient(options(server_.port()));
  RedisReply denied = run(anonymous, {"GET", "where"});
  EXPECT_EQ(denied.status, RedisStatus::Error);
  EXPECT_NE(denied.value.find("NOAUTH"), std::string::npos) << denied.value;
}

TEST_F(RedisClientTest, WrongPasswordNeverSucceeds) {
  ASSERT_TRUE(startServer({"--requirepass", "s3cret"}));
  RedisOptions o = options(server_.port());
  o.password = "wrong";
  RedisClient& c = client(o);
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(test::pumpUntil(&loop_, [&] { return c.connected(); }));
    RedisReply r = run(c, {"GET", "k"});
    EXPECT_TRUE(r.status == RedisStatus::Error || r.status == RedisStatus::Disconnected)
        << toString(r.status);
  }
}

// ---- what a real server never sends (FakeRedis) ----------------------------------------------

TEST_F(RedisClientTest, GarbageReplyIsAnErrorThenReconnects) {
  test::FakeRedis fake("garbage\r\n");
  RedisClient& c = connectedClient(options(fake.port()));
  RedisReply r = run(c, {"GET", "k"});
  EXPECT_EQ(r.status, RedisStatus::Error);
  EXPECT_NE(r.value.find("Protocol error"), std::string::npos) << r.value;
  ASSERT_TRUE(test::pumpUntil(&loop_, [&] { return c.connected() && fake.connections() >= 2; }));
  EXPECT_EQ(c.stats().reconnects, 1u);
  EXPECT_EQ(c.stats().errors, 1u);
}

// hiredis 0.14 assert()s on a reply no command waits for; the guard turns it into a protocol
// error on that connection.
TEST_F(RedisClientTest, UnsolicitedReplyDropsTheConnectionNotTheProcess) {
  test::FakeRedis fake("+OK\r\n+OK\r\n");
  RedisClient& c = connectedClient(options(fake.port()));
  RedisReply r = run(c, {"GET", "k"});
  EXPECT_EQ(r.status, RedisStatus::Ok);
  EXPECT_EQ(r.value, "OK");
  ASSERT_TRUE(test::pumpUntil(&loop_, [&] { return fake.connections() >= 2 && c.connected(); }));
  EXPECT_GE(c.stats().reconnects, 1u);
}

TEST_F(RedisClientTest, MalformedPubSubPushDropsTheConnectionNotTheProcess) {
  test::FakeRedis fake("*3\r\n:1\r\n:2\r\n:3\r\n");
  RedisClient& c = client(options(fake.port()));
  int messages = 0;
  c.subscribe("ch", [&messages](std::string_view) { ++messages; });
  // The command connection plus at least two pub/sub attempts.
  ASSERT_TRUE(test::pumpUntil(&loop_, [&] { return fake.connections() >= 3; }));
  EXPECT_EQ(messages, 0);
}

}  // namespace
}  // namespace portico::cache
