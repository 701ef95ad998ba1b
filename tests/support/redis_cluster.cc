#include "tests/support/redis_cluster.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cctype>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <sstream>
#include <thread>

#include "cache/redis_cluster.h"

namespace portico::test {
namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

bool fail(std::string* error, std::string why) {
  if (error) *error = std::move(why);
  return false;
}

}  // namespace

int runProcess(const std::vector<std::string>& args, int budget_ms, std::string* out) {
  if (out) out->clear();
  int fds[2];
  if (args.empty() || ::pipe2(fds, O_CLOEXEC) != 0) return -1;
  std::vector<std::string> copy = args;
  std::vector<char*> argv;
  for (auto& a : copy) argv.push_back(a.data());
  argv.push_back(nullptr);
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid < 0) {
    ::close(fds[0]);
    ::close(fds[1]);
    return -1;
  }
  if (pid == 0) {
    // Child: async-signal-safe calls only.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(127);
    const int null = ::open("/dev/null", O_RDONLY);
    if (null >= 0) ::dup2(null, 0);
    ::dup2(fds[1], 1);
    ::dup2(fds[1], 2);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  ::close(fds[1]);
  const auto deadline = Clock::now() + std::chrono::milliseconds(budget_ms);
  bool killed = false;
  while (true) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) {
      ::kill(pid, SIGKILL);
      killed = true;
      break;
    }
    pollfd p{fds[0], POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left)) <= 0) continue;  // timeout or EINTR: loop checks
    char buf[4096];
    const ssize_t n = ::read(fds[0], buf, sizeof buf);
    if (n <= 0) break;  // EOF: the child closed its output (exited)
    if (out && out->size() < (1u << 20)) out->append(buf, static_cast<std::size_t>(n));
  }
  ::close(fds[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);  // exited (EOF) or SIGKILLed: returns promptly
  if (killed || !WIFEXITED(status)) return -1;
  return WEXITSTATUS(status);
}

std::string RedisTestCluster::cliBinary() {
  if (const char* path = std::getenv("PATH")) {
    std::stringstream dirs(path);
    std::string dir;
    while (std::getline(dirs, dir, ':')) {
      if (!dir.empty() && ::access((dir + "/redis-cli").c_str(), X_OK) == 0) {
        return dir + "/redis-cli";
      }
    }
  }
  for (const char* p : {"/usr/bin/redis-cli", "/usr/local/bin/redis-cli"}) {
    if (::access(p, X_OK) == 0) return p;
  }
  return "";
}

bool RedisTestCluster::available() {
  return !RedisServer::binary().empty() && !cliBinary().empty();
}

bool RedisTestCluster::start(std::string* error, int masters) {
  if (!nodes_.empty()) return fail(error, "the cluster was started already");
  if (!available()) return fail(error, "redis-server or redis-cli is not installed");
  for (int i = 0; i < masters; ++i) {
    auto node = std::make_unique<RedisServer>();
    bool up = false;
    std::string why;
    // Free ports may be taken by someone else before the server binds them: try a few.
    for (int attempt = 0; attempt < 3 && !up; ++attempt) {
      const int port = freeLoopbackPort();
      const int bus = freeLoopbackPort();
      if (port == 0 || bus == 0 || port == bus) continue;
      up = node->start(&why, port,
                       {"--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
                        "--cluster-port", std::to_string(bus), "--cluster-node-timeout", "5000",
                        "--cluster-require-full-coverage", "no"});
    }
    if (!up) return fail(error, "cluster node did not start: " + why);
    nodes_.push_back(std::move(node));
  }
  std::vector<std::string> create = {cliBinary(), "--cluster", "create"};
  for (const auto& node : nodes_) create.push_back("127.0.0.1:" + std::to_string(node->port()));
  for (const char* a : {"--cluster-replicas", "0", "--cluster-yes"}) create.emplace_back(a);
  std::string out;
  if (runProcess(create, 30000, &out) != 0) return fail(error, "cluster create failed: " + out);
  for (std::size_t i = 0; i < nodes_.size(); ++i) {
    auto id = cli(i, {"CLUSTER", "MYID"}, error);
    if (!id) return false;
    while (!id->empty() && std::isspace(static_cast<unsigned char>(id->back()))) id->pop_back();
    ids_.push_back(*id);
  }
  return waitStateOk(error);
}

