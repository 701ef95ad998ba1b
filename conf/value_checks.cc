#include "conf/value_checks.h"

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <limits>
#include <vector>

#include "conf/config_parser.h"

namespace portico::conf {

namespace {

bool isDigit(char c) { return c >= '0' && c <= '9'; }
bool isHex(char c) { return std::isxdigit(static_cast<unsigned char>(c)) != 0; }

// Decimal digits only (no sign, no spaces), value <= max.
bool parseUnsigned(std::string_view s, std::uint64_t max, std::uint64_t& out) {
  if (s.empty() || s.size() > 20) return false;
  std::uint64_t v = 0;
  for (char c : s) {
    if (!isDigit(c)) return false;
    const auto d = static_cast<std::uint64_t>(c - '0');
    if (v > (max - d) / 10) return false;
    v = v * 10 + d;
  }
  out = v;
  return true;
}

bool isIpv4(std::string_view s) {
  int parts = 0;
  std::size_t start = 0;
  while (true) {
    const std::size_t dot = s.find('.', start);
    const std::string_view part = s.substr(start, dot == std::string_view::npos ? dot : dot - start);
    std::uint64_t v = 0;
    if (part.size() > 3 || !parseUnsigned(part, 255, v)) return false;
    ++parts;
    if (dot == std::string_view::npos) break;
    start = dot + 1;
  }
  return parts == 4;
}

// Loose IPv6 literal check: hex digits, ':' and (for an embedded IPv4 tail) '.', at least two
// colons, at most one "::". Exact parsing is left to the socket layer; this catches typos.
bool isIpv6(std::string_view s) {
  if (s.size() < 2 || s.size() > 45) return false;
  int colons = 0;
  for (char c : s) {
    if (c == ':') ++colons;
    else if (!isHex(c) && c != '.') return false;
  }
  const std::size_t dbl = s.find("::");
  if (dbl != std::string_view::npos && s.find("::", dbl + 1) != std::string_view::npos) return false;
  return colons >= 2 && colons <= 7;
}

}  // namespace

bool parseSize(std::string_view s, std::uint64_t& out) {
  std::size_t digits = 0;
  while (digits < s.size() && isDigit(s[digits])) ++digits;
  if (digits == 0) return false;
  std::string_view unit = s.substr(digits);
  if (!unit.empty() && unit.front() == ' ') unit.remove_prefix(1);  // "64 KiB"
  struct Unit {
    std::string_view name;
    std::uint64_t factor;
  };
  static constexpr Unit kUnits[] = {
      {"", 1},           {"B", 1},
      {"KB", 1000},      {"MB", 1000 * 1000},           {"GB", 1000 * 1000 * 1000},
      {"KiB", 1ull << 10}, {"MiB", 1ull << 20},          {"GiB", 1ull << 30},
  };
  for (const Unit& u : kUnits) {
    if (unit != u.name || (u.name.empty() && digits != s.size())) continue;
    std::uint64_t n = 0;
    if (!parseUnsigned(s.substr(0, digits), std::numeric_limits<std::uint64_t>::max() / u.factor, n))
      return false;
    out = n * u.factor;
    return true;
  }
  return false;
}

bool parseListenAddress(std::string_view s, ListenAddress& out) {
  std::string_view host;
  std::string_view port;
  if (!s.empty() && s.front() == '[') {
    const std::size_t close = s.find(']');
    if (close == std::string_view::npos || close + 1 >= s.size() || s[close + 1] != ':') return false;
    host = s.substr(1, close - 1);
    port = s.substr(close + 2);
    if (!isIpv6(host)) return false;
  } else {
    const std::size_t colon = s.rfind(':');
    if (colon == std::string_view::npos) return false;
    host = s.substr(0, colon);
    port = s.substr(colon + 1);
    if (host.empty()) {
      host = "0.0.0.0";  // ":8080": all IPv4 interfaces
    } else if (host == "localhost") {
      host = "127.0.0.1";
    } else if (!isIpv4(host)) {
      return false;  // bare IPv6 (needs brackets) or a name we will not resolve
    }
  }
  std::uint64_t p = 0;
  if (port.size() > 5 || !parseUnsigned(port, 65535, p)) return false;
  out.host = std::string(host);
  out.port = static_cast<int>(p);
  return true;
}

std::string checkHttpUrl(std::string_view url) {
  std::string_view rest;
  if (url.starts_with("http://")) rest = url.substr(7);
  else if (url.starts_with("https://")) rest = url.substr(8);
  else return "must be an http:// or https:// URL";
  for (char c : url) {
    if (static_cast<unsigned char>(c) <= ' ' || c == 0x7f) return "must not contain spaces or control characters";
  }
  if (url.find_first_of("?#") != std::string_view::npos) return "must not carry a query or fragment";
  const std::string_view authority = rest.substr(0, rest.find('/'));
  if (authority.find('@') != std::string_view::npos) return "must not carry credentials";
  std::string_view host = authority;
  std::string_view port;
  if (!authority.empty() && authority.front() == '[') {
    const std::size_t close = authority.find(']');
    if (close == std::string_view::npos || !isIpv6(authority.substr(1, close - 1)))
      return "has a malformed IPv6 host";
    host = authority.substr(0, close + 1);
    const std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return "has a malformed host";
      port = after.substr(1);
      if (port.empty()) return "has an empty port";
    }
  } else if (const std::size_t colon = authority.find(':'); colon != std::string_view::npos) {
    host = authority.substr(0, colon);
    port = authority.substr(colon + 1);
    if (port.empty()) return "has an empty port";
  }
  if (host.empty()) return "has no host";
  std::uint64_t p = 0;
  if (!port.empty() && (port.size() > 5 || !parseUnsigned(port, 65535, p) || p == 0))
    return "has an invalid port (1..65535)";
  return {};
}

