#pragma once
// A TLS client over memory BIOs for the TLS unit tests: no sockets, the test moves the bytes.
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <string>

namespace portico::test {

class TlsTestClient {
 public:
  // `max_version`: 0 = highest. `alpn`: wire format ("\x08http/1.1"), empty for none.
  explicit TlsTestClient(const std::string& sni = "", int max_version = 0, const std::string& alpn = "",
                         int min_version = 0) {
    ctx_ = SSL_CTX_new(TLS_client_method());
    SSL_CTX_set_verify(ctx_, SSL_VERIFY_NONE, nullptr);
    if (max_version) SSL_CTX_set_max_proto_version(ctx_, max_version);
    if (min_version) {
      SSL_CTX_set_min_proto_version(ctx_, min_version);
      SSL_CTX_set_security_level(ctx_, 0);
    }
    ssl_ = SSL_new(ctx_);
    rbio_ = BIO_new(BIO_s_mem());
    wbio_ = BIO_new(BIO_s_mem());
    SSL_set_bio(ssl_, rbio_, wbio_);
    SSL_set_connect_state(ssl_);
    if (!sni.empty()) SSL_set_tlsext_host_name(ssl_, sni.c_str());
    if (!alpn.empty()) {
      SSL_set_alpn_protos(ssl_, reinterpret_cast<const unsigned char*>(alpn.data()),
                          static_cast<unsigned>(alpn.size()));
    }
  }
  ~TlsTestClient() {
    SSL_free(ssl_);
    SSL_CTX_free(ctx_);
  }
  TlsTestClient(const TlsTestClient&) = delete;
  TlsTestClient& operator=(const TlsTestClient&) = delete;

  SSL* ssl() { return ssl_; }
  void setSession(SSL_SESSION* s) { SSL_set_session(ssl_, s); }

  // Steps the handshake; returns 1 done, 0 wants more bytes, -1 failed.
  int step() {
    int r = SSL_do_handshake(ssl_);
    if (r == 1) return 1;
    int e = SSL_get_error(ssl_, r);
    ERR_clear_error();
    return e == SSL_ERROR_WANT_READ ? 0 : -1;
  }
  // Bytes the client wants to send.
  std::string take() {
    std::string out;
    char buf[16384];
    int n;
    while ((n = BIO_read(wbio_, buf, sizeof buf)) > 0) out.append(buf, static_cast<std::size_t>(n));
    return out;
  }
  // Bytes from the server.
  void give(std::string& bytes) {
    if (!bytes.empty()) BIO_write(rbio_, bytes.data(), static_cast<int>(bytes.size()));
    bytes.clear();
  }
  void write(const std::string& plain) { SSL_write(ssl_, plain.data(), static_cast<int>(plain.size())); }
  // All plaintext available now (processes post-handshake messages such as tickets too).
  std::string read() {
    std::string out;
    char buf[16384];
    int n;
    while ((n = SSL_read(ssl_, buf, sizeof buf)) > 0) out.append(buf, static_cast<std::size_t>(n));
    ERR_clear_error();
    return out;
  }
  std::string peerCommonName() {
    X509* cert = SSL_get1_peer_certificate(ssl_);
    if (cert == nullptr) return "";
    char cn[256] = {0};
    X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, cn, sizeof cn);
    X509_free(cert);
    return cn;
  }

 private:
  SSL_CTX* ctx_;
  SSL* ssl_;
  BIO* rbio_;
  BIO* wbio_;
};

}  // namespace portico::test
