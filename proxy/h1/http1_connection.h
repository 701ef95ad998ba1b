#pragma once
// Http1Connection: one client connection on one worker loop. Reads bytes, parses requests with
// Http1Parser, hands each request to a RequestHandler made by the HandlerFactory, and writes the
// handler's response. One request is active at a time; pipelined requests wait, unparsed, in the
// input buffer (bounded: reading stops while it is full), so responses go out in request order.
//
// Lifecycle (G11):
//   Accepted -> [ReadingHead -> Active (handler exists) -> ReadingHead ...] -> Closing -> deleted
//   - The handler is created when a head is complete and destroyed (deferred, never inside one
//     of its own calls) once its response has ended and its request body has been read.
//   - Closing: the connection stops reading, destroys the handler (whose destructor must cancel
//     its work and must not call the Exchange), closes the transport; the object (and its
//     transport) is deleted in the transport's onTransportClosed().
// I/O goes through a Transport (proxy/io/transport.h): plain TCP or TLS; the connection does not
// know which, except that it reports TLS details (tlsInfo()), marks requests "https" and adds
// Strict-Transport-Security on TLS when configured.
// Timeouts: header_timeout_ms from the first byte of a head (and for the first request, from
// accept, or for TLS from the end of the handshake, which the transport bounds itself) to its
// completion -> 408 + close; idle_timeout_ms between requests -> close; a request body that
// stalls for idle_timeout_ms -> close.
// Backpressure: sendBody() returns false while more than kHighWater bytes wait to be written;
// the handler then stops its source and continues on onWritable() (below kLowWater).
#include <uv.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "proxy/core/defer_queue.h"
#include "proxy/core/http_message.h"
#include "proxy/core/uv_util.h"
#include "proxy/h1/http1_parser.h"
#include "proxy/io/transport.h"

namespace portico::proxy {

// The connection side of one request/response, handed to the RequestHandler. Loop thread only.
class Exchange {
 public:
  virtual ~Exchange() = default;
  virtual const core::RequestHead& request() const = 0;
  // Response head. `content_length`: nullopt = unknown (chunked for HTTP/1.1, close-delimited
  // for HTTP/1.0). Framing and Connection headers in `head` are replaced by the connection's.
  virtual void sendHead(core::ResponseHead head, std::optional<std::uint64_t> content_length) = 0;
  // Body bytes (copied). Returns false when the output buffer is over the high-water mark.
  virtual bool sendBody(std::string_view data) = 0;
  virtual void endResponse() = 0;
  // Cuts the exchange short: the connection is closed (e.g. the origin died mid-body).
  virtual void abort() = 0;
  // Request-body flow control: stop / resume reading the client's body from the socket.
  virtual void pauseRequestBody() = 0;
  virtual void resumeRequestBody() = 0;
  // Sends "100 Continue" if the client asked for it and it has not been sent yet.
  virtual void sendContinue() = 0;
  // Close the connection after this response (e.g. a request body that will not be read).
  virtual void closeAfterResponse() = 0;
  virtual bool responseStarted() const = 0;
  // What the TLS handshake negotiated; null on a plaintext connection.
  virtual const TlsInfo* tlsInfo() const { return nullptr; }
  // sendBody() for bytes owned by `keep` (a stored object's immutable body): written without
  // a copy where the framing allows (Content-Length framing on plain TCP). Same return.
  virtual bool sendSharedBody(std::string_view data, std::shared_ptr<const void> keep) {
    (void)keep;
    return sendBody(data);
  }
};

class RequestHandler {
 public:
  virtual ~RequestHandler() = default;  // cancels pending work; must not call the Exchange
  virtual void onRequestBody(std::string_view chunk) = 0;
  virtual void onRequestComplete() = 0;
  virtual void onWritable() {}
};

struct ConnectionSettings {
  ParseLimits limits;
  std::uint64_t header_timeout_ms = 10000;
  std::uint64_t idle_timeout_ms = 60000;
  std::int64_t hsts_max_age_s = 0;  // > 0: Strict-Transport-Security on TLS responses
};

// The worker side: makes handlers, knows the current settings, tracks connections.
class ConnectionHost {
 public:
  virtual ~ConnectionHost() = default;
  virtual uv_loop_t* loop() = 0;
  virtual core::DeferQueue& deferQueue() = 0;
  virtual ConnectionSettings connectionSettings() const = 0;
  // Called when a complete head arrived; never returns null.
  virtual std::unique_ptr<RequestHandler> makeHandler(Exchange& exchange,
                                                      const RequestFraming& framing) = 0;
  // Called for requests the parser rejected (status 4xx/5xx), for logs and metrics.
  virtual void onProtocolError(const std::string& client_ip, int status,
                               const std::string& reason) = 0;
  virtual void onConnectionOpened(class Http1Connection* conn) = 0;
  virtual void onConnectionClosed(class Http1Connection* conn) = 0;
  // True while the server drains: finish the current request, then close.
  virtual bool draining() const = 0;
  // Reports bytes read from / written to clients (metrics).
  virtual void countBytes(std::uint64_t in, std::uint64_t out) = 0;
};

class Http1Connection final : public Exchange, private Http1ParserEvents, private TransportEvents {
 public:
  static constexpr std::size_t kHighWater = 256 * 1024;
  // Bodies from this size on are sent corked (full segments only; Transport::setCork, nginx's
  // tcp_nopush), uncorked when the response ends. Measured on 1 MiB hits: +50-75% r/s; on
  // 256 KiB hits corking cost 10-20%, hence the threshold.
  static constexpr std::uint64_t kCorkMin = 512 * 1024;
  static constexpr std::size_t kLowWater = 64 * 1024;
  static constexpr std::size_t kMaxPipelined = 64 * 1024;
  // sendSharedBody() copies pieces smaller than this (one write for head + body wins).
  static constexpr std::size_t kZeroCopyMin = 8 * 1024;

