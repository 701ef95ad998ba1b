#pragma once
// FixtureServer: a scripted HTTP/1.1 upstream for tests (style.md G8; Varnish's
// `server s1 { rxreq; txresp }`). It listens on 127.0.0.1, port 0 (read it back with port()),
// and runs on its own threads with plain blocking-style sockets, so the loop under test is
// pumped by the test alone.
//
//   FixtureServer s1([](const FixtureRequest& req, FixtureResponder& resp) {
//     resp.head(200, {{"Content-Type", "text/plain"}});    // then frame it yourself,
//     resp.chunk("hello"); resp.sleep(50ms); resp.chunk(" world"); resp.endChunks();
//   });
//
// Threads: one accept thread, one thread per TCP connection. The handler runs on the
// connection's thread: handlers of different connections may run concurrently, so anything
// they share must be synchronized. Each request is recorded (method, target, headers, body,
// which connection carried it) before its handler runs.
//
// Keep-alive: after the handler returns, the next request is read from the same connection
// unless the handler called close()/hold(), the request said "Connection: close", or it was
// HTTP/1.0. Request bodies: Content-Length or chunked (decoded); "Expect: 100-continue" gets an
// interim 100 before the body is read.
//
// Stopping (destructor or stop()): every blocking wait (accept, read, write, sleep, hold) is
// woken through a pipe, all threads are joined. Bounded: nothing outlives the server.
#include <atomic>
#include <chrono>
#include <cstddef>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "proxy/core/header_map.h"

namespace portico::test {

struct FixtureRequest {
  std::string method;
  std::string target;   // as sent: "/a/b?x=1"
  std::string version;  // "HTTP/1.1"
  core::HeaderMap headers;
  std::string body;                     // decoded (de-chunked)
  bool chunked = false;                 // the body came with Transfer-Encoding: chunked
  std::size_t connection = 0;           // 1-based id of the TCP connection that carried it
  std::size_t index_on_connection = 0;  // 0: the first request on that connection
};

using FixtureHeaders = std::vector<std::pair<std::string, std::string>>;

class FixtureServer;

class FixtureResponder {
 public:
  // A whole response: status line, `headers`, Content-Length (unless `headers` has one or a
  // Transfer-Encoding) and `body` (not sent for a HEAD request).
  void reply(int status, const FixtureHeaders& headers = {}, std::string_view body = {});
  // Status line and headers only; the body is framed by the caller (write() or chunk()).
  void head(int status, const FixtureHeaders& headers);
  // Raw bytes exactly as given (garbage, partial heads, a body after head()).
  void write(std::string_view raw);
  // One chunk of a chunked body; endChunks() writes the last chunk.
  void chunk(std::string_view data);
  void endChunks();
  // Waits `d` (interrupted by the server stopping): lets a test stretch a response out.
  void sleep(std::chrono::milliseconds d);
  // Closes the connection abruptly once the handler returns (no more requests on it).
  void close() { close_ = true; }
  // Never answers: blocks until the client closes the connection (or the server stops), then
  // the connection is closed.
  void hold();
  // True when every write so far reached the socket.
  bool ok() const { return ok_; }
  const FixtureRequest& request() const { return request_; }

 private:
  friend class FixtureServer;
  FixtureResponder(FixtureServer& server, int fd, const FixtureRequest& request)
      : server_(server), fd_(fd), request_(request) {}
  FixtureServer& server_;
  int fd_;
  const FixtureRequest& request_;
  bool close_ = false;
  bool ok_ = true;
};

class FixtureServer {
 public:
  using Handler = std::function<void(const FixtureRequest&, FixtureResponder&)>;

  // Binds 127.0.0.1:0 and starts accepting at once. The default handler answers 200 "ok".
  explicit FixtureServer(Handler handler = {});
  ~FixtureServer();
  FixtureServer(const FixtureServer&) = delete;
  FixtureServer& operator=(const FixtureServer&) = delete;

  int port() const { return port_; }
  std::string url() const;  // "http://127.0.0.1:<port>"

  // Thread-safe snapshots.
  std::vector<FixtureRequest> requests() const;
  std::size_t requestCount() const;
  std::size_t connectionCount() const;  // TCP connections accepted so far

  // Stops accepting, wakes and joins every thread. Idempotent.
  void stop();

 private:
  friend class FixtureResponder;
  void acceptLoop();
  void serve(int fd, std::size_t connection);
  // Waits until `fd` has `events` or the server stops; false when stopping (or on error).
  bool waitFor(int fd, short events, int timeout_ms = -1) const;
  bool writeAll(int fd, std::string_view data) const;

  Handler handler_;
  int listen_fd_ = -1;
  int wake_[2] = {-1, -1};
  int port_ = 0;
  std::atomic<bool> stopping_{false};
  std::thread acceptor_;
  mutable std::mutex mu_;
  std::vector<std::thread> workers_;
  std::vector<FixtureRequest> requests_;
  std::size_t connections_ = 0;
};

}  // namespace portico::test
