#include "proxy/io/tls_transport.h"

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <algorithm>
#include <climits>
#include <cstring>

namespace portico::proxy {
namespace {

// How long a plain-HTTP client gets to read its 400 before the connection is closed.
constexpr std::uint64_t kPlainHttpLingerMs = 1000;
constexpr std::string_view kPlainHttpBody =
    "400 Bad Request: this port speaks HTTPS; the plain HTTP request was sent to the TLS port\n";

// OpenSSL's error queue is per thread, and a stale entry (left by any library on this thread)
// would make SSL_get_error() report a failure for a plain WANT_READ. Peeking is much cheaper than
// ERR_clear_error(), which walks the whole queue: this runs on every read and write.
inline void clearStaleErrors() {
  if (ERR_peek_error() != 0) ERR_clear_error();
}

// ---- the custom BIO: reads from BioBuffers::in, appends writes to BioBuffers::out ----------

int bioWrite(BIO* bio, const char* data, std::size_t len, std::size_t* written) {
  auto* io = static_cast<TlsTransport::BioBuffers*>(BIO_get_data(bio));
  BIO_clear_retry_flags(bio);
  io->out.append(data, len);
  *written = len;
  return 1;
}

int bioRead(BIO* bio, char* out, std::size_t len, std::size_t* read) {
  auto* io = static_cast<TlsTransport::BioBuffers*>(BIO_get_data(bio));
  BIO_clear_retry_flags(bio);
  if (io->in_len == 0) {
    BIO_set_retry_read(bio);  // SSL_ERROR_WANT_READ: wait for the next chunk
    *read = 0;
    return 0;
  }
  std::size_t n = std::min(len, io->in_len);
  std::memcpy(out, io->in, n);
  io->in += n;
  io->in_len -= n;
  *read = n;
  return 1;
}

long bioCtrl(BIO*, int cmd, long, void*) {
  switch (cmd) {
    case BIO_CTRL_FLUSH:
      return 1;  // writes are already "flushed" into BioBuffers::out
    default:
      return 0;
  }
}

int bioCreate(BIO* bio) {
  BIO_set_init(bio, 1);
  return 1;
}

BIO_METHOD* bioMethod() {
  static BIO_METHOD* method = [] {
    BIO_METHOD* m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "portico-transport");
    BIO_meth_set_write_ex(m, &bioWrite);
    BIO_meth_set_read_ex(m, &bioRead);
    BIO_meth_set_ctrl(m, &bioCtrl);
    BIO_meth_set_create(m, &bioCreate);
    return m;
  }();
  return method;
}

// The first byte of a TLS connection is a handshake record (22). An upper-case letter starts
// an HTTP method: a client speaking plain HTTP to the TLS port.
bool looksLikeHttp(const char* data, std::size_t len) {
  if (len == 0) return false;
  return data[0] >= 'A' && data[0] <= 'Z';
}

}  // namespace

TlsTransport::TlsTransport(uv_loop_t* loop, std::unique_ptr<Transport> inner,
                           std::shared_ptr<const TlsContext> context, SSL* ssl,
                           std::uint64_t handshake_timeout_ms, TlsStats* stats,
                           std::uint64_t buffer_idle_ms)
    : inner_(std::move(inner)),
      context_(std::move(context)),
      ssl_(ssl),
      loop_(loop),
      timer_(loop),
      stats_(stats),
      buffer_idle_ms_(buffer_idle_ms) {
  inner_->setEvents(this);
  bio_ = BIO_new(bioMethod());
  if (bio_ != nullptr) {
    BIO_set_data(bio_, &io_);
    SSL_set_bio(ssl_, bio_, bio_);  // one reference, owned by the SSL from here on
  }
  SSL_set_accept_state(ssl_);
  timer_.start(handshake_timeout_ms, [this] { fail(Failure::Timeout); });
}

TlsTransport::~TlsTransport() { SSL_free(ssl_); }

// ---- reading ----------------------------------------------------------------------------------

void TlsTransport::readStart() {
  app_reading_ = true;
  updateInnerReading();
}

void TlsTransport::readStop() {
  app_reading_ = false;
  updateInnerReading();
}

void TlsTransport::updateInnerReading() {
  // During the handshake (and while answering plain HTTP) this transport reads for itself.
  bool want = !closed_ && state_ != State::Failed &&
              (state_ != State::Established || app_reading_);
  if (want == inner_reading_) return;
  inner_reading_ = want;
  if (want) {
    inner_->readStart();
  } else {
    inner_->readStop();
  }
}

