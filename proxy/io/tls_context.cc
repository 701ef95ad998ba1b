#include "proxy/io/tls_context.h"

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <cstring>
#include <ctime>

namespace portico::proxy {
namespace {

// Mozilla "intermediate" for TLS 1.2: forward secrecy and AEAD only. TLS 1.3 suites are all AEAD.
constexpr const char* kTls12Ciphers =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";
constexpr const char* kTls13Suites =
    "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256";
constexpr const char* kGroups = "X25519:P-256:P-384";
// ALPN, in preference order (wire format: length-prefixed). "h2" goes first once it exists.
constexpr unsigned char kAlpn[] = {8, 'h', 't', 't', 'p', '/', '1', '.', '1'};
constexpr unsigned char kSessionIdContext[] = "portico";
constexpr long kSessionCacheSize = 20480;

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

// The OpenSSL error queue as one line (and emptied: it is per thread and must not leak into the
// next operation).
std::string opensslError() {
  std::string out;
  unsigned long e;
  while ((e = ERR_get_error()) != 0) {
    const char* reason = ERR_reason_error_string(e);
    if (reason == nullptr) continue;
    if (!out.empty()) out += "; ";
    out += reason;
  }
  return out.empty() ? "unknown OpenSSL error" : out;
}

std::string asn1Date(const ASN1_TIME* t) {
  std::tm tm{};
  if (ASN1_TIME_to_tm(t, &tm) != 1) return "?";
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S UTC", &tm);
  return buf;
}

int ringIndex() {
  static const int index = SSL_CTX_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
  return index;
}

const EVP_CIPHER* ticketCipher() {
  static EVP_CIPHER* cipher = EVP_CIPHER_fetch(nullptr, "AES-256-CBC", nullptr);
  return cipher;
}

// RFC 5077 ticket protection with the shared ring. Returns 1 (ok), 2 (ok, issue a new ticket),
// 0 (unknown key: full handshake), -1 (error).
int onTicketKey(SSL* ssl, unsigned char* key_name, unsigned char* iv, EVP_CIPHER_CTX* cctx,
                EVP_MAC_CTX* hctx, int enc) {
  auto* ring = static_cast<TicketKeyRing*>(SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), ringIndex()));
  if (ring == nullptr || ticketCipher() == nullptr) return -1;
  TicketKeyRing::Key key;
  int result = 1;
  if (enc) {
    key = ring->encryptionKey(static_cast<std::int64_t>(std::time(nullptr)));
    if (RAND_bytes(iv, EVP_CIPHER_get_iv_length(ticketCipher())) != 1) return -1;
    std::memcpy(key_name, key.name, sizeof key.name);
    if (EVP_EncryptInit_ex2(cctx, ticketCipher(), key.aes, iv, nullptr) != 1) return -1;
  } else {
    bool current = false;
    std::optional<TicketKeyRing::Key> found = ring->find(key_name, current);
    if (!found) return 0;
    key = *found;
    // Renew (2) when the key is the previous one, and always in TLS 1.3: there a resumed
    // handshake only sends a new ticket when asked to, and clients use each ticket once
    // (RFC 8446 §C.4), so without one every other connection would be a full handshake.
    result = current && SSL_version(ssl) != TLS1_3_VERSION ? 1 : 2;
    if (EVP_DecryptInit_ex2(cctx, ticketCipher(), key.aes, iv, nullptr) != 1) return -1;
  }
  char digest[] = "SHA256";
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY, key.hmac, sizeof key.hmac),
      OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
      OSSL_PARAM_construct_end()};
  if (EVP_MAC_CTX_set_params(hctx, params) != 1) return -1;
  return result;
}

int onAlpn(SSL*, const unsigned char** out, unsigned char* outlen, const unsigned char* in,
           unsigned int inlen, void*) {
  unsigned char* selected = nullptr;
  if (SSL_select_next_proto(&selected, outlen, kAlpn, sizeof kAlpn, in, inlen) ==
      OPENSSL_NPN_NEGOTIATED) {
    *out = selected;
    return SSL_TLSEXT_ERR_OK;
  }
  return SSL_TLSEXT_ERR_NOACK;  // no common protocol: go on without ALPN (HTTP/1.1 anyway)
}

// DNS names of a certificate: every SAN dNSName, and the subject CN.
std::vector<std::string> certificateNames(X509* x) {
  std::vector<std::string> names;
  auto* sans = static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(x, NID_subject_alt_name, nullptr, nullptr));
  if (sans != nullptr) {
    for (int i = 0; i < sk_GENERAL_NAME_num(sans); ++i) {
      const GENERAL_NAME* gn = sk_GENERAL_NAME_value(sans, i);
      if (gn->type != GEN_DNS) continue;
      const ASN1_STRING* s = gn->d.dNSName;
      names.emplace_back(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                         static_cast<std::size_t>(ASN1_STRING_length(s)));
    }
    GENERAL_NAMES_free(sans);
  }
  X509_NAME* subject = X509_get_subject_name(x);
  int idx = subject ? X509_NAME_get_index_by_NID(subject, NID_commonName, -1) : -1;
  if (idx >= 0) {
    const ASN1_STRING* s = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, idx));
    names.emplace_back(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                       static_cast<std::size_t>(ASN1_STRING_length(s)));
  }
  return names;
}

