#pragma once
// TLS server configuration, built once per configuration snapshot (style.md G6, G12): one
// SSL_CTX per [server.tls] certificate, shared read-only by every worker (SSL_new on a shared
// SSL_CTX is thread-safe). The first certificate is the default; an SNI callback switches a
// connection to the certificate whose SAN DNS names (or CN, when it has none) match the name the
// client sent, wildcards ("*.example.test": exactly one label) included.
//
// Policy (the same for every context): TLS 1.2 or 1.3 as the floor (min_version), nothing older
// ever; ECDHE + AEAD cipher suites only; renegotiation and compression off; ALPN "http/1.1" (the
// list has room for "h2"); session resumption both ways: a server session cache
// (SSL_SESS_CACHE_SERVER) and session tickets encrypted with keys from a TicketKeyRing that the
// Server shares across all workers and all reloads, so tickets survive SIGHUP.
//
// OpenSSL types are only forward-declared here (G7); the .cc is the only user of OpenSSL besides
// tls_transport.cc.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "conf/config.h"
#include "conf/config_parser.h"

typedef struct ssl_st SSL;
typedef struct ssl_ctx_st SSL_CTX;

namespace portico::proxy {

// Host name -> certificate index (pure). Names are matched case-insensitively; a wildcard
// "*.example.test" matches "a.example.test" but neither "example.test" nor "a.b.example.test"
// (RFC 6125 §6.4.3). Exact names win over wildcards; among equals the earlier certificate wins.
class SniMap {
 public:
  void add(std::string_view name, std::size_t index);
  std::optional<std::size_t> find(std::string_view host) const;
  bool empty() const { return exact_.empty() && wildcard_.empty(); }

 private:
  std::unordered_map<std::string, std::size_t> exact_;
  std::unordered_map<std::string, std::size_t> wildcard_;  // keyed by the part after "*."
};

// Session-ticket keys (RFC 5077 style: 16-byte name, AES-256 key, HMAC-SHA256 key), shared by
// every SSL_CTX of the process. Thread-safe. The current key encrypts new tickets; it is replaced
// when older than `rotation`, and the previous one is kept for decryption only (tickets it
// decrypts are renewed), so a ticket is honoured for at most two rotation periods.
class TicketKeyRing {
 public:
  struct Key {
    unsigned char name[16];
    unsigned char aes[32];
    unsigned char hmac[32];
    std::int64_t created_s;
  };

  explicit TicketKeyRing(std::int64_t rotation_s = 3600);
  // The key for a new ticket at `now_s` (wall-clock seconds); rotates first when due.
  Key encryptionKey(std::int64_t now_s);
  // The key named `name`, if still held; `current` tells whether it is the encryption key.
  std::optional<Key> find(const unsigned char* name, bool& current) const;
  std::uint64_t rotations() const;
  std::int64_t rotationSeconds() const { return rotation_s_; }

 private:
  static Key generate(std::int64_t now_s);
  const std::int64_t rotation_s_;
  mutable std::mutex mu_;
  std::vector<Key> keys_;  // [0] current, [1] previous (if any)
  std::uint64_t rotations_ = 0;
};

class TlsContext {
 public:
  // Builds the contexts for config.server.tls (which must be set). On failure returns null and
  // appends one error per problem, in the `portico -t` format: file = config.source_path, line =
  // the certificates[i] entry, key = "server.tls.certificates[i].cert|key". Problems found:
  // unreadable or unparsable files, a key that does not match its certificate, a certificate
  // that has expired or is not valid yet.
  static std::shared_ptr<const TlsContext> create(const conf::Config& config,
                                                  std::shared_ptr<TicketKeyRing> tickets,
                                                  std::vector<conf::ConfigError>& errors);
  ~TlsContext();
  TlsContext(const TlsContext&) = delete;
  TlsContext& operator=(const TlsContext&) = delete;

  // A server-side SSL for one new connection, or null (out of memory). Any thread. The caller
  // owns it (SSL_free) and must keep this TlsContext alive for as long as the SSL lives: the SNI
  // callback reaches it through the SSL_CTX.
  SSL* newSsl() const;
  std::size_t certificateCount() const { return ctxs_.size(); }
  const SniMap& sniMap() const { return sni_; }

 private:
  TlsContext() = default;
  static int onServerName(SSL* ssl, int* alert, void* arg);

  std::vector<SSL_CTX*> ctxs_;  // [0]: the default certificate
  SniMap sni_;
  std::shared_ptr<TicketKeyRing> tickets_;
};

// `portico -t` and reload: every TLS problem of `config` (none when it has no [server.tls]).
std::vector<conf::ConfigError> validateTls(const conf::Config& config);

}  // namespace portico::proxy
