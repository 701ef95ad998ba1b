#include "proxy/io/tcp_transport.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <cerrno>

#include <memory>

namespace portico::proxy {
namespace {

constexpr std::size_t kReadBufferSize = 64 * 1024;

std::string peerIpOf(uv_tcp_t* tcp) {
  sockaddr_storage ss{};
  int len = sizeof ss;
  if (uv_tcp_getpeername(tcp, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return "";
  char ip[INET6_ADDRSTRLEN] = {0};
  if (ss.ss_family == AF_INET) {
    uv_ip4_name(reinterpret_cast<sockaddr_in*>(&ss), ip, sizeof ip);
  } else if (ss.ss_family == AF_INET6) {
    uv_ip6_name(reinterpret_cast<sockaddr_in6*>(&ss), ip, sizeof ip);
  }
  return ip;
}

// One uv_write in flight: owns the bytes it sends.
struct WriteReq {
  uv_write_t req;
  std::string data;
  TcpTransport* transport;
  std::string_view body;              // writeWithBody(): sent after `data`, not copied
  std::shared_ptr<const void> keep;   // owns `body` until the write completes
  std::size_t size() const { return data.size() + body.size(); }
};

}  // namespace

TcpTransport::TcpTransport(uv_tcp_t* tcp) : tcp_(tcp) {
  tcp_->data = this;
  uv_tcp_nodelay(tcp_, 1);
  peer_ip_ = peerIpOf(tcp_);
}

void TcpTransport::onAlloc(uv_handle_t*, std::size_t, uv_buf_t* buf) {
  // One buffer per thread: every chunk is consumed (copied or parsed) inside onRead.
  thread_local char buffer[kReadBufferSize];
  *buf = uv_buf_init(buffer, sizeof buffer);
}

void TcpTransport::readStart() {
  if (reading_ || closing_) return;
  if (uv_read_start(reinterpret_cast<uv_stream_t*>(tcp_), &TcpTransport::onAlloc,
                    &TcpTransport::onRead) == 0) {
    reading_ = true;
  }
}

void TcpTransport::readStop() {
  if (!reading_) return;
  uv_read_stop(reinterpret_cast<uv_stream_t*>(tcp_));
  reading_ = false;
}

void TcpTransport::onRead(uv_stream_t* s, ssize_t n, const uv_buf_t* buf) {
  auto* self = static_cast<TcpTransport*>(s->data);
  if (self == nullptr || self->closing_ || n == 0) return;
  if (n < 0) {
    // libuv stops reading by itself after an error or EOF.
    uv_read_stop(s);
    self->reading_ = false;
  }
  self->events_->onTransportRead(n, n > 0 ? buf->base : nullptr);
}

int TcpTransport::write(std::string& data) {
  if (data.empty()) return 0;
  if (closing_ || shut_down_) {
    data.clear();
    return UV_EPIPE;
  }
  auto* stream = reinterpret_cast<uv_stream_t*>(tcp_);
  std::size_t offset = 0;
  if (pending_ == 0) {  // nothing queued: the bytes may go out now without reordering
    uv_buf_t b = uv_buf_init(data.data(), static_cast<unsigned>(data.size()));
    int n = uv_try_write(stream, &b, 1);
    if (n > 0) {
      offset = static_cast<std::size_t>(n);
    } else if (n != UV_EAGAIN && n != UV_ENOSYS) {
      data.clear();
      return n;
    }
  }
  if (offset == data.size()) {
    data.clear();
    return 0;
  }
  auto* w = new WriteReq;
  w->data = offset == 0 ? std::move(data) : data.substr(offset);
  data.clear();
  w->transport = this;
  w->req.data = w;
  uv_buf_t b = uv_buf_init(w->data.data(), static_cast<unsigned>(w->data.size()));
  int rc = uv_write(&w->req, stream, &b, 1, &TcpTransport::onWriteDone);
  if (rc != 0) {
    delete w;
    return rc;
  }
  pending_ += w->size();
  return 0;
}

int TcpTransport::writeWithBody(std::string& data, std::string_view body,
                                std::shared_ptr<const void> keep) {
  if (body.empty()) return write(data);
  if (closing_ || shut_down_) {
    data.clear();
    return UV_EPIPE;
  }
  auto* stream = reinterpret_cast<uv_stream_t*>(tcp_);
  std::size_t sent = 0;
  if (pending_ == 0) {
    uv_buf_t b[2] = {uv_buf_init(data.data(), static_cast<unsigned>(data.size())),
                     uv_buf_init(const_cast<char*>(body.data()), static_cast<unsigned>(body.size()))};
    int n = uv_try_write(stream, data.empty() ? b + 1 : b, data.empty() ? 1 : 2);
    if (n > 0) {
      sent = static_cast<std::size_t>(n);
    } else if (n != UV_EAGAIN && n != UV_ENOSYS) {
      data.clear();
      return n;
    }
  }
  if (sent == data.size() + body.size()) {
    data.clear();
    return 0;
  }
  auto* w = new WriteReq;
  w->transport = this;
  w->req.data = w;
  if (sent < data.size()) {
    w->data = sent == 0 ? std::move(data) : data.substr(sent);
    w->body = body;
  } else {
    w->body = body.substr(sent - data.size());
  }
  data.clear();
  w->keep = std::move(keep);
  uv_buf_t b[2] = {uv_buf_init(w->data.data(), static_cast<unsigned>(w->data.size())),
                   uv_buf_init(const_cast<char*>(w->body.data()), static_cast<unsigned>(w->body.size()))};
  int rc = w->data.empty() ? uv_write(&w->req, stream, b + 1, 1, &TcpTransport::onWriteDone)
                           : uv_write(&w->req, stream, b, 2, &TcpTransport::onWriteDone);
  if (rc != 0) {
    delete w;
    return rc;
  }
  pending_ += w->size();
  return 0;
}

void TcpTransport::setCork(bool on) {
  uv_os_fd_t sock = -1;
  if (closing_ || tcp_ == nullptr || uv_fileno(reinterpret_cast<uv_handle_t*>(tcp_), &sock) != 0) {
    return;
  }
  int v = on ? 1 : 0;
  ::setsockopt(sock, IPPROTO_TCP, TCP_CORK, &v, sizeof v);  // best effort: only pacing changes
}

void TcpTransport::onWriteDone(uv_write_t* req, int status) {
  std::unique_ptr<WriteReq> w(static_cast<WriteReq*>(req->data));
  TcpTransport* self = w->transport;  // alive: write callbacks run before the close callback
  self->pending_ -= w->size();
  if (self->closing_) return;
  self->events_->onTransportWritten(status);
}

void TcpTransport::shutdown() {
  if (shut_down_ || closing_) return;
  shut_down_ = true;
  auto* req = new uv_shutdown_t;
  if (uv_shutdown(req, reinterpret_cast<uv_stream_t*>(tcp_),
                  [](uv_shutdown_t* r, int) { delete r; }) != 0) {
    delete req;
  }
}

void TcpTransport::close() {
  if (closing_) return;
  closing_ = true;
  readStop();
  uv_close(reinterpret_cast<uv_handle_t*>(tcp_), &TcpTransport::onClosed);
}

void TcpTransport::onClosed(uv_handle_t* h) {
  auto* self = static_cast<TcpTransport*>(h->data);
  delete reinterpret_cast<uv_tcp_t*>(h);
  self->tcp_ = nullptr;
  // Last action: the owner may delete this transport now.
  if (self->events_ != nullptr) self->events_->onTransportClosed();
}

}  // namespace portico::proxy
