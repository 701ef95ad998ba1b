#pragma once
// The shared tier's address: "redis://[[default]:password@]host[:port][/db]" (IPv6 as "[::1]";
// the password may be percent-encoded; port defaults to 6379, db to 0). In conf/ so that
// `portico -t` names a malformed cache.redis; cache::parseRedisUrl builds RedisOptions from it.
// Pure; any thread.
#include <optional>
#include <string>
#include <string_view>

namespace portico::conf {

struct RedisUrl {
  std::string host = "127.0.0.1";
  int port = 6379;
  int db = 0;
  std::string password;
};

// Nullopt and a message in `error` (never repeating the URL, which may carry a password) for a
// malformed URL, an unknown scheme, a query string, an ACL user name other than "default", or
// "rediss://" (hiredis 0.14 has no TLS).
std::optional<RedisUrl> parseRedisUrl(std::string_view url, std::string& error);

}  // namespace portico::conf
