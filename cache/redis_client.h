#pragma once
// RedisClient: the per-worker async client of the shared Redis tier (L2), on hiredis 0.14's
// async API driven by the worker's libuv loop (style.md G6, G7). Only redis_client.cc includes
// hiredis; nothing here names a hiredis type.
//
// What it adds to hiredis 0.14 (style.md G7, "fill the gaps"):
//   - a deadline per command (0.14 has no command timeouts): expiry completes the command with
//     Timeout and drops the connection, failing everything in flight on it (h2o
//     on_command_timeout -> disconnect); a connect timeout (0.14 has no async connect timeout);
//   - reconnects forever with doubling, jittered backoff; AUTH / SELECT on every connection;
//   - its own loop hooks instead of hiredis/adapters/libuv.h, whose poll callback drops libuv
//     errors (UV_EBADF on POLLERR), so a refused connect or a reset socket is never noticed;
//   - hostnames are resolved with uv_getaddrinfo (redisAsyncConnect would block the loop);
//   - a guard on hiredis's reply parser: a reply nobody asked for or a malformed pub/sub push
//     would hit an assert() inside hiredis (process abort); here it is a protocol error that
//     fails the connection.
//
// Connection lifecycle (each of the two connections: commands, and pub/sub once subscribe()
// was called):
//
//   state      | hiredis context | commands                       | leaves by
//   -----------+-----------------+--------------------------------+-----------------------------
//   Down       | none            | complete with Disconnected     | retry timer (backoff)
//   Connecting | connect pending | complete with Disconnected     | connected -> Up; error or
//              | (or resolving)  |                                | connect timeout -> Down
//   Up         | connected       | sent, in order, behind AUTH /  | peer close, I/O or protocol
//              |                 | SELECT                         | error, command timeout -> Down
//
// The client starts Connecting in its constructor. Backoff: the n-th consecutive failed
// attempt waits a random time in [b/2, b] with b = min(backoff_max, backoff_min * 2^n); it goes
// back to backoff_min once a connection gets a good reply (a successful AUTH / SELECT, any
// command's reply, a SUBSCRIBE acknowledgement): a server that accepts connections but never
// answers, or refuses the password, keeps backing off.
#include <uv.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cache/redis_executor.h"

namespace portico::cache {

struct RedisOptions {
  std::string host = "127.0.0.1";  // IP literal or hostname (resolved off the loop thread)
  int port = 6379;
  int db = 0;                // SELECT on connect when non-zero (not on the pub/sub connection)
  std::string password;      // AUTH <password> on connect when non-empty
  std::uint64_t command_timeout_ms = 50;  // per command; expiry -> Timeout + connection dropped;
                                          // 0 disables the deadline
  std::uint64_t connect_timeout_ms = 200;  // resolve + TCP connect
  std::uint64_t backoff_min_ms = 50, backoff_max_ms = 5000;  // reconnect backoff (see above)
};

// Parses "redis://[[default]:password@]host[:port][/db]" (IPv6 as "[::1]"; the password may be
// percent-encoded; port defaults to 6379, db to 0). The password can also come from elsewhere
// (an env var): the caller then sets RedisOptions::password itself. Returns nullopt and a
// message in `error` for a malformed URL, an unknown scheme, a query string, an ACL user name
// other than "default", or "rediss://" (hiredis 0.14 has no TLS). Pure; any thread.
std::optional<RedisOptions> parseRedisUrl(std::string_view url, std::string& error);

// One client per worker loop. All methods, the constructor and the destructor must be called
// on the loop's thread; every callback runs on that thread.
class RedisClient final : public RedisExecutor {
 public:
  // Starts connecting at once (never blocks: hostnames are resolved asynchronously). `loop`
  // must outlive the client.
  RedisClient(uv_loop_t* loop, RedisOptions options);
  // Cancels everything: callbacks of commands still in flight and queued messages are
  // destroyed without being called. The loop's handles are closed (freed on the loop's next
  // turn), so the loop can close cleanly afterwards; a hostname lookup still running on libuv's
  // threadpool is cancelled, and if it had already started, its request lives until it ends.
  // Safe to call from inside any callback of this client.
  ~RedisClient() override;
  RedisClient(const RedisClient&) = delete;
  RedisClient& operator=(const RedisClient&) = delete;

  // Sends one command, e.g. {"SET", key, value, "PX", "1000"}; arguments are binary-safe.
  // `cb` is called exactly once, on the loop, never synchronously inside command() (even when
  // it fails at once, e.g. while disconnected: then on a later loop turn), and never after the
  // client is destroyed. Ownership of `argv` and `cb` passes to the client.
  void command(std::vector<std::string> argv, RedisCallback cb) override;

  // True while the command connection is Up (commands issued now are sent).
  bool connected() const override;

  using Stats = RedisStats;
  RedisStats stats() const override;

  // Subscribes `on_message` to `channel` on a separate pub/sub connection (opened on the first
  // call). Messages are delivered on the loop, never synchronously inside subscribe(), for as
  // long as the client lives; after a reconnect every channel is subscribed again (messages
  // published while disconnected are lost: pub/sub has no replay). Several handlers may share
  // a channel. A handler may call any method of the client, or destroy it.
  void subscribe(std::string channel, std::function<void(std::string_view message)> on_message) override;

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace portico::cache