void TlsTransport::onTransportRead(ssize_t n, const char* data) {
  if (closed_ || state_ == State::Failed) return;
  if (n < 0) {
    inner_reading_ = false;  // the inner transport stopped by itself
    if (state_ == State::Handshake) {
      fail(Failure::Closed);
    } else if (state_ == State::RejectingPlainHttp) {
      fail(Failure::PlainHttp);
    } else if (!peer_finished_) {
      peer_finished_ = true;
      events_->onTransportRead(n, nullptr);  // EOF without close_notify, or a socket error
    }
    return;
  }
  if (state_ == State::RejectingPlainHttp || peer_finished_) return;  // discarded
  io_.in = data;
  io_.in_len = static_cast<std::size_t>(n);
  if (state_ == State::Handshake) {
    if (bio_ == nullptr) {
      fail(Failure::Protocol);
    } else if (SSL_in_before(ssl_) && looksLikeHttp(data, io_.in_len)) {
      rejectPlainHttp();
    } else {
      handshake();
    }
  }
  if (state_ == State::Established && !closed_) {
    noteActivity();
    readRecords();
  }
  io_.in_len = 0;  // everything was consumed, or the connection is going away
}

void TlsTransport::handshake() {
  ERR_clear_error();
  int r = SSL_do_handshake(ssl_);
  int err = r == 1 ? SSL_ERROR_NONE : SSL_get_error(ssl_, r);
  // Handshake messages (or the alert explaining a failure) go out first.
  int wrc = flushCiphertext();
  if (err == SSL_ERROR_WANT_READ && wrc == 0) return;  // wait for the client's next flight
  if (err != SSL_ERROR_NONE || wrc != 0) {
    ERR_clear_error();
    fail(Failure::Protocol);
    return;
  }
  state_ = State::Established;
  timer_.stop();
  buffers_held_ = false;
  noteActivity();  // from now on the timer watches for idleness
  info_.protocol = SSL_get_version(ssl_);
  info_.cipher = SSL_get_cipher_name(ssl_);
  info_.resumed = SSL_session_reused(ssl_) == 1;
  const unsigned char* alpn = nullptr;
  unsigned int alpn_len = 0;
  SSL_get0_alpn_selected(ssl_, &alpn, &alpn_len);
  if (alpn_len == 8 && std::memcmp(alpn, "http/1.1", 8) == 0) info_.alpn = "http/1.1";
  if (const char* sni = SSL_get_servername(ssl_, TLSEXT_NAMETYPE_host_name)) info_.server_name = sni;
  if (stats_ != nullptr) {
    bool v13 = SSL_version(ssl_) == TLS1_3_VERSION;
    if (core::Counter* c = stats_->handshakes[v13 ? 1 : 0][info_.resumed ? 1 : 0]) c->add();
  }
  updateInnerReading();
  events_->onTransportEstablished();
}

void TlsTransport::readRecords() {
  // 16 KiB: the largest TLS record plaintext, so one SSL_read takes one whole record.
  thread_local char plain[16 * 1024];
  clearStaleErrors();
  while (!closed_ && !peer_finished_) {
    int r = SSL_read(ssl_, plain, sizeof plain);
    if (r > 0) {
      events_->onTransportRead(r, plain);
      continue;
    }
    int err = SSL_get_error(ssl_, r);
    if (err == SSL_ERROR_WANT_READ) break;
    peer_finished_ = true;
    if (err == SSL_ERROR_ZERO_RETURN) {
      events_->onTransportRead(UV_EOF, nullptr);  // close_notify: the client is done sending
    } else {
      broken_ = true;
      ERR_clear_error();
      events_->onTransportRead(UV_EPROTO, nullptr);
    }
    break;
  }
  // Post-handshake messages (TLS 1.3 key updates) OpenSSL may have queued.
  if (!closed_ && !io_.out.empty() && flushCiphertext() != 0) {
    events_->onTransportRead(UV_EPIPE, nullptr);
  }
}

// ---- record buffers ---------------------------------------------------------------------------

void TlsTransport::noteActivity() {
  last_activity_ = uv_now(loop_);
  if (buffers_held_) return;  // the timer runs already (it re-arms itself while busy)
  buffers_held_ = true;
  timer_.start(buffer_idle_ms_, [this] { onBufferIdleTimer(); });
}

