// TlsContext, SniMap, TicketKeyRing and validateTls: certificate selection by SNI, ticket key
// rotation, resumption across contexts sharing a ring (a reload), and the `portico -t` errors.
// Handshakes run over memory BIOs (no sockets); certificates are made at run time.
#include <gtest/gtest.h>
#include <openssl/ssl.h>

#include <cstring>
#include <ctime>

#include "proxy/io/tls_context.h"
#include "tests/support/test_certs.h"
#include "tests/support/tls_test_client.h"

namespace portico::proxy {
namespace {

using test::TestCerts;
using test::TlsTestClient;

// ---- SniMap (pure) ----------------------------------------------------------------------------

TEST(SniMapTest, ExactNamesAreCaseInsensitive) {
  SniMap m;
  m.add("www.Example.test", 1);
  EXPECT_EQ(m.find("WWW.example.TEST"), 1u);
  EXPECT_EQ(m.find("www.example.test."), 1u);  // absolute form
  EXPECT_FALSE(m.find("example.test"));
}

TEST(SniMapTest, WildcardCoversExactlyOneLabel) {
  SniMap m;
  m.add("*.wild.test", 2);
  EXPECT_EQ(m.find("a.wild.test"), 2u);
  EXPECT_FALSE(m.find("wild.test"));
  EXPECT_FALSE(m.find("a.b.wild.test"));
  EXPECT_FALSE(m.find(".wild.test"));
}

TEST(SniMapTest, ExactBeatsWildcardAndTheFirstCertificateWins) {
  SniMap m;
  m.add("*.example.test", 0);
  m.add("api.example.test", 3);
  m.add("api.example.test", 4);
  m.add("*.example.test", 5);
  EXPECT_EQ(m.find("api.example.test"), 3u);
  EXPECT_EQ(m.find("www.example.test"), 0u);
}

TEST(SniMapTest, IgnoresMalformedNames) {
  SniMap m;
  m.add("", 1);
  m.add("*", 1);
  m.add("a*.test", 1);
  EXPECT_TRUE(m.empty());
}

// ---- TicketKeyRing ----------------------------------------------------------------------------

TEST(TicketKeyRingTest, RotatesAndKeepsThePreviousKeyForDecryption) {
  TicketKeyRing ring(100);
  const std::int64_t t0 = std::time(nullptr);
  TicketKeyRing::Key k1 = ring.encryptionKey(t0);
  EXPECT_EQ(0, std::memcmp(ring.encryptionKey(t0 + 99).name, k1.name, 16));
  EXPECT_EQ(ring.rotations(), 0u);

  TicketKeyRing::Key k2 = ring.encryptionKey(t0 + 100);
  EXPECT_NE(0, std::memcmp(k2.name, k1.name, 16));
  EXPECT_EQ(ring.rotations(), 1u);
  bool current = true;
  ASSERT_TRUE(ring.find(k1.name, current));
  EXPECT_FALSE(current);
  ASSERT_TRUE(ring.find(k2.name, current));
  EXPECT_TRUE(current);

  ring.encryptionKey(t0 + 200);  // k1 is two rotations old now: gone
  EXPECT_FALSE(ring.find(k1.name, current));
  EXPECT_TRUE(ring.find(k2.name, current));
}

// ---- TlsContext -------------------------------------------------------------------------------

conf::Config configWith(const std::vector<TestCerts::Files>& certs, std::string min_version = "TLSv1.2") {
  conf::Config c;
  c.source_path = "/etc/portico.toml";
  conf::TlsConfig tls;
  int line = 10;
  for (const auto& f : certs) tls.certificates.push_back({f.cert, f.key, line++});
  tls.min_version = std::move(min_version);
  c.server.tls = tls;
  return c;
}

// Runs a handshake between `client` and a server SSL from `ctx`; returns true when it completes.
bool handshake(TlsTestClient& client, SSL* server) {
  BIO* s_in = BIO_new(BIO_s_mem());
  BIO* s_out = BIO_new(BIO_s_mem());
  SSL_set_bio(server, s_in, s_out);
  SSL_set_accept_state(server);
  for (int round = 0; round < 10; ++round) {
    int c = client.step();
    std::string to_server = client.take();
    BIO_write(s_in, to_server.data(), static_cast<int>(to_server.size()));
    int s = SSL_do_handshake(server);
    if (s != 1 && SSL_get_error(server, s) != SSL_ERROR_WANT_READ) {
      ERR_clear_error();
      std::string alert;
      char buf[4096];
      int n;
      while ((n = BIO_read(s_out, buf, sizeof buf)) > 0) alert.append(buf, n);
      client.give(alert);
      client.step();
      return false;
    }
    std::string to_client;
    char buf[16384];
    int n;
    while ((n = BIO_read(s_out, buf, sizeof buf)) > 0) to_client.append(buf, n);
    client.give(to_client);
    if (c == 1 && s == 1) {
      client.read();  // takes the TLS 1.3 tickets
      return true;
    }
    if (c < 0) return false;
  }
  return false;
}

class TlsContextTest : public ::testing::Test {
 protected:
  TestCerts certs;
};

TEST_F(TlsContextTest, SniPicksTheMatchingCertificateAndDefaultsToTheFirst) {
  auto a = certs.make("a", {"a.test", "*.wild.test"}, -60, 86400, true);
  auto b = certs.make("b", {"b.test"});
  std::vector<conf::ConfigError> errors;
  auto ctx = TlsContext::create(configWith({a, b}), std::make_shared<TicketKeyRing>(), errors);
  ASSERT_TRUE(ctx) << (errors.empty() ? "" : errors[0].toString());
  EXPECT_EQ(ctx->certificateCount(), 2u);
  for (auto [sni, cn] : std::vector<std::pair<std::string, std::string>>{
           {"a.test", "a.test"}, {"b.test", "b.test"}, {"x.wild.test", "a.test"},
           {"B.TEST", "b.test"}, {"unknown.test", "a.test"}, {"", "a.test"}}) {
    TlsTestClient client(sni);
    SSL* server = ctx->newSsl();
    ASSERT_TRUE(handshake(client, server)) << sni;
    EXPECT_EQ(client.peerCommonName(), cn) << sni;
    SSL_free(server);
  }
}

TEST_F(TlsContextTest, ProtocolFloorAndAlpn) {
  auto a = certs.make("a", {"a.test"});
  std::vector<conf::ConfigError> errors;
  auto ctx12 = TlsContext::create(configWith({a}), nullptr, errors);
  auto ctx13 = TlsContext::create(configWith({a}, "TLSv1.3"), nullptr, errors);
  ASSERT_TRUE(ctx12 && ctx13);
  {
    TlsTestClient client("a.test", 0, std::string("\x02h2\x08http/1.1", 12));
    SSL* server = ctx12->newSsl();
    ASSERT_TRUE(handshake(client, server));
    EXPECT_EQ(SSL_version(server), TLS1_3_VERSION);  // 1.3 by default
    const unsigned char* p = nullptr;
    unsigned len = 0;
    SSL_get0_alpn_selected(server, &p, &len);
    EXPECT_EQ(std::string(reinterpret_cast<const char*>(p), len), "http/1.1");
    SSL_free(server);
  }
  {
    TlsTestClient client("a.test", TLS1_2_VERSION);
    SSL* server = ctx12->newSsl();
    EXPECT_TRUE(handshake(client, server));
    EXPECT_EQ(SSL_version(server), TLS1_2_VERSION);
    SSL_free(server);
  }
  for (int v : {TLS1_1_VERSION, TLS1_VERSION}) {
    TlsTestClient client("a.test", v, "", v);
    SSL* server = ctx12->newSsl();
    EXPECT_FALSE(handshake(client, server)) << "accepted protocol " << v;
    SSL_free(server);
  }
  {
    TlsTestClient client("a.test", TLS1_2_VERSION);
    SSL* server = ctx13->newSsl();
    EXPECT_FALSE(handshake(client, server)) << "min_version TLSv1.3 accepted TLS 1.2";
    SSL_free(server);
  }
}

// Resumes `session` against `ctx`: returns whether the server reports the session reused.
bool resumes(const std::shared_ptr<const TlsContext>& ctx, SSL_SESSION* session, int max_version) {
  TlsTestClient client("a.test", max_version);
  client.setSession(session);
  SSL* server = ctx->newSsl();
  bool done = handshake(client, server);
  bool ok = done && SSL_session_reused(server) == 1;
  SSL_free(server);
  return ok;
}

SSL_SESSION* fullHandshake(const std::shared_ptr<const TlsContext>& ctx, int max_version) {
  TlsTestClient client("a.test", max_version);
  SSL* server = ctx->newSsl();
  EXPECT_TRUE(handshake(client, server));
  SSL_shutdown(server);  // a clean end keeps the session in the server cache
  SSL_free(server);
  // The client ends cleanly too: OpenSSL marks the session of a connection freed without
  // close_notify as not resumable.
  SSL_shutdown(client.ssl());
  return SSL_get1_session(client.ssl());
}

TEST_F(TlsContextTest, TicketsResumeAcrossContextsSharingTheRing) {
  auto a = certs.make("a", {"a.test"});
  auto ring = std::make_shared<TicketKeyRing>();
  std::vector<conf::ConfigError> errors;
  auto before_reload = TlsContext::create(configWith({a}), ring, errors);
  auto after_reload = TlsContext::create(configWith({a}), ring, errors);
  auto other_ring = TlsContext::create(configWith({a}), std::make_shared<TicketKeyRing>(), errors);
  ASSERT_TRUE(before_reload && after_reload && other_ring);
  for (int v : {TLS1_3_VERSION, TLS1_2_VERSION}) {
    SSL_SESSION* s = fullHandshake(before_reload, v);
    ASSERT_NE(s, nullptr);
    EXPECT_TRUE(resumes(after_reload, s, v)) << v;
    EXPECT_FALSE(resumes(other_ring, s, v)) << v;
    SSL_SESSION_free(s);
  }
}

// ---- validateTls ------------------------------------------------------------------------------

TEST_F(TlsContextTest, ValidChainPasses) {
  auto a = certs.make("a", {"a.test"}, -60, 86400, true);  // leaf + issuer in one file
  EXPECT_TRUE(validateTls(configWith({a})).empty());
  conf::Config none;
  EXPECT_TRUE(validateTls(none).empty());
}

TEST_F(TlsContextTest, ProblemsAreNamedWithLineAndKey) {
  auto a = certs.make("a", {"a.test"});
  auto b = certs.make("b", {"b.test"});
  auto expired = certs.make("old", {"old.test"}, -7200, -3600);
  auto future = certs.make("new", {"new.test"}, 3600, 7200);
  std::string garbage = certs.writeFile("garbage.pem", "-----BEGIN CERTIFICATE-----\nxx\n");
  std::vector<TestCerts::Files> list = {{a.cert, b.key}, expired, future, {garbage, a.key}, {b.cert, garbage}};
  std::vector<conf::ConfigError> errors = validateTls(configWith(list));
  ASSERT_EQ(errors.size(), 5u);
  EXPECT_EQ(errors[0].file, "/etc/portico.toml");
  EXPECT_EQ(errors[0].line, 10);
  EXPECT_EQ(errors[0].key, "server.tls.certificates[0].key");
  EXPECT_NE(errors[0].reason.find("does not match"), std::string::npos) << errors[0].reason;
  EXPECT_EQ(errors[1].line, 11);
  EXPECT_EQ(errors[1].key, "server.tls.certificates[1].cert");
  EXPECT_NE(errors[1].reason.find("expired on"), std::string::npos) << errors[1].reason;
  EXPECT_EQ(errors[2].key, "server.tls.certificates[2].cert");
  EXPECT_NE(errors[2].reason.find("not valid before"), std::string::npos) << errors[2].reason;
  EXPECT_EQ(errors[3].key, "server.tls.certificates[3].cert");
  EXPECT_NE(errors[3].reason.find("cannot load the certificate chain"), std::string::npos);
  EXPECT_EQ(errors[4].key, "server.tls.certificates[4].key");
  EXPECT_NE(errors[4].reason.find("not a PEM private key"), std::string::npos);
  EXPECT_EQ(errors[4].toString().rfind("/etc/portico.toml:14: server.tls.certificates[4].key: ", 0), 0u);
}

TEST_F(TlsContextTest, CreateFailsOnAnyProblem) {
  auto a = certs.make("a", {"a.test"});
  auto b = certs.make("b", {"b.test"});
  std::vector<conf::ConfigError> errors;
  EXPECT_FALSE(TlsContext::create(configWith({a, {b.cert, a.key}}), nullptr, errors));
  EXPECT_EQ(errors.size(), 1u);
}

}  // namespace
}  // namespace portico::proxy
