// TlsTransport over an in-memory transport: the test is the client (OpenSSL over memory BIOs)
// and moves the bytes by hand. A real uv loop only runs the handshake timer.
#include <gtest/gtest.h>

#include "proxy/io/tls_transport.h"
#include "tests/support/loop_pump.h"
#include "tests/support/memory_transport.h"
#include "tests/support/test_certs.h"
#include "tests/support/tls_test_client.h"

namespace portico::proxy {
namespace {

using test::MemoryTransport;
using test::TlsTestClient;

// The owner side: records every event; deletes the transport when it reports closed.
struct Owner : TransportEvents {
  std::unique_ptr<TlsTransport> transport;
  std::string plain;
  std::vector<ssize_t> errors;
  int established = 0;
  int written = 0;
  bool closed = false;

  void onTransportEstablished() override { ++established; }
  void onTransportRead(ssize_t n, const char* data) override {
    if (n > 0) {
      plain.append(data, static_cast<std::size_t>(n));
    } else {
      errors.push_back(n);
    }
  }
  void onTransportWritten(int) override { ++written; }
  void onTransportClosed() override {
    closed = true;
    transport.reset();
  }
};

class TlsTransportTest : public ::testing::Test {
 protected:
  void SetUp() override {
    uv_loop_init(&loop_);
    auto files = certs_.make("a", {"a.test"});
    conf::Config c;
    c.source_path = "test";
    conf::TlsConfig tls;
    tls.certificates.push_back({files.cert, files.key, 1});
    c.server.tls = tls;
    std::vector<conf::ConfigError> errors;
    ctx_ = TlsContext::create(c, std::make_shared<TicketKeyRing>(), errors);
    ASSERT_TRUE(ctx_);
    core::MetricsShard* shard = registry_.addShard();
    for (int v = 0; v < 2; ++v) {
      for (int r = 0; r < 2; ++r) {
        stats_.handshakes[v][r] = shard->counter("hs", std::to_string(v) + std::to_string(r));
      }
    }
    stats_.failed_timeout = shard->counter("fail", "timeout");
    stats_.failed_protocol = shard->counter("fail", "protocol");
    stats_.failed_plain_http = shard->counter("fail", "plain");
    stats_.failed_closed = shard->counter("fail", "closed");
  }

  void TearDown() override {
    if (owner_.transport) {
      owner_.transport->close();
      MemoryTransport::finishClose(wire_);
    }
    test::expectLoopClean(&loop_);
  }

  void start(std::uint64_t handshake_timeout_ms = 5000,
             std::uint64_t buffer_idle_ms = TlsTransport::kDefaultBufferIdleMs) {
    owner_.transport = std::make_unique<TlsTransport>(&loop_, std::make_unique<MemoryTransport>(&wire_),
                                                      ctx_, ctx_->newSsl(), handshake_timeout_ms, &stats_,
                                                      buffer_idle_ms);
    owner_.transport->setEvents(&owner_);
    owner_.transport->readStart();
  }

  // Client -> server and server -> client until the client's handshake is done or stuck.
  bool handshake(TlsTestClient& client) {
    for (int i = 0; i < 10; ++i) {
      int r = client.step();
      std::string out = client.take();
      if (!out.empty()) MemoryTransport::deliver(wire_, out);
      client.give(wire_.written);
      if (r == 1 && owner_.established) return true;
      if (r < 0 || owner_.closed || !owner_.errors.empty()) return false;
    }
    return false;
  }

  // Sends plaintext from the client through the transport.
  void clientSends(TlsTestClient& client, const std::string& plain) {
    client.write(plain);
    MemoryTransport::deliver(wire_, client.take());
  }

