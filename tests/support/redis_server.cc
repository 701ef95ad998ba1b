#include "tests/support/redis_server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <stdexcept>

namespace portico::test {
namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

sockaddr_in loopback(int port) {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return addr;
}

bool executable(const std::string& path) { return ::access(path.c_str(), X_OK) == 0; }

}  // namespace

int freeLoopbackPort() {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return 0;
  sockaddr_in addr = loopback(0);
  socklen_t len = sizeof addr;
  int port = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
    port = ntohs(addr.sin_port);
  }
  ::close(fd);
  return port;
}

// ---- RedisServer --------------------------------------------------------------------------

std::string RedisServer::binary() {
  if (const char* path = std::getenv("PATH")) {
    std::stringstream dirs(path);
    std::string dir;
    while (std::getline(dirs, dir, ':')) {
      if (!dir.empty() && executable(dir + "/redis-server")) return dir + "/redis-server";
    }
  }
  for (const char* p : {"/usr/bin/redis-server", "/usr/local/bin/redis-server"}) {
    if (executable(p)) return p;
  }
  return "";
}

RedisServer::~RedisServer() {
  stop();
  if (!dir_.empty()) {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
}

bool RedisServer::start(std::string* error, int port, std::vector<std::string> extra_args) {
  if (running()) {
    if (error) *error = "redis-server is already running";
    return false;
  }
  if (dir_.empty()) {
    char tmpl[] = "/tmp/portico-redis-XXXXXX";
    if (::mkdtemp(tmpl) == nullptr) {
      if (error) *error = std::string("mkdtemp: ") + std::strerror(errno);
      return false;
    }
    dir_ = tmpl;
  }
  // A free port may be taken by someone else before the server binds it: try a few.
  const int attempts = port == 0 ? 3 : 1;
  for (int i = 0; i < attempts; ++i) {
    const int p = port != 0 ? port : freeLoopbackPort();
    if (launch(p, extra_args, error)) return true;
  }
  return false;
}

bool RedisServer::launch(int port, const std::vector<std::string>& extra_args,
                         std::string* error) {
  const std::string bin = binary();
  if (bin.empty()) {
    if (error) *error = "redis-server is not installed";
    return false;
  }
  const std::string log = dir_ + "/redis.log";
  std::vector<std::string> args = {bin,          "--port",       std::to_string(port),
                                   "--bind",     "127.0.0.1",    "--save",
                                   "",           "--appendonly", "no",
                                   "--daemonize", "no",          "--dir",
                                   dir_,         "--logfile",    log};
  args.insert(args.end(), extra_args.begin(), extra_args.end());
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::ofstream(log, std::ios::trunc).flush();  // logTail() shows this run only

  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid < 0) {
    if (error) *error = std::string("fork: ") + std::strerror(errno);
    return false;
  }
  if (pid == 0) {
    // Child: async-signal-safe calls only. Dies with the test process, even on a crash.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(127);
    const int null = ::open("/dev/null", O_RDWR);
    if (null >= 0) {
      ::dup2(null, 0);
      ::dup2(null, 1);
      ::dup2(null, 2);
    }
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  pid_ = pid;
  port_ = port;
  if (answersPing(10s)) return true;
  const std::string tail = logTail();
  kill();
  if (error) *error = "redis-server on port " + std::to_string(port) + " did not come up: " + tail;
  return false;
}

// Polls the server with PING until it answers, it exits, or `budget` runs out.
bool RedisServer::answersPing(std::chrono::milliseconds budget) const {
  const auto deadline = Clock::now() + budget;
  while (Clock::now() < deadline) {
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) return false;  // exited (port taken?)
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr = loopback(port_);
    bool pong = false;
    if (fd >= 0 && ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) {
      static constexpr char kPing[] = "*1\r\n$4\r\nPING\r\n";
      if (::send(fd, kPing, sizeof kPing - 1, MSG_NOSIGNAL) == sizeof kPing - 1) {
        pollfd p{fd, POLLIN, 0};
        char buf[64] = {};
        if (::poll(&p, 1, 500) == 1 && ::recv(fd, buf, sizeof buf - 1, 0) > 0) {
          // -NOAUTH: up, but it wants a password (--requirepass).
          pong = std::strncmp(buf, "+PONG", 5) == 0 || std::strncmp(buf, "-NOAUTH", 7) == 0;
        }
      }
    }
    if (fd >= 0) ::close(fd);
    if (pong) return true;
    std::this_thread::sleep_for(10ms);  // a bounded wait for another process to start
  }
  return false;
}

void RedisServer::stop() {
  if (!running()) return;
  ::kill(pid_, SIGTERM);
  reap(5s);
}

void RedisServer::kill() {
  if (!running()) return;
  ::kill(pid_, SIGKILL);
  reap(5s);
}

void RedisServer::reap(std::chrono::milliseconds budget) {
  const auto deadline = Clock::now() + budget;
  int status = 0;
  while (::waitpid(pid_, &status, WNOHANG) == 0) {
    if (Clock::now() >= deadline) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, &status, 0);  // SIGKILL cannot be ignored: this returns promptly
      break;
    }
    std::this_thread::sleep_for(2ms);  // a bounded wait for another process to exit
  }
  pid_ = -1;
}

std::string RedisServer::logTail() const {
  std::ifstream in(dir_ + "/redis.log");
  std::string all((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return all.size() > 2000 ? all.substr(all.size() - 2000) : all;
}

// ---- FakeRedis ----------------------------------------------------------------------------

FakeRedis::FakeRedis(std::string reply) : reply_(std::move(reply)) {
  listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr = loopback(0);
  socklen_t len = sizeof addr;
  if (listen_fd_ < 0 || ::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::listen(listen_fd_, 16) != 0 ||
      ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0 ||
      ::pipe2(wake_, O_CLOEXEC) != 0) {
    throw std::runtime_error(std::string("FakeRedis: cannot listen: ") + std::strerror(errno));
  }
  port_ = ntohs(addr.sin_port);
  thread_ = std::thread([this] { run(); });
}

FakeRedis::~FakeRedis() {
  const char stop = 1;
  [[maybe_unused]] auto n = ::write(wake_[1], &stop, 1);
  thread_.join();
  ::close(listen_fd_);
  ::close(wake_[0]);
  ::close(wake_[1]);
}

void FakeRedis::run() {
  std::vector<pollfd> fds = {{wake_[0], POLLIN, 0}, {listen_fd_, POLLIN, 0}};
  while (true) {
    if (::poll(fds.data(), fds.size(), -1) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    if (fds[0].revents != 0) break;  // stopping
    if (fds[1].revents & POLLIN) {
      const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd >= 0) {
        ++connections_;
        fds.push_back({fd, POLLIN, 0});
      }
    }
    for (std::size_t i = 2; i < fds.size();) {
      if (fds[i].revents == 0) {
        ++i;
        continue;
      }
      char buf[4096];
      const ssize_t n = ::recv(fds[i].fd, buf, sizeof buf, 0);
      if (n > 0 && ::send(fds[i].fd, reply_.data(), reply_.size(), MSG_NOSIGNAL) >= 0) {
        fds[i].revents = 0;
        ++i;
        continue;
      }
      ::close(fds[i].fd);  // closed by the client, or broken
      fds.erase(fds.begin() + static_cast<std::ptrdiff_t>(i));
    }
  }
  for (std::size_t i = 2; i < fds.size(); ++i) ::close(fds[i].fd);
}

}  // namespace portico::test
