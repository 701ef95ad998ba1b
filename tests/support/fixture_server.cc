#include "tests/support/fixture_server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>

#include "proxy/core/http_message.h"

namespace portico::test {
namespace {

constexpr std::size_t kMaxHead = 1 << 20;
constexpr std::size_t kMaxBody = 64u << 20;

void setNonBlocking(int fd) { fcntl(fd, F_SETFL, fcntl(fd, F_GETFL, 0) | O_NONBLOCK); }

// Bytes received on one connection and not yet consumed.
struct Input {
  int fd;
  std::string buf;
};

}  // namespace

// ---- FixtureResponder -------------------------------------------------------------------------

void FixtureResponder::write(std::string_view raw) {
  if (ok_ && !server_.writeAll(fd_, raw)) ok_ = false;
}

void FixtureResponder::head(int status, const FixtureHeaders& headers) {
  std::string out =
      "HTTP/1.1 " + std::to_string(status) + " " + std::string(core::reasonPhrase(status)) + "\r\n";
  for (const auto& [name, value] : headers) out += name + ": " + value + "\r\n";
  out += "\r\n";
  write(out);
}

void FixtureResponder::reply(int status, const FixtureHeaders& headers, std::string_view body) {
  FixtureHeaders all = headers;
  bool framed = false;
  for (const auto& [name, value] : headers) {
    framed =
        framed || core::iequals(name, "Content-Length") || core::iequals(name, "Transfer-Encoding");
  }
  if (!framed) all.emplace_back("Content-Length", std::to_string(body.size()));
  head(status, all);
  if (request_.method != "HEAD") write(body);
}

void FixtureResponder::chunk(std::string_view data) {
  if (data.empty()) return;  // an empty chunk would end the body
  char size[32];
  std::snprintf(size, sizeof(size), "%zx\r\n", data.size());
  write(std::string(size) + std::string(data) + "\r\n");
}

void FixtureResponder::endChunks() { write("0\r\n\r\n"); }

void FixtureResponder::sleep(std::chrono::milliseconds d) {
  // The wake pipe only becomes readable when the server stops.
  server_.waitFor(server_.wake_[0], POLLIN, static_cast<int>(d.count()));
}

void FixtureResponder::hold() {
  close_ = true;
  char scratch[4096];
  while (server_.waitFor(fd_, POLLIN)) {
    ssize_t n = ::recv(fd_, scratch, sizeof(scratch), 0);
    if (n == 0) return;  // the client gave up
    if (n < 0 && errno != EAGAIN && errno != EINTR) return;
  }
}

// ---- FixtureServer ----------------------------------------------------------------------------

FixtureServer::FixtureServer(Handler handler) : handler_(std::move(handler)) {
  if (!handler_)
    handler_ = [](const FixtureRequest&, FixtureResponder& r) { r.reply(200, {}, "ok"); };
  if (::pipe(wake_) != 0) throw std::runtime_error("fixture: pipe failed");
  listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (listen_fd_ < 0) throw std::runtime_error("fixture: socket failed");
  int one = 1;
  ::setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      ::listen(listen_fd_, 64) != 0) {
    throw std::runtime_error("fixture: bind/listen on 127.0.0.1:0 failed");
  }
  socklen_t len = sizeof(addr);
  ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
  port_ = ntohs(addr.sin_port);
  setNonBlocking(listen_fd_);
  acceptor_ = std::thread([this] { acceptLoop(); });
}

FixtureServer::~FixtureServer() {
  stop();
  ::close(listen_fd_);
  ::close(wake_[0]);
  ::close(wake_[1]);
}

std::string FixtureServer::url() const { return "http://127.0.0.1:" + std::to_string(port_); }

std::vector<FixtureRequest> FixtureServer::requests() const {
  std::lock_guard<std::mutex> lock(mu_);
  return requests_;
}

std::size_t FixtureServer::requestCount() const {
  std::lock_guard<std::mutex> lock(mu_);
  return requests_.size();
}

std::size_t FixtureServer::connectionCount() const {
  std::lock_guard<std::mutex> lock(mu_);
  return connections_;
}

void FixtureServer::stop() {
  if (stopping_.exchange(true)) return;
  char b = 'x';
  [[maybe_unused]] ssize_t n = ::write(wake_[1], &b, 1);  // stays readable: wakes every waiter
  if (acceptor_.joinable()) acceptor_.join();
  std::vector<std::thread> workers;
  {
    std::lock_guard<std::mutex> lock(mu_);
    workers.swap(workers_);
  }
  for (auto& t : workers) t.join();
}

bool FixtureServer::waitFor(int fd, short events, int timeout_ms) const {
  pollfd fds[2] = {{fd, events, 0}, {wake_[0], POLLIN, 0}};
  for (;;) {
    if (stopping_.load()) return false;
    int rc = ::poll(fds, fd == wake_[0] ? 1 : 2, timeout_ms);
    if (rc < 0 && errno == EINTR) continue;
    if (rc <= 0) return false;  // timeout or error
    if (fd != wake_[0] && (fds[1].revents & POLLIN)) return false;
    return (fds[0].revents & (events | POLLHUP | POLLERR)) != 0;
  }
}