bool RedisTestCluster::waitStateOk(std::string* error) const {
  const auto deadline = Clock::now() + 15s;
  std::string last;
  while (Clock::now() < deadline) {
    bool all = true;
    for (std::size_t i = 0; i < nodes_.size() && all; ++i) {
      const auto info = cli(i, {"CLUSTER", "INFO"});
      all = info && info->find("cluster_state:ok") != std::string::npos;
      if (info) last = *info;
    }
    if (all) return true;
    std::this_thread::sleep_for(50ms);  // a bounded wait for the nodes to agree
  }
  return fail(error, "cluster_state never became ok: " + last);
}

std::optional<std::string> RedisTestCluster::cli(std::size_t i,
                                                 const std::vector<std::string>& args,
                                                 std::string* error) const {
  std::vector<std::string> argv = {cliBinary(), "-h", "127.0.0.1", "-p",
                                   std::to_string(port(i))};
  argv.insert(argv.end(), args.begin(), args.end());
  std::string out;
  const int status = runProcess(argv, 10000, &out);
  // Raw output (not a tty): an error reply is printed as its text, e.g. "ERR ...".
  if (status != 0 || out.starts_with("ERR") || out.starts_with("(error)") ||
      out.starts_with("IOERR") || out.starts_with("Could not connect")) {
    if (error) *error = "redis-cli " + args.front() + " on node " + std::to_string(i) + ": " + out;
    return std::nullopt;
  }
  return out;
}

int RedisTestCluster::ownerOf(int slot, std::size_t viewer) const {
  const auto text = cli(viewer, {"CLUSTER", "NODES"});
  if (!text) return -1;
  std::string error;
  const auto entries = cache::parseClusterNodes(*text, "127.0.0.1", error);
  if (!entries) return -1;
  for (const auto& e : *entries) {
    for (const auto& [lo, hi] : e.slots) {
      if (slot < lo || slot > hi) continue;
      for (std::size_t i = 0; i < nodes_.size(); ++i) {
        if (nodes_[i]->port() == e.port) return static_cast<int>(i);
      }
    }
  }
  return -1;
}

bool RedisTestCluster::beginMigration(int slot, std::size_t from, std::size_t to,
                                      std::string* error) {
  const std::string s = std::to_string(slot);
  return cli(to, {"CLUSTER", "SETSLOT", s, "IMPORTING", nodeId(from)}, error) &&
         cli(from, {"CLUSTER", "SETSLOT", s, "MIGRATING", nodeId(to)}, error);
}

bool RedisTestCluster::migrateKeys(std::size_t from, std::size_t to,
                                   const std::vector<std::string>& keys, std::string* error) {
  if (keys.empty()) return true;
  std::vector<std::string> args = {"MIGRATE", "127.0.0.1", std::to_string(port(to)), "", "0",
                                   "5000", "KEYS"};
  args.insert(args.end(), keys.begin(), keys.end());
  const auto out = cli(from, args, error);
  if (!out) return false;
  if (out->find("OK") == std::string::npos) return fail(error, "MIGRATE: " + *out);
  return true;
}

bool RedisTestCluster::assignSlot(int slot, std::size_t to, std::string* error) {
  for (std::size_t i = 0; i < nodes_.size(); ++i) {
    if (!nodes_[i]->running()) continue;
    if (!cli(i, {"CLUSTER", "SETSLOT", std::to_string(slot), "NODE", nodeId(to)}, error)) {
      return false;
    }
  }
  return true;
}

bool RedisTestCluster::moveSlot(int slot, std::size_t from, std::size_t to, std::string* error) {
  if (!beginMigration(slot, from, to, error)) return false;
  while (true) {  // bounded: every round moves up to 100 keys, and the slot's keys are finite
    const auto out = cli(from, {"CLUSTER", "GETKEYSINSLOT", std::to_string(slot), "100"}, error);
    if (!out) return false;
    std::vector<std::string> keys;
    std::stringstream lines(*out);
    for (std::string line; std::getline(lines, line);) {
      if (!line.empty()) keys.push_back(line);
    }
    if (keys.empty()) break;
    if (!migrateKeys(from, to, keys, error)) return false;
  }
  return assignSlot(slot, to, error);
}

}  // namespace portico::test
