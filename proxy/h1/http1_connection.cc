#include "proxy/h1/http1_connection.h"

#include <charconv>
#include <cstring>

#include "proxy/core/clock.h"
#include "proxy/core/http_date.h"
#include "proxy/io/tcp_transport.h"

namespace portico::proxy {
namespace {

constexpr std::uint64_t kLingerMs = 1000;

bool statusHasNoBody(int status) { return status < 200 || status == 204 || status == 304; }

void appendDecimal(std::string& out, std::uint64_t n) {
  char buf[24];
  auto r = std::to_chars(buf, buf + sizeof buf, n);
  out.append(buf, r.ptr);
}

void appendHex(std::string& out, std::size_t n) {
  char buf[24];
  auto r = std::to_chars(buf, buf + sizeof buf - 2, n, 16);
  *r.ptr++ = '\r';
  *r.ptr++ = '\n';
  out.append(buf, r.ptr);
}

}  // namespace

void Http1Connection::start(ConnectionHost& host, uv_tcp_t* tcp) {
  start(host, std::make_unique<TcpTransport>(tcp));
}

void Http1Connection::start(ConnectionHost& host, std::unique_ptr<Transport> transport) {
  auto* conn = new Http1Connection(host, std::move(transport));
  host.onConnectionOpened(conn);
  // TLS: the header timer starts when the handshake is done (the transport bounds the
  // handshake with its own timer).
  if (conn->transport_->established()) conn->armHeaderTimer();
  conn->updateReading();
}

Http1Connection::Http1Connection(ConnectionHost& host, std::unique_ptr<Transport> transport)
    : host_(host),
      transport_(std::move(transport)),
      timer_(host.loop()),
      settings_(host.connectionSettings()),
      parser_(*this, settings_.limits),
      alive_(std::make_shared<bool>(true)) {
  transport_->setEvents(this);
  client_ip_ = transport_->peerIp();
}

Http1Connection::~Http1Connection() = default;

// ---- reading ----------------------------------------------------------------------------------

void Http1Connection::onTransportEstablished() {
  if (!closing_ && !handler_ && parser_.idle()) armHeaderTimer();
}

void Http1Connection::onTransportRead(ssize_t n, const char* data) {
  Http1Connection* self = this;
  if (n < 0) {
    if (n == UV_EOF && !self->closing_ && self->handler_ && self->request_done_ &&
        !self->response_done_) {
      // The client half-closed after a complete request: answer it, then close.
      self->keep_alive_ = false;
      self->transport_->readStop();
      self->reading_ = false;
      return;
    }
    if (n == UV_EOF && !self->closing_ && !self->handler_ && !self->parser_.idle() &&
        !self->parser_.inHead()) {
      self->close();
      return;
    }
    if (n == UV_EOF && !self->closing_ && self->parser_.inHead()) {
      self->parser_.finish();
      self->handleParseError();
      return;
    }
    self->close();
    return;
  }
  if (n == 0) return;
  self->bytes_in_ += static_cast<std::uint64_t>(n);
  if (self->closing_) return;  // lingering close: discard
  if (self->idle_between_requests_) {
    self->idle_between_requests_ = false;
    self->armHeaderTimer();
  }
  self->in_.append(data, static_cast<std::size_t>(n));
  self->in_read_callback_ = true;
  self->processInput();
  self->in_read_callback_ = false;
  if (!self->closing_) {
    self->flush();
    self->updateReading();
  }
}

void Http1Connection::processInput() {
  while (!closing_ && !in_.empty()) {
    std::size_t consumed = 0;
    Http1Parser::Result r = parser_.feed(in_, consumed);
    in_.erase(0, consumed);
    if (r == Http1Parser::Result::Error) {
      handleParseError();
      return;
    }
    if (r != Http1Parser::Result::Ok) break;  // message boundary or paused
  }
}

void Http1Connection::onRequestHead(core::RequestHead head, const RequestFraming& framing) {
  head.client_ip = client_ip_;
  if (transport_->tls() != nullptr) head.scheme = "https";
  request_ = std::move(head);
  keep_alive_ = framing.keep_alive && !host_.draining();
  http10_ = request_.http_minor == 0;
  head_request_ = request_.isHead();
  expect_continue_ = framing.expect_continue;
  // A request without a body is complete with its head: a handler that answers at once (mock,
  // error) must not be mistaken for one that left a body unread.
  request_done_ = !framing.has_body;
  response_started_ = false;
  response_done_ = false;
  if (framing.has_body) {
    setDeadline(Deadline::Idle, settings_.idle_timeout_ms);
  } else {
    cancelDeadline();
  }
  handler_ = host_.makeHandler(*this, framing);
}

void Http1Connection::onRequestBody(std::string_view chunk) {
  if (handler_) handler_->onRequestBody(chunk);
}

void Http1Connection::onRequestComplete() {
  request_done_ = true;
  if (!response_done_) cancelDeadline();
  if (handler_) handler_->onRequestComplete();
  if (response_done_) finishExchange();
}

void Http1Connection::handleParseError() {
  int status = parser_.errorStatus() ? parser_.errorStatus() : 400;
  host_.onProtocolError(client_ip_, status, parser_.errorReason());
  if (response_started_) {
    close();
    return;
  }
  handler_.reset();
  sendError(status, parser_.errorReason());
}

void Http1Connection::sendError(int status, const std::string& reason) {
  keep_alive_ = false;
  head_request_ = false;
  core::ResponseHead head;
  head.status = status;
  head.headers.add("Content-Type", "text/plain; charset=utf-8");
  std::string body = std::to_string(status) + " " + std::string(core::reasonPhrase(status)) +
                     ": " + reason + "\n";
  sendHead(std::move(head), body.size());
  sendBody(body);
  response_done_ = true;
  request_done_ = true;
  closing_ = true;  // no more requests on this connection
  flush();
  if (out_.empty() && transport_->pendingBytes() == 0) lingerClose();
}

void Http1Connection::updateReading() {
  bool want = !closing_ && !body_paused_ && in_.size() < kMaxPipelined;
  if (want == reading_) return;
  if (want) {
    transport_->readStart();
  } else {
    transport_->readStop();
  }
  reading_ = want;
}

void Http1Connection::pauseRequestBody() {
  body_paused_ = true;
  if (!in_read_callback_) updateReading();
}

void Http1Connection::resumeRequestBody() {
  if (!body_paused_) return;
  body_paused_ = false;
  std::weak_ptr<bool> alive = alive_;
  host_.deferQueue().defer([this, alive] {
    auto a = alive.lock();
    if (!a || !*a || closing_) return;
    processInput();
    if (!closing_) {
      flush();
      updateReading();
    }
  });
}

// ---- writing ----------------------------------------------------------------------------------

void Http1Connection::sendContinue() {
  if (!expect_continue_ || response_started_ || closing_) return;
  expect_continue_ = false;
  append("HTTP/1.1 100 Continue\r\n\r\n");
  scheduleFlush();
}

void Http1Connection::sendHead(core::ResponseHead head,
                               std::optional<std::uint64_t> content_length) {
  if (response_started_) return;
  response_started_ = true;
  expect_continue_ = false;
  if (host_.draining()) keep_alive_ = false;
  no_body_status_ = statusHasNoBody(head.status);
  chunked_out_ = false;
  if (!content_length && !no_body_status_ && !head_request_) {
    if (http10_) {
      keep_alive_ = false;  // close-delimited
    } else {
      chunked_out_ = true;
    }
  }
  // RFC 6797 §7.2: only over TLS. Portico's value replaces the origin's.
  const bool hsts = settings_.hsts_max_age_s > 0 && transport_->tls() != nullptr;
  std::string& o = out_;
  o.reserve(o.size() + 256 + head.headers.byteSize() + head.headers.size() * 4);
  o.append("HTTP/1.1 ", 9);
  appendDecimal(o, static_cast<std::uint64_t>(head.status));
  o.push_back(' ');
  o.append(head.reason.empty() ? core::reasonPhrase(head.status) : std::string_view(head.reason));
  o.append("\r\n");
  for (const auto& e : head.headers) {
    const std::string& n = e.name;
    if (core::iequals(n, "connection") || core::iequals(n, "keep-alive") ||
        core::iequals(n, "transfer-encoding") || core::iequals(n, "content-length") ||
        core::iequals(n, "date") || core::iequals(n, "server") ||
        (hsts && core::iequals(n, "strict-transport-security"))) {
      continue;
    }
    o.append(n);
    o.append(": ", 2);
    o.append(e.value);
    o.append("\r\n", 2);
  }
  o.append("Date: ");
  o.append(core::cachedHttpDate(core::toUnixSeconds(core::SystemClock::instance().wallNow())));
  o.append("\r\nServer: portico\r\n");
  if (content_length && !no_body_status_ && !head_request_ && *content_length >= kCorkMin) {
    corked_ = true;
    transport_->setCork(true);
  }
  if (content_length && !no_body_status_) {
    o.append("Content-Length: ", 16);
    appendDecimal(o, *content_length);
    o.append("\r\n", 2);
  } else if (chunked_out_) {
    o.append("Transfer-Encoding: chunked\r\n");
  }
  if (hsts) {
    o.append("Strict-Transport-Security: max-age=");
    o.append(std::to_string(settings_.hsts_max_age_s));
    o.append("\r\n");
  }
  if (!keep_alive_) {
    o.append("Connection: close\r\n");
  } else if (http10_) {
    o.append("Connection: keep-alive\r\n");
  }
  o.append("\r\n");
  scheduleFlush();
}

bool Http1Connection::sendBody(std::string_view data) {
  if (!response_started_ || response_done_) return true;
  if (head_request_ || no_body_status_ || data.empty()) return true;
  if (chunked_out_) {
    appendHex(out_, data.size());
    out_.append(data);
    out_.append("\r\n");
  } else {
    out_.append(data);
  }
  if (out_.size() >= 16 * 1024) {
    flush();
  } else {
    scheduleFlush();
  }
  return belowHighWater();
}

bool Http1Connection::sendSharedBody(std::string_view data, std::shared_ptr<const void> keep) {
  // Small pieces are cheaper copied (one write for head and body); chunked framing needs
  // the chunk-size line around the bytes anyway.
  if (chunked_out_ || data.size() < kZeroCopyMin) return sendBody(data);
  if (!response_started_ || response_done_) return true;
  if (head_request_ || no_body_status_) return true;
  bytes_out_ += out_.size() + data.size();
  // The head (and anything else queued) goes first, ahead of the body.
  if (transport_->writeWithBody(out_, data, std::move(keep)) != 0) {
    abort();
    return true;
  }
  return belowHighWater();
}

bool Http1Connection::belowHighWater() {
  if (out_.size() + transport_->pendingBytes() < kHighWater) return true;
  waiting_writable_ = true;
  // A client that stops reading is given idle_timeout_ms to make progress.
  setDeadline(Deadline::Idle, settings_.idle_timeout_ms);
  return false;
}

void Http1Connection::endResponse() {
  if (!response_started_ || response_done_) return;
  if (chunked_out_ && !head_request_) out_.append("0\r\n\r\n");
  response_done_ = true;
  if (in_read_callback_) {
    scheduleFlush();
  } else {
    flush();
  }
  if (corked_) {
    corked_ = false;
    transport_->setCork(false);  // pushes the last partial segment now
  }
  if (!request_done_) {
    // The rest of the request body will not be read: close after this response.
    keep_alive_ = false;
  }
  finishExchange();
}

void Http1Connection::abort() {
  if (closing_) return;
  closing_ = true;
  std::weak_ptr<bool> alive = alive_;
  host_.deferQueue().defer([this, alive] {
    auto a = alive.lock();
    if (a && *a) close();
  });
}

void Http1Connection::append(std::string_view data) { out_.append(data); }

void Http1Connection::scheduleFlush() {
  if (flush_scheduled_ || in_read_callback_) return;  // onRead flushes on its way out
  flush_scheduled_ = true;
  std::weak_ptr<bool> alive = alive_;
  host_.deferQueue().defer([this, alive] {
    auto a = alive.lock();
    if (!a || !*a) return;
    flush_scheduled_ = false;
    flush();
  });
}

void Http1Connection::flush() {
  if (out_.empty() || !*alive_) return;
  bytes_out_ += out_.size();
  if (transport_->write(out_) != 0) {  // takes out_ (left empty)
    abort();
    return;
  }
  if (transport_->pendingBytes() == 0 && closing_ && response_done_) lingerClose();
}

void Http1Connection::onTransportWritten(int status) {
  if (!*alive_) return;
  if (status < 0) {
    close();
    return;
  }
  std::size_t pending = transport_->pendingBytes();
  if (closing_ && response_done_ && pending == 0 && out_.empty()) {
    lingerClose();
    return;
  }
  if (waiting_writable_ && out_.size() + pending < kLowWater) {
    waiting_writable_ = false;
    cancelDeadline();
    if (handler_) handler_->onWritable();
  }
}

// ---- exchange boundaries --------------------------------------------------------------------

void Http1Connection::finishExchange() {
  // Waits for both halves; a response that ended while the request body is still unread
  // (keep_alive_ was cleared for it) closes the connection once written.
  if (!response_done_ || next_scheduled_ || (!request_done_ && keep_alive_)) return;
  next_scheduled_ = true;
  std::weak_ptr<bool> alive = alive_;
  host_.deferQueue().defer([this, alive] {
    auto a = alive.lock();
    if (!a || !*a) return;
    handler_.reset();
    host_.countBytes(bytes_in_, bytes_out_);
    bytes_in_ = bytes_out_ = 0;
    if (!request_done_ || !keep_alive_ || host_.draining() || closing_) {
      closing_ = true;
      updateReadingForClose();
      return;
    }
    startNextRequest();
  });
}

void Http1Connection::updateReadingForClose() {
  flush();
  if (out_.empty() && transport_->pendingBytes() == 0) lingerClose();
}

// Closing after a response: send FIN, then keep reading (and discarding) briefly so that a
// client still sending does not get a reset that destroys the response it has not read yet
// (nginx's lingering_close).
void Http1Connection::lingerClose() {
  if (!*alive_ || lingering_) return;
  lingering_ = true;
  closing_ = true;
  setDeadline(Deadline::Linger, kLingerMs);
  transport_->shutdown();
  if (!reading_) {
    transport_->readStart();
    reading_ = true;
  }
}

void Http1Connection::startNextRequest() {
  next_scheduled_ = false;
  request_done_ = false;
  response_started_ = false;
  response_done_ = false;
  waiting_writable_ = false;
  body_paused_ = false;
  settings_ = host_.connectionSettings();
  parser_.resume();
  if (in_.empty()) {
    idle_between_requests_ = true;
    armIdleTimer();
  } else {
    armHeaderTimer();
    processInput();
  }
  if (!closing_) {
    flush();
    updateReading();
  }
}

// ---- timers and closing -------------------------------------------------------------------

void Http1Connection::armHeaderTimer() { setDeadline(Deadline::Header, settings_.header_timeout_ms); }

void Http1Connection::armIdleTimer() { setDeadline(Deadline::Idle, settings_.idle_timeout_ms); }

void Http1Connection::setDeadline(Deadline kind, std::uint64_t ms) {
  const std::uint64_t at = uv_now(host_.loop()) + ms;
  deadline_ = kind;
  deadline_at_ = at;
  if (timer_.active() && timer_due_ <= at) return;  // fires first, then re-arms for the rest
  timer_due_ = at;
  timer_.start(ms, [this] { onDeadline(); });
}

void Http1Connection::onDeadline() {
  if (deadline_ == Deadline::None) return;
  const std::uint64_t now = uv_now(host_.loop());
  if (now < deadline_at_) {
    timer_due_ = deadline_at_;
    timer_.start(deadline_at_ - now, [this] { onDeadline(); });
    return;
  }
  const Deadline kind = deadline_;
  deadline_ = Deadline::None;
  switch (kind) {
    case Deadline::Header:
      if (handler_ || closing_) return;
      host_.onProtocolError(client_ip_, 408, "request head not complete in time");
      sendError(408, "request head not complete in time");
      return;
    case Deadline::Idle:
    case Deadline::Linger:
      close();
      return;
    case Deadline::None:
      return;
  }
}

void Http1Connection::closeWhenIdle() {
  if (closing_) return;
  if (!handler_ && idle_between_requests_) {
    close();
  } else if (!handler_ && in_.empty() && parser_.idle()) {
    close();
  } else {
    keep_alive_ = false;
  }
}

void Http1Connection::forceClose() { close(); }

void Http1Connection::close() {
  if (!*alive_) return;
  *alive_ = false;
  closing_ = true;
  cancelDeadline();
  timer_.stop();
  handler_.reset();
  host_.countBytes(bytes_in_, bytes_out_);
  bytes_in_ = bytes_out_ = 0;
  if (reading_) transport_->readStop();
  reading_ = false;
  transport_->close();
}

void Http1Connection::onTransportClosed() {
  // The transport's last call: deleting it (with this connection) is allowed here.
  host_.onConnectionClosed(this);
  delete this;
}

}  // namespace portico::proxy