bool FixtureServer::writeAll(int fd, std::string_view data) const {
  while (!data.empty()) {
    ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n > 0) {
      data.remove_prefix(static_cast<std::size_t>(n));
    } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
      if (!waitFor(fd, POLLOUT)) return false;
    } else {
      return false;
    }
  }
  return true;
}

void FixtureServer::acceptLoop() {
  while (waitFor(listen_fd_, POLLIN)) {
    int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) continue;
    int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    std::lock_guard<std::mutex> lock(mu_);
    std::size_t id = ++connections_;
    workers_.emplace_back([this, fd, id] { serve(fd, id); });
  }
}

namespace {

// Reads until `in.buf` holds at least `n` bytes. False on EOF, error, stop or overflow.
template <typename Wait>
bool fill(Input& in, std::size_t n, Wait&& wait) {
  char scratch[16384];
  while (in.buf.size() < n) {
    if (!wait()) return false;
    ssize_t got = ::recv(in.fd, scratch, sizeof(scratch), 0);
    if (got == 0) return false;
    if (got < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) continue;
      return false;
    }
    in.buf.append(scratch, static_cast<std::size_t>(got));
  }
  return true;
}

// Reads until `in.buf` contains `delim`; returns its position or npos.
template <typename Wait>
std::size_t fillUntil(Input& in, std::string_view delim, std::size_t cap, Wait&& wait) {
  for (;;) {
    std::size_t pos = in.buf.find(delim);
    if (pos != std::string::npos) return pos;
    if (in.buf.size() > cap || !fill(in, in.buf.size() + 1, wait)) return std::string::npos;
  }
}

}  // namespace

void FixtureServer::serve(int fd, std::size_t connection) {
  Input in{fd, {}};
  auto wait = [&] { return waitFor(fd, POLLIN); };
  for (std::size_t index = 0;; ++index) {
    // Head.
    std::size_t end = fillUntil(in, "\r\n\r\n", kMaxHead, wait);
    if (end == std::string::npos) break;
    std::string head = in.buf.substr(0, end);
    in.buf.erase(0, end + 4);
    FixtureRequest req;
    req.connection = connection;
    req.index_on_connection = index;
    std::size_t line_end = head.find("\r\n");
    std::string line = head.substr(0, line_end);
    std::size_t sp1 = line.find(' ');
    std::size_t sp2 = line.rfind(' ');
    if (sp1 == std::string::npos || sp2 == sp1) break;
    req.method = line.substr(0, sp1);
    req.target = line.substr(sp1 + 1, sp2 - sp1 - 1);
    req.version = line.substr(sp2 + 1);
    std::size_t pos = line_end == std::string::npos ? head.size() : line_end + 2;
    while (pos < head.size()) {
      std::size_t eol = head.find("\r\n", pos);
      if (eol == std::string::npos) eol = head.size();
      std::string_view field(head.data() + pos, eol - pos);
      std::size_t colon = field.find(':');
      if (colon != std::string_view::npos) {
        req.headers.add(field.substr(0, colon), core::trimOws(field.substr(colon + 1)));
      }
      pos = eol + 2;
    }
    if (core::iequals(req.headers.get("Expect").value_or(""), "100-continue")) {
      writeAll(fd, "HTTP/1.1 100 Continue\r\n\r\n");
    }
    // Body.
    bool body_ok = true;
    if (req.headers.has("Transfer-Encoding")) {
      req.chunked = true;
      for (;;) {
        std::size_t eol = fillUntil(in, "\r\n", kMaxHead, wait);
        if (eol == std::string::npos) {
          body_ok = false;
          break;
        }
        std::size_t size = std::strtoul(in.buf.substr(0, eol).c_str(), nullptr, 16);
        in.buf.erase(0, eol + 2);
        if (size == 0) {  // trailers until an empty line
          for (;;) {
            std::size_t t = fillUntil(in, "\r\n", kMaxHead, wait);
            if (t == std::string::npos) {
              body_ok = false;
              break;
            }
            in.buf.erase(0, t + 2);
            if (t == 0) break;
          }
          break;
        }
        if (req.body.size() + size > kMaxBody || !fill(in, size + 2, wait)) {
          body_ok = false;
          break;
        }
        req.body.append(in.buf, 0, size);
        in.buf.erase(0, size + 2);
      }
    } else if (auto cl = req.headers.get("Content-Length")) {
      std::size_t size = std::strtoul(std::string(*cl).c_str(), nullptr, 10);
      if (size > kMaxBody || !fill(in, size, wait)) {
        body_ok = false;
      } else {
        req.body = in.buf.substr(0, size);
        in.buf.erase(0, size);
      }
    }
    if (!body_ok) break;
    {
      std::lock_guard<std::mutex> lock(mu_);
      requests_.push_back(req);
    }
    FixtureResponder responder(*this, fd, req);
    handler_(req, responder);
    const bool keep = !responder.close_ && responder.ok_ && req.version == "HTTP/1.1" &&
                      !core::listHasToken(req.headers.get("Connection").value_or(""), "close");
    if (!keep || stopping_.load()) break;
  }
  ::close(fd);
}

}  // namespace portico::test
