#include "cache/validation.h"

#include <algorithm>
#include <limits>
#include <vector>

#include "cache/cache_control.h"
#include "proxy/core/http_date.h"

namespace portico::cache {
namespace {

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

ByteRange requestedRange(const core::RequestHead& request, const CachedObject& object) {
  if (request.method != "GET" || request.headers.count("Range") != 1) return {};
  if (std::optional<std::string_view> if_range = request.headers.get("If-Range")) {
    const std::optional<std::int64_t> modified = core::parseHttpDate(core::trimOws(object.meta.last_modified));
    if (!core::ifRangeAllows(*if_range, object.meta.etag, modified)) return {};
  }
  return parseByteRange(*request.headers.get("Range"), object.body ? object.bodySize() : 0);
}


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
    if (!core::isWeakEtag(fresh)) return !core::isWeakEtag(stored) && fresh == stored;  // strong: strong comparison
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
