#pragma once
// TlsTransport: server-side TLS over another Transport (TcpTransport in production, an in-memory
// transport in tests), with OpenSSL driven through a custom BIO over our own buffers (h2o's
// idea): ciphertext read from the inner transport is handed to OpenSSL straight from the read
// buffer, and records OpenSSL writes are appended to one std::string that goes to the inner
// transport's write() (uv_try_write first). No blocking call; no copy beyond the encryption
// itself; no allocation per read or write on the steady path.
//
// States:
//   Handshake  -> Established        (SSL_do_handshake done: onTransportEstablished)
//   Handshake  -> RejectingPlainHttp (the first bytes are an HTTP request: a plain "400" answer,
//                                     FIN, then failure after a short linger)
//   Handshake | RejectingPlainHttp -> Failed  (protocol error, peer gone, handshake timeout)
//   any -> close()
// A failure is reported to the owner as onTransportRead(UV_ECONNABORTED), i.e. "close me".
// The handshake is bounded by `handshake_timeout_ms`; until it is done nothing but the
// TLS state (a few KiB) is held per connection, and nothing reaches the HTTP layer.
#include <uv.h>

#include <cstdint>
#include <memory>
#include <string>

#include "proxy/core/metrics.h"
#include "proxy/core/uv_util.h"
#include "proxy/io/tls_context.h"
#include "proxy/io/transport.h"

typedef struct bio_st BIO;

namespace portico::proxy {

// Per-worker TLS counters (owner loop only), created by the worker.
struct TlsStats {
  // [TLS 1.3?][resumed?] -> portico_tls_handshakes_total{protocol,resumed}
  core::Counter* handshakes[2][2] = {{nullptr, nullptr}, {nullptr, nullptr}};
  // portico_tls_handshake_errors_total{reason}
  core::Counter* failed_timeout = nullptr;
  core::Counter* failed_protocol = nullptr;  // bad version, no shared cipher, garbage bytes
  core::Counter* failed_plain_http = nullptr;
  core::Counter* failed_closed = nullptr;  // the peer left before the handshake was done
};

class TlsTransport final : public Transport, private TransportEvents {
 public:
  // Takes `ssl` (from context->newSsl()) and `inner` (fresh, nothing read yet). `stats` may be
  // null; otherwise it must outlive this transport.
  // `buffer_idle_ms`: an established connection with no traffic for that long gives its
  // OpenSSL record buffers back (SSL_free_buffers; about 34 KiB, reallocated by the next
  // record). Cheaper than SSL_MODE_RELEASE_BUFFERS, which frees and reallocates both after
  // every record: 2k of the 30k instructions of a 1 KiB HTTPS keep-alive request.
  static constexpr std::uint64_t kDefaultBufferIdleMs = 1000;
  TlsTransport(uv_loop_t* loop, std::unique_ptr<Transport> inner,
               std::shared_ptr<const TlsContext> context, SSL* ssl,
               std::uint64_t handshake_timeout_ms, TlsStats* stats,
               std::uint64_t buffer_idle_ms = kDefaultBufferIdleMs);
  ~TlsTransport() override;  // only after onTransportClosed()
  TlsTransport(const TlsTransport&) = delete;
  TlsTransport& operator=(const TlsTransport&) = delete;

  // Transport
  void setEvents(TransportEvents* events) override { events_ = events; }
  bool established() const override { return state_ == State::Established; }
  void readStart() override;
  void readStop() override;
  int write(std::string& data) override;
  std::size_t pendingBytes() const override { return inner_->pendingBytes(); }
  void shutdown() override;
  void close() override;
  const std::string& peerIp() const override { return inner_->peerIp(); }
  const TlsInfo* tls() const override { return state_ == State::Established ? &info_ : nullptr; }
  // False once idle buffers were given back (until the next record; for tests).
  bool holdsRecordBuffers() const { return buffers_held_; }

  // The buffers the custom BIO reads from and writes to (tls_transport.cc only).
  struct BioBuffers {
    const char* in = nullptr;  // ciphertext not yet consumed by OpenSSL
    std::size_t in_len = 0;
    std::string out;  // ciphertext produced by OpenSSL, not yet handed to the inner transport
  };

 private:
  enum class State { Handshake, RejectingPlainHttp, Established, Failed };
  enum class Failure { Timeout, Protocol, PlainHttp, Closed };

  // TransportEvents (from the inner transport)
  void onTransportRead(ssize_t n, const char* data) override;
  void onTransportWritten(int status) override;
  void onTransportClosed() override;

  void handshake();
  void readRecords();
  void rejectPlainHttp();
  int flushCiphertext();
  void fail(Failure why);
  void updateInnerReading();
  void noteActivity();     // traffic on an established connection: buffers in use
  void onBufferIdleTimer();

  std::unique_ptr<Transport> inner_;
  std::shared_ptr<const TlsContext> context_;  // the SNI callback reaches it via the SSL_CTX
  SSL* ssl_;
  BIO* bio_ = nullptr;
  BioBuffers io_;
  uv_loop_t* loop_;
  core::Timer timer_;  // handshake deadline, plain-HTTP linger, then the buffer idle timer
  TlsStats* stats_;
  std::uint64_t buffer_idle_ms_;
  std::uint64_t last_activity_ = 0;  // uv_now() of the last record in or out
  bool buffers_held_ = true;
  TransportEvents* events_ = nullptr;
  TlsInfo info_;
  State state_ = State::Handshake;
  bool app_reading_ = false;
  bool inner_reading_ = false;
  bool peer_finished_ = false;  // close_notify or EOF seen: nothing more to read
  bool shut_down_ = false;
  bool broken_ = false;  // a TLS error after the handshake: the session must not be resumed
  bool closed_ = false;
};

}  // namespace portico::proxy
