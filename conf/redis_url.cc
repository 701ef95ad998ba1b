#include "conf/redis_url.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cctype>
#include <charconv>

#include "conf/route_table.h"

namespace portico::conf {

namespace {

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

template <typename Int>
bool parseNumber(std::string_view s, Int& out) {
  if (s.empty() || s.size() > 10) return false;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && end == s.data() + s.size();
}

}  // namespace

// Error messages never repeat the URL: it may carry the password.
std::optional<RedisUrl> parseRedisUrl(std::string_view url, std::string& error) {
  auto fail = [&error](std::string why) -> std::optional<RedisUrl> {
    error = "redis URL: " + std::move(why);
    return std::nullopt;
  };
  const auto sep = url.find("://");
  if (sep == std::string_view::npos) return fail("expected redis://host:port/db");
  const std::string_view scheme = url.substr(0, sep);
  if (iequals(scheme, "rediss")) return fail("TLS (rediss://) not supported by this hiredis");
  if (!iequals(scheme, "redis")) return fail("unsupported scheme (expected redis://)");
  std::string_view rest = url.substr(sep + 3);
  if (rest.find_first_of("?#") != std::string_view::npos) {
    return fail("query strings and fragments are not supported");
  }
  const auto slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  const std::string_view path = slash == std::string_view::npos ? "" : rest.substr(slash + 1);

  RedisUrl o;
  if (const auto at = authority.rfind('@'); at != std::string_view::npos) {
    const std::string_view userinfo = authority.substr(0, at);
    authority = authority.substr(at + 1);
    const auto colon = userinfo.find(':');
    if (colon == std::string_view::npos) return fail("user info without a password");
    const std::string_view user = userinfo.substr(0, colon);
    if (!user.empty() && user != "default") {
      return fail("ACL user names are not supported (AUTH <password> only)");
    }
    if (!percentDecode(userinfo.substr(colon + 1), o.password)) {
      return fail("bad percent-encoding in the password");
    }
  }

  std::string_view host, port;
  if (!authority.empty() && authority.front() == '[') {
    const auto close = authority.find(']');
    if (close == std::string_view::npos) return fail("unterminated [IPv6] host");
    host = authority.substr(1, close - 1);
    const std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return fail("junk after the [IPv6] host");
      port = after.substr(1);
      if (port.empty()) return fail("empty port");
    }
    unsigned char buf[16];
    if (inet_pton(AF_INET6, std::string(host).c_str(), buf) != 1) {
      return fail("bad IPv6 address");
    }
  } else {
    const auto colon = authority.find(':');
    host = authority.substr(0, colon);
    if (colon != std::string_view::npos) {
      port = authority.substr(colon + 1);
      if (port.empty()) return fail("empty port");
      if (port.find(':') != std::string_view::npos) {
        return fail("IPv6 addresses must be written in brackets: [::1]:6379");
      }
    }
    for (const char c : host) {
      if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '-' && c != '_') {
        return fail("bad character in host name");
      }
    }
  }
  if (host.empty()) return fail("missing host");
  o.host = std::string(host);
  if (!port.empty() && (!parseNumber(port, o.port) || o.port < 1 || o.port > 65535)) {
    return fail("bad port (1-65535)");
  }
  if (!path.empty() && (!parseNumber(path, o.db) || o.db < 0)) {
    return fail("bad database number after '/'");
  }
  return o;
}

}  // namespace portico::conf
