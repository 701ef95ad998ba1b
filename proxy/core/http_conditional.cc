#include "proxy/core/http_conditional.h"

#include <limits>

#include "proxy/core/header_map.h"
#include "proxy/core/http_date.h"

namespace portico::core {
namespace {

std::string_view opaqueTag(std::string_view tag) {
  if (isWeakEtag(tag)) tag.remove_prefix(2);
  return tag;
}

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

bool isWeakEtag(std::string_view tag) { return tag.size() >= 2 && tag[0] == 'W' && tag[1] == '/'; }

bool weakEtagEquals(std::string_view a, std::string_view b) {
  a = opaqueTag(trimOws(a));
  b = opaqueTag(trimOws(b));
  return !a.empty() && a == b;
}

bool ifNoneMatchMatches(std::string_view list, std::string_view etag) {
  const std::string_view want = opaqueTag(trimOws(etag));
  std::size_t i = 0;
  while (i < list.size()) {
    const char c = list[i];
    if (c == ' ' || c == '\t' || c == ',') {
      ++i;
      continue;
    }
    if (c == '*') return true;
    const std::size_t start = i;
    if (c == 'W' && i + 1 < list.size() && list[i + 1] == '/') i += 2;
    if (i >= list.size() || list[i] != '"') return false;  // malformed member
    // etagc excludes '"' but allows ',', so the tag ends at the next quote, not a comma.
    const std::size_t close = list.find('"', i + 1);
    if (close == std::string_view::npos) return false;
    if (!want.empty() && opaqueTag(list.substr(start, close + 1 - start)) == want) return true;
    i = close + 1;
  }
  return false;
}

ByteRange parseByteRange(std::string_view value, std::uint64_t size) {
  const ByteRange ignore;
  value = trimOws(value);
  const std::size_t eq = value.find('=');
  if (eq == std::string_view::npos || !iequals(trimOws(value.substr(0, eq)), "bytes")) return ignore;
  const std::string_view spec = trimOws(value.substr(eq + 1));
  if (spec.find(',') != std::string_view::npos) return ignore;  // several ranges: whole body
  const std::size_t dash = spec.find('-');
  if (dash == std::string_view::npos) return ignore;
  const std::string_view first_s = trimOws(spec.substr(0, dash));
  const std::string_view last_s = trimOws(spec.substr(dash + 1));

  ByteRange r;
  if (first_s.empty()) {  // suffix range "-n": the last n bytes
    const std::optional<std::uint64_t> n = parseDecimal(last_s);
    if (!n) return ignore;
    if (*n == 0 || size == 0) {
      r.kind = RangeKind::Unsatisfiable;
      return r;
    }
    r.kind = RangeKind::Single;
    r.first = *n >= size ? 0 : size - *n;
    r.last = size - 1;
    return r;
  }
  const std::optional<std::uint64_t> first = parseDecimal(first_s);
  if (!first) return ignore;
  std::uint64_t last = std::numeric_limits<std::uint64_t>::max();
  if (!last_s.empty()) {
    const std::optional<std::uint64_t> l = parseDecimal(last_s);
    if (!l || *l < *first) return ignore;  // "5-2" is invalid syntax, hence ignored
    last = *l;
  }
  if (*first >= size) {
    r.kind = RangeKind::Unsatisfiable;
    return r;
  }
  r.kind = RangeKind::Single;
  r.first = *first;
  r.last = last >= size ? size - 1 : last;
  return r;
}

bool ifRangeAllows(std::string_view if_range, std::string_view etag,
                   std::optional<std::int64_t> last_modified_s) {
  if_range = trimOws(if_range);
  if (!if_range.empty() && (if_range.front() == '"' || isWeakEtag(if_range))) {
    etag = trimOws(etag);
    return !isWeakEtag(if_range) && !etag.empty() && !isWeakEtag(etag) && if_range == etag;
  }
  const std::optional<std::int64_t> date = parseHttpDate(if_range);
  return date && last_modified_s && *date == *last_modified_s;
}

std::string contentRange(const ByteRange& range, std::uint64_t size) {
  return "bytes " + std::to_string(range.first) + "-" + std::to_string(range.last) + "/" +
         std::to_string(size);
}

std::string unsatisfiedContentRange(std::uint64_t size) { return "bytes */" + std::to_string(size); }

}  // namespace portico::core
