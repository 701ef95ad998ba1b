#pragma once
// RedisExecutor: what the shared tier (L2) needs of Redis, whether one server (RedisClient) or a
// Redis Cluster (RedisCluster, which routes each command to the master owning its key's slot).
// The contracts are those of RedisClient (cache/redis_client.h): loop-thread only, every
// callback exactly once, on the loop, never synchronously inside the call, never after the
// executor is destroyed.
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace portico::cache {

enum class RedisStatus {
  Ok,            // a reply: value (bulk/status), integer, or array
  Nil,           // a nil reply (GET of a missing key)
  Error,         // an error reply (value = its text), or the connection failed with a protocol
                 // error while this command was the one being answered
  Timeout,       // no reply within command_timeout_ms; the connection was dropped
  Disconnected,  // not connected when issued, or the connection went away before the reply
};
const char* toString(RedisStatus status);

struct RedisReply {
  RedisStatus status = RedisStatus::Disconnected;
  std::string value;               // bulk/status text, or the error/failure reason
  std::vector<std::string> array;  // array replies: nil elements -> "", integers -> decimal;
                                   // nested arrays are reported as Error (unsupported)
  std::int64_t integer = 0;        // integer replies
};
using RedisCallback = std::function<void(RedisReply)>;

struct RedisStats {
  std::uint64_t commands = 0;    // command() calls
  std::uint64_t errors = 0;      // commands completed with Error or Disconnected
  std::uint64_t timeouts = 0;    // commands completed with Timeout
  std::uint64_t reconnects = 0;  // connections established again after one was lost
};

class RedisExecutor {
 public:
  virtual ~RedisExecutor() = default;
  // Sends one command; for a cluster, argv[1] is the key that picks the node (commands
  // without a key, such as PUBLISH, go to any reachable node). `cb` exactly once (see above).
  virtual void command(std::vector<std::string> argv, RedisCallback cb) = 0;
  // Subscribes to a channel on a dedicated pub/sub connection, resubscribing after reconnects.
  virtual void subscribe(std::string channel, std::function<void(std::string_view message)> on_message) = 0;
  // True while commands issued now can be sent (a cluster: while its slot map is known and
  // at least one master's connection is up).
  virtual bool connected() const = 0;
  virtual RedisStats stats() const = 0;
};

}  // namespace portico::cache
