#pragma once
// RedisCluster: the shared tier's (L2) executor for a Redis Cluster (several masters sharing
// 16384 hash slots), built on one RedisClient per master it talks to. It implements the
// RedisExecutor contract (cache/redis_executor.h): loop-thread only, every callback exactly
// once, on the loop, never synchronously inside the call, never after destruction.
//
// Routing. A command's key is argv[1] (EVAL/EVALSHA/FCALL: the first key after numkeys); a few
// commands have none (PING, ECHO, PUBLISH, INFO, TIME, CLUSTER, ...), and those go to any
// master whose connection is up. Slot = CRC16-XMODEM(key or its non-empty {hash tag}) % 16384;
// the command goes to the master owning the slot in the cached slot map (before the first map
// is known, or for a slot nobody owns, to any connected node: it answers MOVED if need be).
//
// Redirections (at most kMaxRedirects per command, then Error):
//   -MOVED <slot> <host:port>  the slot moved: the map records the new owner for that slot,
//                              a full map refresh is scheduled, the command is resent there;
//   -ASK <slot> <host:port>    mid-migration: ASKING then the command, pipelined in order on
//                              that node's connection; the map is not changed;
//   -TRYAGAIN, -CLUSTERDOWN    completes with Error at once (L2 treats it as a miss).
// An empty host (":6380") means the host of the node that answered; "?" (unknown endpoint), a
// bad port or an unparsable address is an Error for that command, never a crash.
//
// Slot map refresh: CLUSTER NODES (one bulk string, parsed by parseClusterNodes(); CLUSTER
// SLOTS/SHARDS are nested arrays, which RedisClient does not flatten). One refresh in flight,
// at most one start per kRefreshGapMs (kRetryGapMs after a failed one), triggered by MOVED, by
// a command failing with Disconnected/Timeout, every kPeriodicRefreshMs, and until the first
// map is known. It asks the seed when it is connected, else any connected known node, else
// the known nodes in turn.
//
// New node connections: a RedisClient fails commands at once while it is still connecting, so
// commands for a node that has not connected yet wait (in order) for it, at most
// max(connect_timeout_ms, 100) ms after the node was first used; later, a node that is down
// fails commands at once with Disconnected (fail fast: L2 treats it as a miss).
//
// Pub/sub: classic PUBLISH is broadcast to every node of a cluster, so subscribe() uses one
// dedicated RedisClient to one node (the seed, or a connected master). If that client has
// been disconnected for kPubSubMoveAfterMs while another node is connected, the subscriptions
// move there (a new client; every channel subscribed again). Messages published meanwhile are
// lost (pub/sub has no replay).
//
// Bounds: at most kMaxNodes node clients; nodes that left the slot map and have nothing in
// flight are closed at the next refresh. The cluster never SELECTs: RedisOptions::db must be 0
// (Redis Cluster has only database 0): the caller checks it; here it is forced to 0.
#include <uv.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "cache/redis_client.h"
#include "cache/redis_executor.h"

namespace portico::cache {

inline constexpr int kClusterSlots = 16384;

// CRC16-CCITT (XMODEM: polynomial 0x1021, initial value 0), as Redis Cluster specifies.
std::uint16_t redisCrc16(std::string_view data);
// The slot of `key`: of the part between the first '{' and the next '}' when that is non-empty.
int redisKeySlot(std::string_view key);

// One line of CLUSTER NODES.
struct ClusterNodeEntry {
  std::string id;
  std::string host;  // the announced IP, else the hostname, else the asked node's host
  int port = 0;
  bool master = false;
  bool failing = false;                   // flags "fail" or "fail?"
  std::vector<std::pair<int, int>> slots;  // owned ranges, inclusive; migrations skipped
};
// Parses a CLUSTER NODES reply. `asked_host` replaces an empty IP (a node that does not know
// its own address reports ":port"). Lines of nodes without an address (noaddr, handshake) are
// skipped. Returns nullopt and a reason in `error` for malformed text. Pure; any thread.
std::optional<std::vector<ClusterNodeEntry>> parseClusterNodes(std::string_view text,
                                                               std::string_view asked_host,
                                                               std::string& error);

// Counters of the cluster layer (stats() sums the node clients' counters).
struct RedisClusterStats {
  std::uint64_t commands = 0;          // command() calls
  std::uint64_t moved = 0;             // MOVED redirections followed
  std::uint64_t asked = 0;             // ASK redirections followed
  std::uint64_t redirect_errors = 0;   // bad redirect address or too many redirects
  std::uint64_t refreshes = 0;         // slot map refreshes started
  std::uint64_t refresh_failures = 0;  // ... that got no usable map
  std::uint64_t pubsub_moves = 0;      // subscriptions moved to another node
  std::size_t nodes = 0;               // node clients alive now
};

class RedisCluster final : public RedisExecutor {
 public:
  static constexpr int kMaxRedirects = 5;
  static constexpr std::size_t kMaxNodes = 64;
  static constexpr std::uint64_t kRefreshGapMs = 100;
  static constexpr std::uint64_t kRetryGapMs = 500;
  static constexpr std::uint64_t kPeriodicRefreshMs = 10000;
  static constexpr std::uint64_t kPubSubMoveAfterMs = 3000;

  // Starts connecting to `seed` and asks it for the slot map; never blocks. `seed` also gives
  // every node's password and timeouts. `loop` must outlive the cluster.
  RedisCluster(uv_loop_t* loop, RedisOptions seed);
  // Destroys every node client: callbacks of commands in flight or waiting are destroyed
  // without being called. Safe to call from inside any callback of this object.
  ~RedisCluster() override;
  RedisCluster(const RedisCluster&) = delete;
  RedisCluster& operator=(const RedisCluster&) = delete;

  void command(std::vector<std::string> argv, RedisCallback cb) override;
  void subscribe(std::string channel, std::function<void(std::string_view message)> on_message) override;
  // The slot map is known and at least one master's connection is up.
  bool connected() const override;
  // The sum over all node clients (alive or closed), which also counts the cluster's own
  // commands (CLUSTER NODES, ASKING, resends after a redirect), plus commands that failed
  // before reaching a node.
  RedisStats stats() const override;
  RedisClusterStats clusterStats() const;
  // "host:port" of the master the cached map gives for `slot`, or "" (unknown). Diagnostics.
  std::string slotOwner(int slot) const;

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace portico::cache
