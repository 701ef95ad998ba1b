#pragma once
// A real Redis Cluster for component tests (style.md G7, G8): N masters (no replicas), each a
// tests/support RedisServer started with --cluster-enabled on a free 127.0.0.1 port (its bus
// port picked the same way, since port + 10000 may not exist), joined by
// `redis-cli --cluster create`, and waited for until every node reports cluster_state:ok.
// Nodes run with --cluster-require-full-coverage no, so a killed master does not take the
// other masters' slots down with it.
//
// Driven from the test thread; every wait is a bounded wait for other processes. The
// destructor stops every node; each RedisServer removes its temp dir.
#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "tests/support/redis_server.h"

namespace portico::test {

class RedisTestCluster {
 public:
  // The redis-cli binary (PATH, then /usr/bin, /usr/local/bin), or "".
  static std::string cliBinary();
  // Both redis-server and redis-cli are installed.
  static bool available();

  RedisTestCluster() = default;
  ~RedisTestCluster() = default;  // the RedisServers stop their processes
  RedisTestCluster(const RedisTestCluster&) = delete;
  RedisTestCluster& operator=(const RedisTestCluster&) = delete;

  // Starts `masters` nodes, creates the cluster (slots split evenly, in node order) and waits
  // (~15 s at most) for cluster_state:ok on every node. false + a reason in `error`.
  bool start(std::string* error, int masters = 3);

  std::size_t size() const { return nodes_.size(); }
  int port(std::size_t i) const { return nodes_.at(i)->port(); }
  const std::string& nodeId(std::size_t i) const { return ids_.at(i); }
  void kill(std::size_t i) { nodes_.at(i)->kill(); }

  // `redis-cli -h 127.0.0.1 -p <port(i)> args...` (at most 10 s): its output (raw format, one
  // line per element), or nullopt with a reason in `error` when it failed or printed an error.
  std::optional<std::string> cli(std::size_t i, const std::vector<std::string>& args,
                                 std::string* error = nullptr) const;
  // The index of the node owning `slot` in node `viewer`'s CLUSTER NODES, or -1.
  int ownerOf(int slot, std::size_t viewer = 0) const;

  // Slot migration, step by step (as redis-cli --cluster reshard does it):
  // SETSLOT IMPORTING on `to`, then SETSLOT MIGRATING on `from`.
  bool beginMigration(int slot, std::size_t from, std::size_t to, std::string* error);
  // MIGRATE `keys` from `from` to `to` (they must be in the migrating slot).
  bool migrateKeys(std::size_t from, std::size_t to, const std::vector<std::string>& keys,
                   std::string* error);
  // SETSLOT <slot> NODE <to> on every running node: the migration is over.
  bool assignSlot(int slot, std::size_t to, std::string* error);
  // The whole move: begin, migrate every key of the slot, assign.
  bool moveSlot(int slot, std::size_t from, std::size_t to, std::string* error);

 private:
  bool waitStateOk(std::string* error) const;

  std::vector<std::unique_ptr<RedisServer>> nodes_;
  std::vector<std::string> ids_;
};

// Runs `args` (args[0] is the program path) with stdout and stderr captured, killing it after
// `budget_ms`. Returns the exit status (-1: could not run, or killed) and the output in `out`.
int runProcess(const std::vector<std::string>& args, int budget_ms, std::string* out);

}  // namespace portico::test
