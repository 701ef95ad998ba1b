#include "origin/dir_conditional.h"

#include <cinttypes>
#include <cstdio>
#include <limits>
#include <optional>

#include "proxy/core/http_date.h"

namespace portico::origin {
namespace {

// The opaque-tag of an entity tag (quotes included), without a "W/" prefix.
std::string_view opaqueTag(std::string_view tag) {
  if (tag.size() >= 2 && tag[0] == 'W' && tag[1] == '/') tag.remove_prefix(2);
  return tag;
}

bool isWeak(std::string_view tag) { return tag.size() >= 2 && tag[0] == 'W' && tag[1] == '/'; }

// Decimal digits only, no sign, no overflow.
std::optional<std::uint64_t> parseDecimal(std::string_view s) {
  if (s.empty() || s.size() > 19) return std::nullopt;  // 19 digits always fit in uint64
  std::uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + static_cast<std::uint64_t>(c - '0');
  }
  return v;
}

}  // namespace

std::string makeFileEtag(std::int64_t mtime_s, std::int64_t mtime_ns, std::uint64_t size) {
  const std::uint64_t stamp = static_cast<std::uint64_t>(mtime_s) * 1000000000u +
                     static_cast<std::uint64_t>(mtime_ns);
  char buf[64];
  std::snprintf(buf, sizeof buf, "\"%" PRIx64 "-%" PRIx64 "\"", stamp, size);
  return buf;
}

bool ifNoneMatchMatches(std::string_view list, std::string_view etag) {
  const std::string_view want = opaqueTag(etag);
  std::size_t i = 0;
  while (i < list.size()) {
    const char c = list[i];
    if (c == ' ' || c == '\t' || c == ',') {
      ++i;
      continue;
    }
    if (c == '*') return true;
    std::size_t start = i;
    if (c == 'W' && i + 1 < list.size() && list[i + 1] == '/') i += 2;
    if (i >= list.size() || list[i] != '"') return false;  // malformed member
    // etagc excludes '"' but allows ',', so the tag ends at the next quote, not a comma.
    const std::size_t close = list.find('"', i + 1);
    if (close == std::string_view::npos) return false;
    const std::string_view tag = list.substr(start, close + 1 - start);
    if (opaqueTag(tag) == want) return true;
    i = close + 1;
  }
  return false;
}

Conditional evaluateConditional(const core::HeaderMap& request_headers, std::string_view etag,
                                std::int64_t mtime_s) {
  if (std::optional<std::string> inm = request_headers.getJoined("If-None-Match")) {
    return ifNoneMatchMatches(*inm, etag) ? Conditional::NotModified : Conditional::Serve;
  }
  // §13.1.3: ignored unless exactly one valid HTTP-date.
  if (request_headers.count("If-Modified-Since") != 1) return Conditional::Serve;
  const std::optional<std::int64_t> since =
      core::parseHttpDate(core::trimOws(*request_headers.get("If-Modified-Since")));
  if (since && mtime_s <= *since) return Conditional::NotModified;
  return Conditional::Serve;
}

ByteRange parseByteRange(std::string_view value, std::uint64_t size) {
  ByteRange none;
  value = core::trimOws(value);
  const std::size_t eq = value.find('=');
  if (eq == std::string_view::npos || !core::iequals(core::trimOws(value.substr(0, eq)), "bytes")) {
    return none;
  }
  const std::string_view spec = core::trimOws(value.substr(eq + 1));
  if (spec.find(',') != std::string_view::npos) return none;  // several ranges: ignored
  const std::size_t dash = spec.find('-');
  if (dash == std::string_view::npos) return none;
  const std::string_view first_s = core::trimOws(spec.substr(0, dash));
  const std::string_view last_s = core::trimOws(spec.substr(dash + 1));

  ByteRange r;
  if (first_s.empty()) {  // suffix range "-n": the last n bytes
    const std::optional<std::uint64_t> n = parseDecimal(last_s);
    if (!n) return none;
    if (*n == 0 || size == 0) {
      r.kind = RangeKind::Unsatisfiable;
      return r;
    }
    r.kind = RangeKind::Satisfiable;
    r.first = *n >= size ? 0 : size - *n;
    r.last = size - 1;
    return r;
  }
  const std::optional<std::uint64_t> first = parseDecimal(first_s);
  if (!first) return none;
  std::uint64_t last = std::numeric_limits<std::uint64_t>::max();
  if (!last_s.empty()) {
    const std::optional<std::uint64_t> l = parseDecimal(last_s);
    if (!l || *l < *first) return none;  // "5-2" is invalid, hence ignored
    last = *l;
  }
  if (*first >= size) {
    r.kind = RangeKind::Unsatisfiable;
    return r;
  }
  r.kind = RangeKind::Satisfiable;
  r.first = *first;
  r.last = last >= size ? size - 1 : last;
  return r;
}

bool ifRangeAllows(std::string_view if_range, std::string_view etag, std::int64_t mtime_s) {
  if_range = core::trimOws(if_range);
  if (!if_range.empty() && (if_range.front() == '"' || isWeak(if_range))) {
    return !isWeak(if_range) && !isWeak(etag) && if_range == etag;
  }
  const std::optional<std::int64_t> date = core::parseHttpDate(if_range);
  return date && *date == mtime_s;
}

ByteRange requestedRange(const core::HeaderMap& request_headers, std::uint64_t size,
                         std::string_view etag, std::int64_t mtime_s) {
  if (request_headers.count("Range") != 1) return {};
  if (std::optional<std::string_view> if_range = request_headers.get("If-Range")) {
    if (!ifRangeAllows(*if_range, etag, mtime_s)) return {};
  }
  return parseByteRange(*request_headers.get("Range"), size);
}

}  // namespace portico::origin
