#include "cache/validation.h"

#include <algorithm>
#include <limits>
#include <vector>

#include "cache/cache_control.h"
#include "proxy/core/http_date.h"

namespace portico::cache {
namespace {

bool isWeak(std::string_view tag) { return tag.size() >= 2 && tag[0] == 'W' && tag[1] == '/'; }

std::string_view opaqueTag(std::string_view tag) {
  if (isWeak(tag)) tag.remove_prefix(2);
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

// The single valid HTTP-date of a date-valued condition field; nullopt if absent, repeated or
// invalid (RFC 9110 §13.1.3 / §13.1.4: such a field is ignored).
std::optional<std::int64_t> singleDate(const core::HeaderMap& headers, std::string_view name) {
  if (headers.count(name) != 1) return std::nullopt;
  return core::parseHttpDate(core::trimOws(*headers.get(name)));
}

// Two Last-Modified values name the same time (compared as dates when both parse).
bool sameDate(std::string_view a, std::string_view b) {
  const std::optional<std::int64_t> da = core::parseHttpDate(core::trimOws(a));
  const std::optional<std::int64_t> db = core::parseHttpDate(core::trimOws(b));
  if (da && db) return *da == *db;
  return core::trimOws(a) == core::trimOws(b);
}

bool isHopByHop(std::string_view name) {
  for (std::string_view h : {"Connection", "Keep-Alive", "Proxy-Connection", "TE", "Trailer", "Transfer-Encoding",
                             "Upgrade", "Proxy-Authenticate", "Proxy-Authorization"}) {
    if (core::iequals(name, h)) return true;
  }
  return false;
}

// Fields a 304 must not overwrite in the stored head (RFC 9111 §3.2 and our own invariants).
bool keptFromStored(std::string_view name) {
  for (std::string_view h : {"Content-Length", "Content-Range", "Content-Encoding", "Vary", "Set-Cookie", "Age"}) {
    if (core::iequals(name, h)) return true;
  }
  return isHopByHop(name);
}

}  // namespace

bool weakEtagEquals(std::string_view a, std::string_view b) {
  a = opaqueTag(core::trimOws(a));
  b = opaqueTag(core::trimOws(b));
  return !a.empty() && a == b;
}

bool ifNoneMatchMatches(std::string_view list, std::string_view etag) {
  const std::string_view want = opaqueTag(core::trimOws(etag));
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

std::string_view toString(ConditionalOutcome outcome) {
  switch (outcome) {
    case ConditionalOutcome::None: return "none";
    case ConditionalOutcome::NotModified: return "not_modified";
    case ConditionalOutcome::ForwardToOrigin: return "forward_to_origin";
  }
  return "unknown";
}

ConditionalOutcome evaluateConditional(const core::RequestHead& request, const CachedObject& object) {
  if (request.method != "GET" && request.method != "HEAD") return ConditionalOutcome::None;
  const core::HeaderMap& h = request.headers;
  if (h.has("If-Match") || h.has("If-Unmodified-Since")) return ConditionalOutcome::ForwardToOrigin;
  if (std::optional<std::string> inm = h.getJoined("If-None-Match")) {
    return ifNoneMatchMatches(*inm, object.meta.etag) ? ConditionalOutcome::NotModified : ConditionalOutcome::None;
  }
  const std::optional<std::int64_t> since = singleDate(h, "If-Modified-Since");
  if (!since) return ConditionalOutcome::None;
  std::optional<std::int64_t> modified;
  if (!object.meta.last_modified.empty()) {
    modified = core::parseHttpDate(core::trimOws(object.meta.last_modified));
    if (!modified) return ConditionalOutcome::None;  // a Last-Modified we cannot read proves nothing
  } else {
    modified = parseDate(object.head.headers);
    if (!modified) modified = core::toUnixSeconds(object.meta.response_time);
  }
  return *modified <= *since ? ConditionalOutcome::NotModified : ConditionalOutcome::None;
}

core::ResponseHead notModifiedHead(const core::ResponseHead& stored) {
  core::ResponseHead out;
  out.status = 304;
  const bool has_etag = stored.headers.has("ETag");
  for (const core::HeaderMap::Entry& e : stored.headers) {
    const std::string_view n = e.name;
    if (core::iequals(n, "Cache-Control") || core::iequals(n, "Content-Location") || core::iequals(n, "Date") ||
        core::iequals(n, "ETag") || core::iequals(n, "Expires") || core::iequals(n, "Vary") ||
        (!has_etag && core::iequals(n, "Last-Modified"))) {
      out.headers.add(e.name, e.value);
    }
  }
  return out;
}

ByteRange parseRange(std::string_view value, std::uint64_t size) {
  const ByteRange ignore;
  value = core::trimOws(value);
  const std::size_t eq = value.find('=');
  if (eq == std::string_view::npos || !core::iequals(core::trimOws(value.substr(0, eq)), "bytes")) return ignore;
  const std::string_view spec = core::trimOws(value.substr(eq + 1));
  if (spec.find(',') != std::string_view::npos) return ignore;  // several ranges: whole body
  const std::size_t dash = spec.find('-');
  if (dash == std::string_view::npos) return ignore;
  const std::string_view first_s = core::trimOws(spec.substr(0, dash));
  const std::string_view last_s = core::trimOws(spec.substr(dash + 1));

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

ByteRange requestedRange(const core::RequestHead& request, const CachedObject& object) {
  if (request.method != "GET" || request.headers.count("Range") != 1) return {};
  if (std::optional<std::string_view> if_range = request.headers.get("If-Range")) {
    const std::string_view v = core::trimOws(*if_range);
    if (!v.empty() && (v.front() == '"' || isWeak(v))) {
      // Strong comparison: a weak tag on either side never matches.
      const std::string_view stored = core::trimOws(object.meta.etag);
      if (isWeak(v) || stored.empty() || isWeak(stored) || v != stored) return {};
    } else {
      const std::optional<std::int64_t> date = core::parseHttpDate(v);
      const std::optional<std::int64_t> modified = core::parseHttpDate(core::trimOws(object.meta.last_modified));
      if (!date || !modified || *date != *modified) return {};
    }
  }
  return parseRange(*request.headers.get("Range"), object.body ? object.bodySize() : 0);
}

std::string contentRange(const ByteRange& range, std::uint64_t size) {
  return "bytes " + std::to_string(range.first) + "-" + std::to_string(range.last) + "/" + std::to_string(size);
}

std::string unsatisfiedContentRange(std::uint64_t size) { return "bytes */" + std::to_string(size); }

void setRevalidationHeaders(core::HeaderMap& origin_request, const ObjectMeta& meta) {
  for (std::string_view n : {"If-None-Match", "If-Modified-Since", "If-Match", "If-Unmodified-Since", "If-Range", "Range"}) {
    origin_request.remove(n);
  }
  if (!meta.etag.empty()) origin_request.add("If-None-Match", meta.etag);
  if (!meta.last_modified.empty()) origin_request.add("If-Modified-Since", meta.last_modified);
}

bool notModifiedSelects(const ObjectMeta& meta, const core::ResponseHead& not_modified) {
  if (std::optional<std::string_view> etag = not_modified.headers.get("ETag")) {
    const std::string_view fresh = core::trimOws(*etag);
    const std::string_view stored = core::trimOws(meta.etag);
    if (stored.empty()) return false;
    if (!isWeak(fresh)) return !isWeak(stored) && fresh == stored;  // strong: strong comparison
    return weakEtagEquals(fresh, stored);
  }
  if (std::optional<std::string_view> lm = not_modified.headers.get("Last-Modified")) {
    return !meta.last_modified.empty() && sameDate(*lm, meta.last_modified);
  }
  return true;
}

std::optional<core::ResponseHead> mergeNotModified(const core::ResponseHead& stored, const ObjectMeta& meta,
                                                   const core::ResponseHead& not_modified) {
  if (!notModifiedSelects(meta, not_modified)) return std::nullopt;
  core::ResponseHead merged = stored;
  // Fields named in the 304's Connection header are hop-by-hop too.
  const std::optional<std::string> connection = not_modified.headers.getJoined("Connection");
  std::vector<std::string> replaced;
  for (const core::HeaderMap::Entry& e : not_modified.headers) {
    if (keptFromStored(e.name) || (connection && core::listHasToken(*connection, e.name))) continue;
    const std::string name = core::toLower(e.name);
    if (std::find(replaced.begin(), replaced.end(), name) == replaced.end()) {
      merged.headers.remove(name);
      replaced.push_back(name);
    }
    merged.headers.add(e.name, e.value);
  }
  return merged;
}

}  // namespace portico::cache