// "" when `x` is valid now, else why not.
std::string validityProblem(X509* x, const char* what) {
  if (X509_cmp_current_time(X509_get0_notAfter(x)) < 0) {
    return std::string(what) + " expired on " + asn1Date(X509_get0_notAfter(x));
  }
  if (X509_cmp_current_time(X509_get0_notBefore(x)) > 0) {
    return std::string(what) + " is not valid before " + asn1Date(X509_get0_notBefore(x));
  }
  return "";
}

EVP_PKEY* readPrivateKey(const std::string& path, std::string& error) {
  BIO* bio = BIO_new_file(path.c_str(), "r");
  if (bio == nullptr) {
    error = "cannot read the private key: " + opensslError();
    return nullptr;
  }
  EVP_PKEY* key = PEM_read_bio_PrivateKey(bio, nullptr, nullptr, nullptr);
  BIO_free(bio);
  if (key == nullptr) error = "not a PEM private key (or it is encrypted): " + opensslError();
  return key;
}

}  // namespace

// ---- SniMap -----------------------------------------------------------------------------------

void SniMap::add(std::string_view name, std::size_t index) {
  std::string n = lower(name);
  if (n.size() > 2 && n.compare(0, 2, "*.") == 0) {
    wildcard_.emplace(n.substr(2), index);  // emplace keeps the first certificate's entry
  } else if (!n.empty() && n.find('*') == std::string::npos) {
    exact_.emplace(std::move(n), index);
  }
}

std::optional<std::size_t> SniMap::find(std::string_view host) const {
  std::string h = lower(host);
  if (!h.empty() && h.back() == '.') h.pop_back();  // "example.test." is "example.test"
  if (auto it = exact_.find(h); it != exact_.end()) return it->second;
  std::size_t dot = h.find('.');
  if (dot == std::string::npos || dot == 0) return std::nullopt;
  if (auto it = wildcard_.find(h.substr(dot + 1)); it != wildcard_.end()) return it->second;
  return std::nullopt;
}

// ---- TicketKeyRing ----------------------------------------------------------------------------

TicketKeyRing::TicketKeyRing(std::int64_t rotation_s) : rotation_s_(rotation_s) {
  keys_.push_back(generate(static_cast<std::int64_t>(std::time(nullptr))));
}

TicketKeyRing::Key TicketKeyRing::generate(std::int64_t now_s) {
  Key k{};
  if (RAND_bytes(k.name, sizeof k.name) != 1 || RAND_bytes(k.aes, sizeof k.aes) != 1 ||
      RAND_bytes(k.hmac, sizeof k.hmac) != 1) {
    // No randomness: a fixed key would be a security hole; abort loudly instead.
    std::abort();
  }
  k.created_s = now_s;
  return k;
}

TicketKeyRing::Key TicketKeyRing::encryptionKey(std::int64_t now_s) {
  std::lock_guard<std::mutex> lock(mu_);
  if (now_s - keys_.front().created_s >= rotation_s_) {
    keys_.insert(keys_.begin(), generate(now_s));
    keys_.resize(2);
    ++rotations_;
  }
  return keys_.front();
}

std::optional<TicketKeyRing::Key> TicketKeyRing::find(const unsigned char* name, bool& current) const {
  std::lock_guard<std::mutex> lock(mu_);
  for (std::size_t i = 0; i < keys_.size(); ++i) {
    if (std::memcmp(keys_[i].name, name, sizeof keys_[i].name) == 0) {
      current = i == 0;
      return keys_[i];
    }
  }
  return std::nullopt;
}

std::uint64_t TicketKeyRing::rotations() const {
  std::lock_guard<std::mutex> lock(mu_);
  return rotations_;
}

// ---- TlsContext -------------------------------------------------------------------------------

TlsContext::~TlsContext() {
  for (SSL_CTX* ctx : ctxs_) SSL_CTX_free(ctx);
}