void TlsTransport::onBufferIdleTimer() {
  if (closed_ || state_ != State::Established) return;
  const std::uint64_t idle = uv_now(loop_) - last_activity_;
  // SSL_free_buffers refuses while a buffer holds data (a partial record, unread plaintext
  // while the owner does not read): try again after another quiet period.
  if (idle >= buffer_idle_ms_ && io_.out.empty() && SSL_free_buffers(ssl_) == 1) {
    buffers_held_ = false;
    return;
  }
  const std::uint64_t wait = idle < buffer_idle_ms_ ? buffer_idle_ms_ - idle : buffer_idle_ms_;
  timer_.start(wait, [this] { onBufferIdleTimer(); });
}

// ---- writing ----------------------------------------------------------------------------------

int TlsTransport::flushCiphertext() {
  if (io_.out.empty()) return 0;
  return inner_->write(io_.out);  // takes io_.out (its capacity is kept when sent at once)
}

int TlsTransport::write(std::string& data) {
  if (data.empty()) return 0;
  if (state_ != State::Established || closed_ || shut_down_) {
    data.clear();
    return UV_EPIPE;
  }
  noteActivity();
  clearStaleErrors();
  std::size_t offset = 0;
  while (offset < data.size()) {
    // The BIO accepts everything, so SSL_write completes in one call (records of <= 16 KiB).
    int chunk = static_cast<int>(std::min<std::size_t>(data.size() - offset, INT_MAX));
    int r = SSL_write(ssl_, data.data() + offset, chunk);
    if (r <= 0) {
      broken_ = true;
      ERR_clear_error();
      data.clear();
      return UV_EPROTO;
    }
    offset += static_cast<std::size_t>(r);
  }
  data.clear();
  return flushCiphertext();
}

void TlsTransport::onTransportWritten(int status) {
  if (closed_) return;
  if (state_ == State::Established) {
    events_->onTransportWritten(status);
  } else if (status < 0) {
    fail(state_ == State::RejectingPlainHttp ? Failure::PlainHttp : Failure::Closed);
  }
}

void TlsTransport::shutdown() {
  if (shut_down_ || closed_) return;
  shut_down_ = true;
  if (state_ == State::Established) {
    ERR_clear_error();
    SSL_shutdown(ssl_);  // queues close_notify; we do not wait for the client's
    ERR_clear_error();
    flushCiphertext();
  }
  inner_->shutdown();
}

// ---- failure and closing ----------------------------------------------------------------------

void TlsTransport::rejectPlainHttp() {
  state_ = State::RejectingPlainHttp;
  if (stats_ != nullptr && stats_->failed_plain_http != nullptr) stats_->failed_plain_http->add();
  std::string answer =
      "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: " +
      std::to_string(kPlainHttpBody.size()) + "\r\nConnection: close\r\n\r\n" +
      std::string(kPlainHttpBody);
  if (inner_->write(answer) != 0) {
    fail(Failure::PlainHttp);
    return;
  }
  inner_->shutdown();
  shut_down_ = true;
  // Keep reading (and discarding) briefly, so the client reads the answer instead of a reset.
  timer_.start(kPlainHttpLingerMs, [this] { fail(Failure::PlainHttp); });
}

void TlsTransport::fail(Failure why) {
  if (closed_ || state_ == State::Failed) return;
  const bool counted = state_ == State::RejectingPlainHttp;  // counted when it was detected
  state_ = State::Failed;
  timer_.stop();
  if (stats_ != nullptr && !counted) {
    core::Counter* c = nullptr;
    switch (why) {
      case Failure::Timeout: c = stats_->failed_timeout; break;
      case Failure::Protocol: c = stats_->failed_protocol; break;
      case Failure::PlainHttp: c = stats_->failed_plain_http; break;
      case Failure::Closed: c = stats_->failed_closed; break;
    }
    if (c != nullptr) c->add();
  }
  updateInnerReading();
  events_->onTransportRead(UV_ECONNABORTED, nullptr);  // the owner closes
}

void TlsTransport::close() {
  if (closed_) return;
  // A clean end (no TLS error): send close_notify if not done yet. Besides being polite, it
  // marks the session as properly shut down; OpenSSL drops sessions of connections freed
  // without one from the session cache (no TLS 1.2 resumption by session ID otherwise).
  if (state_ == State::Established && !broken_ && !shut_down_) {
    shut_down_ = true;
    ERR_clear_error();
    SSL_shutdown(ssl_);
    ERR_clear_error();
    flushCiphertext();
  }
  closed_ = true;
  timer_.stop();
  inner_->close();
}

void TlsTransport::onTransportClosed() {
  // Last action: the owner may delete this transport (and with it the inner one) now.
  events_->onTransportClosed();
}

}  // namespace portico::proxy
