#include "proxy/core/http_date.h"

#include <cstdio>
#include <cstring>
#include <ctime>
#include <vector>

namespace portico::core {
namespace {
constexpr const char* kDays[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
constexpr const char* kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                   "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

int monthIndex(std::string_view m) {
  for (int i = 0; i < 12; ++i) {
    if (m == kMonths[i]) return i;
  }
  return -1;
}

bool parseInt(std::string_view s, int& out) {
  if (s.empty() || s.size() > 9) return false;
  int v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + (c - '0');
  }
  out = v;
  return true;
}

bool parseClock(std::string_view s, int& h, int& m, int& sec) {
  if (s.size() != 8 || s[2] != ':' || s[5] != ':') return false;
  return parseInt(s.substr(0, 2), h) && parseInt(s.substr(3, 2), m) &&
         parseInt(s.substr(6, 2), sec) && h < 24 && m < 60 && sec <= 60;
}

std::optional<std::int64_t> build(int year, int mon, int day, int h, int m, int s) {
  if (mon < 0 || day < 1 || day > 31 || year < 1900) return std::nullopt;
  std::tm tm{};
  tm.tm_year = year - 1900;
  tm.tm_mon = mon;
  tm.tm_mday = day;
  tm.tm_hour = h;
  tm.tm_min = m;
  tm.tm_sec = s;
  return static_cast<std::int64_t>(timegm(&tm));
}

std::vector<std::string_view> splitSpaces(std::string_view s) {
  std::vector<std::string_view> parts;
  while (!s.empty()) {
    while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
    if (s.empty()) break;
    std::size_t sp = s.find(' ');
    parts.push_back(s.substr(0, sp));
    if (sp == std::string_view::npos) break;
    s.remove_prefix(sp);
  }
  return parts;
}
}  // namespace

std::string formatHttpDate(std::int64_t unix_seconds) {
  std::time_t t = static_cast<std::time_t>(unix_seconds);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[40];
  std::snprintf(buf, sizeof buf, "%s, %02d %s %04d %02d:%02d:%02d GMT", kDays[tm.tm_wday],
                tm.tm_mday, kMonths[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min,
                tm.tm_sec);
  return buf;
}

std::optional<std::int64_t> parseHttpDate(std::string_view s) {
  auto parts = splitSpaces(s);
  int day = 0, year = 0, h = 0, m = 0, sec = 0;
  if (parts.size() == 6 && parts[0].size() == 4 && parts[0].back() == ',') {
    // IMF-fixdate: Sun, 06 Nov 1994 08:49:37 GMT
    if (parts[5] != "GMT" || !parseInt(parts[1], day) || !parseInt(parts[3], year) ||
        !parseClock(parts[4], h, m, sec)) {
      return std::nullopt;
    }
    return build(year, monthIndex(parts[2]), day, h, m, sec);
  }
  if (parts.size() == 4 && !parts[0].empty() && parts[0].back() == ',') {
    // RFC 850: Sunday, 06-Nov-94 08:49:37 GMT
    std::string_view d = parts[1];
    if (parts[3] != "GMT" || d.size() != 9 || d[2] != '-' || d[6] != '-') return std::nullopt;
    if (!parseInt(d.substr(0, 2), day) || !parseInt(d.substr(7, 2), year) ||
        !parseClock(parts[2], h, m, sec)) {
      return std::nullopt;
    }
    year += year < 70 ? 2000 : 1900;  // RFC 9110 §5.6.7: interpret 2-digit years sensibly
    return build(year, monthIndex(d.substr(3, 3)), day, h, m, sec);
  }
  if (parts.size() == 5) {
    // asctime: Sun Nov  6 08:49:37 1994
    if (!parseInt(parts[2], day) || !parseInt(parts[4], year) || !parseClock(parts[3], h, m, sec)) {
      return std::nullopt;
    }
    return build(year, monthIndex(parts[1]), day, h, m, sec);
  }
  return std::nullopt;
}

std::string_view cachedHttpDate(std::int64_t unix_seconds) {
  thread_local std::int64_t cached_at = -1;
  thread_local std::string cached;
  if (unix_seconds != cached_at) {
    cached = formatHttpDate(unix_seconds);
    cached_at = unix_seconds;
  }
  return cached;
}

}  // namespace portico::core