std::shared_ptr<const TlsContext> TlsContext::create(const conf::Config& config,
                                                     std::shared_ptr<TicketKeyRing> tickets,
                                                     std::vector<conf::ConfigError>& errors) {
  if (!config.server.tls) return nullptr;
  const conf::TlsConfig& tls = *config.server.tls;
  std::shared_ptr<TlsContext> out(new TlsContext());
  out->tickets_ = std::move(tickets);
  const std::size_t errors_before = errors.size();
  ERR_clear_error();
  for (std::size_t i = 0; i < tls.certificates.size(); ++i) {
    const conf::TlsCertificate& c = tls.certificates[i];
    const std::string base = "server.tls.certificates[" + std::to_string(i) + "].";
    auto report = [&](const char* key, std::string reason) {
      errors.push_back(conf::ConfigError{config.source_path, c.line, base + key, std::move(reason)});
    };
    SSL_CTX* ctx = SSL_CTX_new(TLS_server_method());
    if (ctx == nullptr) {
      report("cert", "cannot create a TLS context: " + opensslError());
      continue;
    }
    out->ctxs_.push_back(ctx);
    bool ok = true;
    if (SSL_CTX_use_certificate_chain_file(ctx, c.cert.c_str()) != 1) {
      report("cert", "cannot load the certificate chain " + c.cert + ": " + opensslError());
      ok = false;
    }
    X509* leaf = ok ? SSL_CTX_get0_certificate(ctx) : nullptr;
    if (leaf != nullptr) {
      if (std::string why = validityProblem(leaf, "the certificate"); !why.empty()) report("cert", why);
      STACK_OF(X509)* chain = nullptr;
      SSL_CTX_get0_chain_certs(ctx, &chain);
      for (int k = 0; chain != nullptr && k < sk_X509_num(chain); ++k) {
        std::string what = "intermediate certificate #" + std::to_string(k + 1) + " of the chain";
        if (std::string why = validityProblem(sk_X509_value(chain, k), what.c_str()); !why.empty()) {
          report("cert", why);
        }
      }
      for (const std::string& name : certificateNames(leaf)) out->sni_.add(name, i);
    }
    std::string key_error;
    EVP_PKEY* key = readPrivateKey(c.key, key_error);
    if (key == nullptr) {
      report("key", key_error);
    } else {
      if (leaf != nullptr && X509_check_private_key(leaf, key) != 1) {
        ERR_clear_error();
        report("key", "the private key does not match the certificate " + c.cert);
      } else if (leaf != nullptr && SSL_CTX_use_PrivateKey(ctx, key) != 1) {
        report("key", "cannot use the private key: " + opensslError());
      }
      EVP_PKEY_free(key);
    }
    int min_version = tls.min_version == "TLSv1.3" ? TLS1_3_VERSION : TLS1_2_VERSION;
    SSL_CTX_set_min_proto_version(ctx, min_version);
    SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
                                 SSL_OP_CIPHER_SERVER_PREFERENCE);
    // No SSL_MODE_RELEASE_BUFFERS: TlsTransport gives the record buffers back once a
    // connection has been idle for a while, not after every record.
    if (SSL_CTX_set_cipher_list(ctx, kTls12Ciphers) != 1 ||
        SSL_CTX_set_ciphersuites(ctx, kTls13Suites) != 1 ||
        SSL_CTX_set1_groups_list(ctx, kGroups) != 1) {
      report("cert", "cannot set the cipher suites: " + opensslError());
    }
    SSL_CTX_set_session_id_context(ctx, kSessionIdContext, sizeof kSessionIdContext - 1);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
    SSL_CTX_sess_set_cache_size(ctx, kSessionCacheSize);
    SSL_CTX_set_timeout(ctx, static_cast<long>(out->tickets_ ? out->tickets_->rotationSeconds() : 3600));
    SSL_CTX_set_num_tickets(ctx, 1);  // one resumption per connection is what clients use
    if (out->tickets_) {  // (validateTls builds contexts that never handshake: no ring)
      SSL_CTX_set_ex_data(ctx, ringIndex(), out->tickets_.get());
      SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, &onTicketKey);
    }
    SSL_CTX_set_alpn_select_cb(ctx, &onAlpn, nullptr);
    SSL_CTX_set_tlsext_servername_callback(ctx, &TlsContext::onServerName);
    SSL_CTX_set_tlsext_servername_arg(ctx, out.get());
  }
  ERR_clear_error();
  if (errors.size() != errors_before || out->ctxs_.empty()) return nullptr;
  return out;
}

SSL* TlsContext::newSsl() const {
  SSL* ssl = SSL_new(ctxs_.front());
  if (ssl == nullptr) ERR_clear_error();
  return ssl;
}

int TlsContext::onServerName(SSL* ssl, int*, void* arg) {
  const auto* self = static_cast<const TlsContext*>(arg);
  const char* name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
  if (name == nullptr || self->ctxs_.size() < 2) return SSL_TLSEXT_ERR_OK;  // the default
  std::optional<std::size_t> index = self->sni_.find(name);
  if (index && *index != 0) SSL_set_SSL_CTX(ssl, self->ctxs_[*index]);
  // An unknown name gets the default certificate (as nginx does), not a handshake failure.
  return SSL_TLSEXT_ERR_OK;
}

std::vector<conf::ConfigError> validateTls(const conf::Config& config) {
  std::vector<conf::ConfigError> errors;
  if (config.server.tls) TlsContext::create(config, nullptr, errors);
  return errors;
}

}  // namespace portico::proxy
