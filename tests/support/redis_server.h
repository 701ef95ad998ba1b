#pragma once
// Redis for component tests (style.md G2, G7, G8).
//
// RedisServer: a real `redis-server` child process on a free 127.0.0.1 port, with persistence
// off (--save '' --appendonly no) and its files in a private temp dir. Tests call
// GTEST_SKIP() when RedisServer::binary() is empty (no redis-server installed).
//
// FakeRedis: a loopback TCP server that answers every read with one fixed byte string, to
// feed a client what a real server never sends (garbage, unsolicited replies, malformed
// pub/sub pushes).
//
// Both are driven from the test thread and own everything they start: the destructors stop the
// process / thread, bounded in time. Waits here are bounded waits for another process (the
// server starting or exiting), never a way to let the code under test make progress.
#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

namespace portico::test {

// A TCP port on 127.0.0.1 that was free a moment ago (bound to port 0, read back, closed):
// `redis-server --port 0` does not pick one. Someone else may take it before it is used.
int freeLoopbackPort();

class RedisServer {
 public:
  // The redis-server binary (searched in PATH, then /usr/bin, /usr/local/bin), or "".
  static std::string binary();

  RedisServer() = default;
  ~RedisServer();  // stop(), then removes the temp dir
  RedisServer(const RedisServer&) = delete;
  RedisServer& operator=(const RedisServer&) = delete;

  // Starts the server and waits until it answers PING (at most ~10 s). `port` 0 picks a free
  // port, with a couple of retries should the port be taken meanwhile; a non-zero port is used
  // as is (a restart on the port of an earlier run). `extra_args` are appended to the command
  // line, e.g. {"--requirepass", "secret"}. Returns false with a reason (and the server log's
  // tail) in `error`. Must not be running.
  bool start(std::string* error, int port = 0, std::vector<std::string> extra_args = {});
  // SIGTERM, waits for the exit (bounded), then SIGKILL if needed. No-op when not running.
  void stop();
  // SIGKILL: dies at once, like a crash. The kernel closes its sockets.
  void kill();

  bool running() const { return pid_ > 0; }
  int port() const { return port_; }  // the last port used (kept after stop() for a restart)

 private:
  bool launch(int port, const std::vector<std::string>& extra_args, std::string* error);
  bool answersPing(std::chrono::milliseconds budget) const;
  void reap(std::chrono::milliseconds budget);
  std::string logTail() const;

  pid_t pid_ = -1;
  int port_ = 0;
  std::string dir_;  // --dir and the log file
};

class FakeRedis {
 public:
  // Listens on 127.0.0.1 (port 0) and, for every chunk read on any connection, writes `reply`.
  explicit FakeRedis(std::string reply);
  ~FakeRedis();  // wakes and joins the thread, closes every socket
  FakeRedis(const FakeRedis&) = delete;
  FakeRedis& operator=(const FakeRedis&) = delete;

  int port() const { return port_; }
  int connections() const { return connections_.load(); }  // accepted so far

 private:
  void run();

  std::string reply_;
  int listen_fd_ = -1;
  int wake_[2] = {-1, -1};
  int port_ = 0;
  std::atomic<int> connections_{0};
  std::thread thread_;
};

}  // namespace portico::test