std::string checkHostName(std::string_view host) {
  if (host.empty()) return "must not be empty";
  if (host.front() == '[') {
    if (host.back() == ']' && isIpv6(host.substr(1, host.size() - 2))) return {};
    return "is not a valid bracketed IPv6 literal";
  }
  if (host.find(':') != std::string_view::npos) return "must not include a port (hosts match the Host header without it)";
  if (host.find('*') != std::string_view::npos) return "wildcards are not supported (hosts match exactly)";
  for (char c : host) {
    const bool ok = (c >= 'a' && c <= 'z') || isDigit(c) || c == '.' || c == '-' || c == '_';
    if (!ok) return "contains a character not allowed in a host name";
  }
  return {};
}

bool isRouteMethod(std::string_view method) {
  static constexpr std::string_view kMethods[] = {"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "ANY"};
  return std::find(std::begin(kMethods), std::end(kMethods), method) != std::end(kMethods);
}

std::string toLowerAscii(std::string_view s) {
  std::string r(s);
  for (char& c : r) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return r;
}

std::string toUpperAscii(std::string_view s) {
  std::string r(s);
  for (char& c : r) {
    if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
  }
  return r;
}

std::string resolvePath(const std::string& base_dir, const std::string& path) {
  std::filesystem::path p(path);
  if (p.is_relative()) p = std::filesystem::path(base_dir) / p;
  return p.lexically_normal().string();
}

std::string checkReadableFile(const std::string& path) {
  std::error_code ec;
  const auto status = std::filesystem::status(path, ec);
  if (ec || !std::filesystem::exists(status)) return "file not found: " + path;
  if (!std::filesystem::is_regular_file(status)) return "not a regular file: " + path;
  std::ifstream f(path, std::ios::binary);
  if (!f.is_open()) return "file cannot be read: " + path;
  return {};
}

std::size_t editDistance(std::string_view a, std::string_view b) {
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diag = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diag = up;
    }
  }
  return row[b.size()];
}

}  // namespace portico::conf