  // Takes a fresh transport (nothing read or written yet); owns it from here on.
  static void start(ConnectionHost& host, std::unique_ptr<Transport> transport);
  // Convenience: a plaintext connection on a freshly accepted uv_tcp_t (allocated with new).
  static void start(ConnectionHost& host, uv_tcp_t* tcp);

  // Asks an idle connection to close now, a busy one after its current response.
  void closeWhenIdle();
  void forceClose();

  // Exchange
  const core::RequestHead& request() const override { return request_; }
  void sendHead(core::ResponseHead head, std::optional<std::uint64_t> content_length) override;
  bool sendBody(std::string_view data) override;
  void endResponse() override;
  void abort() override;
  void pauseRequestBody() override;
  void resumeRequestBody() override;
  void sendContinue() override;
  void closeAfterResponse() override { keep_alive_ = false; }
  bool responseStarted() const override { return response_started_; }
  const TlsInfo* tlsInfo() const override { return transport_->tls(); }
  bool sendSharedBody(std::string_view data, std::shared_ptr<const void> keep) override;

 private:
  Http1Connection(ConnectionHost& host, std::unique_ptr<Transport> transport);
  ~Http1Connection() override;

  // Http1ParserEvents
  void onRequestHead(core::RequestHead head, const RequestFraming& framing) override;
  void onRequestBody(std::string_view chunk) override;
  void onRequestComplete() override;

  // TransportEvents
  void onTransportEstablished() override;
  void onTransportRead(ssize_t n, const char* data) override;
  void onTransportWritten(int status) override;
  void onTransportClosed() override;

  void processInput();
  void handleParseError();
  void sendError(int status, const std::string& reason);
  void finishExchange();
  void startNextRequest();
  void updateReading();
  void append(std::string_view data);
  void flush();
  // After queueing output: true, or (over kHighWater) false with the send timeout armed and
  // onWritable() promised below kLowWater.
  bool belowHighWater();
  void scheduleFlush();
  void close();
  void lingerClose();
  void updateReadingForClose();
  void armHeaderTimer();
  void armIdleTimer();

  // One deadline per connection, on one libuv timer re-armed lazily (nginx's lazy timer idea):
  // a later deadline only records itself, and the timer, when it fires early, re-arms for the
  // rest. A keep-alive request then costs no timer operation at all instead of three (header,
  // stop, idle), each a heap removal and insertion.
  enum class Deadline { None, Header, Idle, Linger };
  void setDeadline(Deadline kind, std::uint64_t ms);
  void cancelDeadline() { deadline_ = Deadline::None; }
  void onDeadline();

  ConnectionHost& host_;
  std::unique_ptr<Transport> transport_;
  core::Timer timer_;
  Deadline deadline_ = Deadline::None;
  std::uint64_t deadline_at_ = 0;  // uv_now() ms
  std::uint64_t timer_due_ = 0;    // when timer_ fires, if active
  ConnectionSettings settings_;
  Http1Parser parser_;
  std::string in_;       // received, not yet parsed (pipelined requests wait here)
  std::string out_;      // serialized, not yet handed to the transport
  core::RequestHead request_;
  std::unique_ptr<RequestHandler> handler_;
  std::string client_ip_;
  bool reading_ = false;
  bool closing_ = false;
  bool keep_alive_ = true;
  bool request_done_ = false;     // the whole request body was read
  bool response_started_ = false;
  bool response_done_ = false;
  bool corked_ = false;  // the transport is corked for this response's body
  bool head_request_ = false;     // HEAD: no body on the wire
  bool no_body_status_ = false;   // 1xx/204/304: no body on the wire
  bool chunked_out_ = false;
  bool http10_ = false;
  bool expect_continue_ = false;
  bool body_paused_ = false;      // handler asked to stop reading the request body
  bool waiting_writable_ = false; // sendBody returned false; call onWritable below low water
  bool flush_scheduled_ = false;
  bool next_scheduled_ = false;
  bool in_read_callback_ = false;
  bool idle_between_requests_ = false;
  bool lingering_ = false;
  std::uint64_t bytes_in_ = 0;
  std::uint64_t bytes_out_ = 0;
  std::shared_ptr<bool> alive_;   // cleared at close; guards deferred calls
};

}  // namespace portico::proxy