  uv_loop_t loop_;
  test::TestCerts certs_;
  core::MetricsRegistry registry_;
  TlsStats stats_;
  std::shared_ptr<const TlsContext> ctx_;
  MemoryTransport::Wire wire_;
  Owner owner_;
};

TEST_F(TlsTransportTest, HandshakeThenBytesBothWays) {
  start();
  EXPECT_TRUE(wire_.reading);  // reads for the handshake by itself
  EXPECT_FALSE(owner_.transport->established());
  EXPECT_EQ(owner_.transport->tls(), nullptr);
  TlsTestClient client("a.test", 0, std::string("\x08http/1.1", 9));
  ASSERT_TRUE(handshake(client));
  EXPECT_EQ(owner_.established, 1);
  const TlsInfo* info = owner_.transport->tls();
  ASSERT_NE(info, nullptr);
  EXPECT_EQ(info->protocol, "TLSv1.3");
  EXPECT_EQ(info->alpn, "http/1.1");
  EXPECT_EQ(info->server_name, "a.test");
  EXPECT_FALSE(info->resumed);
  EXPECT_EQ(stats_.handshakes[1][0]->value(), 1u);

  clientSends(client, "GET / HTTP/1.1\r\nHost: a.test\r\n\r\n");
  EXPECT_EQ(owner_.plain, "GET / HTTP/1.1\r\nHost: a.test\r\n\r\n");

  std::string big(100 * 1024, 'x');  // several records
  std::string copy = big;
  EXPECT_EQ(owner_.transport->write(copy), 0);
  EXPECT_TRUE(copy.empty());
  client.give(wire_.written);
  EXPECT_EQ(client.read(), big);

  // The client's close_notify is the end of its stream.
  SSL_shutdown(client.ssl());
  MemoryTransport::deliver(wire_, client.take());
  ASSERT_EQ(owner_.errors.size(), 1u);
  EXPECT_EQ(owner_.errors[0], UV_EOF);

  owner_.transport->shutdown();  // our close_notify, then FIN
  EXPECT_TRUE(wire_.shut_down);
  client.give(wire_.written);
  client.read();
  EXPECT_EQ(SSL_get_shutdown(client.ssl()) & SSL_RECEIVED_SHUTDOWN, SSL_RECEIVED_SHUTDOWN);
}

TEST_F(TlsTransportTest, IdleConnectionGivesItsRecordBuffersBackAndKeepsWorking) {
  start(5000, /*buffer_idle_ms=*/20);
  TlsTestClient client("a.test");
  ASSERT_TRUE(handshake(client));
  for (int round = 0; round < 3; ++round) {
    const std::string request = "GET /" + std::to_string(round) + " HTTP/1.1\r\n\r\n";
    owner_.plain.clear();
    clientSends(client, request);
    EXPECT_EQ(owner_.plain, request);
    EXPECT_TRUE(owner_.transport->holdsRecordBuffers());
    std::string answer(20000 + round, 'a' + round);  // more than one record
    std::string copy = answer;
    EXPECT_EQ(owner_.transport->write(copy), 0);
    client.give(wire_.written);
    wire_.written.clear();
    EXPECT_EQ(client.read(), answer);
    // Quiet now: the buffers go back, and the next round reallocates them.
    EXPECT_TRUE(test::pumpUntil(&loop_, [&] { return !owner_.transport->holdsRecordBuffers(); },
                                std::chrono::seconds(2)))
        << round;
  }
  EXPECT_TRUE(owner_.errors.empty());
}

TEST_F(TlsTransportTest, HalfARecordKeepsTheBuffersUntilTheRestArrives) {
  start(5000, /*buffer_idle_ms=*/20);
  TlsTestClient client("a.test");
  ASSERT_TRUE(handshake(client));
  const std::string request = "GET /split HTTP/1.1\r\nHost: a.test\r\n\r\n";
  client.write(request);
  std::string record = client.take();
  ASSERT_GT(record.size(), 20u);
  MemoryTransport::deliver(wire_, record.substr(0, 12));  // the header and a few bytes
  EXPECT_TRUE(owner_.plain.empty());
  // Idle for several periods with half a record buffered: the buffers cannot go back.
  test::pumpUntil(&loop_, [] { return false; }, std::chrono::milliseconds(100));
  EXPECT_TRUE(owner_.transport->holdsRecordBuffers());
  MemoryTransport::deliver(wire_, record.substr(12));
  EXPECT_EQ(owner_.plain, request);
  EXPECT_TRUE(owner_.errors.empty());
  EXPECT_TRUE(test::pumpUntil(&loop_, [&] { return !owner_.transport->holdsRecordBuffers(); },
                              std::chrono::seconds(2)));
}

TEST_F(TlsTransportTest, ReadStopIsHonouredOnlyAfterTheHandshake) {
  start();
  owner_.transport->readStop();
  EXPECT_TRUE(wire_.reading);  // the handshake still needs the client's bytes
  TlsTestClient client("a.test");
  ASSERT_TRUE(handshake(client));
  EXPECT_FALSE(wire_.reading);
  owner_.transport->readStart();
  EXPECT_TRUE(wire_.reading);
}

TEST_F(TlsTransportTest, WritesBeforeTheHandshakeAreRefused) {
  start();
  std::string data = "too early";
  EXPECT_EQ(owner_.transport->write(data), UV_EPIPE);
  EXPECT_TRUE(wire_.written.empty());
}

TEST_F(TlsTransportTest, PlainHttpGetsA400ThenTheConnectionEnds) {
  start();
  MemoryTransport::deliver(wire_, "GET / HTTP/1.1\r\nHost: a.test\r\n\r\n");
  EXPECT_EQ(wire_.written.rfind("HTTP/1.1 400 Bad Request\r\n", 0), 0u) << wire_.written;
  EXPECT_NE(wire_.written.find("HTTPS"), std::string::npos);
  EXPECT_TRUE(wire_.shut_down);
  EXPECT_TRUE(owner_.errors.empty());  // lingers first, so the client can read the answer
  EXPECT_TRUE(owner_.plain.empty());
  MemoryTransport::deliver(wire_, "more plain bytes are discarded");
  ASSERT_TRUE(test::pumpUntil(&loop_, [&] { return !owner_.errors.empty(); }));
  EXPECT_EQ(owner_.errors[0], UV_ECONNABORTED);
  EXPECT_EQ(stats_.failed_plain_http->value(), 1u);
  EXPECT_TRUE(owner_.plain.empty());
}

TEST_F(TlsTransportTest, GarbageFailsTheHandshakeAtOnce) {
  start();
  std::string junk = "\x16\x03\x01\x00\x10" + std::string(16, '\xff');
  MemoryTransport::deliver(wire_, junk);
  ASSERT_EQ(owner_.errors.size(), 1u);
  EXPECT_EQ(owner_.errors[0], UV_ECONNABORTED);
  EXPECT_EQ(stats_.failed_protocol->value(), 1u);
  // Nothing more is reported, whatever else arrives.
  MemoryTransport::deliver(wire_, junk);
  EXPECT_EQ(owner_.errors.size(), 1u);
}

TEST_F(TlsTransportTest, OldProtocolIsRefused) {
  start();
  TlsTestClient client("a.test", TLS1_1_VERSION, "", TLS1_1_VERSION);
  EXPECT_FALSE(handshake(client));
  EXPECT_EQ(stats_.failed_protocol->value(), 1u);
  EXPECT_EQ(owner_.established, 0);
}

TEST_F(TlsTransportTest, StalledHandshakeTimesOut) {
  start(/*handshake_timeout_ms=*/30);
  TlsTestClient client("a.test");
  client.step();
  std::string hello = client.take();
  MemoryTransport::deliver(wire_, hello.substr(0, 20));  // a partial ClientHello, then silence
  ASSERT_TRUE(test::pumpUntil(&loop_, [&] { return !owner_.errors.empty(); }));
  EXPECT_EQ(owner_.errors[0], UV_ECONNABORTED);
  EXPECT_EQ(stats_.failed_timeout->value(), 1u);
}

TEST_F(TlsTransportTest, PeerLeavingMidHandshake) {
  start();
  TlsTestClient client("a.test");
  client.step();
  MemoryTransport::deliver(wire_, client.take().substr(0, 30));
  MemoryTransport::deliverError(wire_, UV_EOF);
  ASSERT_EQ(owner_.errors.size(), 1u);
  EXPECT_EQ(owner_.errors[0], UV_ECONNABORTED);
  EXPECT_EQ(stats_.failed_closed->value(), 1u);
}

TEST_F(TlsTransportTest, CloseIsReportedOnceAndTheTransportCanBeDeletedThere) {
  start();
  TlsTestClient client("a.test");
  ASSERT_TRUE(handshake(client));
  owner_.transport->close();
  owner_.transport->close();  // idempotent
  EXPECT_TRUE(wire_.close_requested);
  client.give(wire_.written);
  client.read();  // a clean close sends close_notify
  EXPECT_EQ(SSL_get_shutdown(client.ssl()) & SSL_RECEIVED_SHUTDOWN, SSL_RECEIVED_SHUTDOWN);
  MemoryTransport::finishClose(wire_);
  EXPECT_TRUE(owner_.closed);
  EXPECT_FALSE(owner_.transport);
}

}  // namespace
}  // namespace portico::proxy
