#include "origin/dir_conditional.h"

#include <cinttypes>
#include <cstdio>
#include <optional>

#include "proxy/core/http_date.h"

namespace portico::origin {

std::string makeFileEtag(std::int64_t mtime_s, std::int64_t mtime_ns, std::uint64_t size) {
  const std::uint64_t stamp = static_cast<std::uint64_t>(mtime_s) * 1000000000u +
                     static_cast<std::uint64_t>(mtime_ns);
  char buf[64];
  std::snprintf(buf, sizeof buf, "\"%" PRIx64 "-%" PRIx64 "\"", stamp, size);
  return buf;
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

ByteRange requestedRange(const core::HeaderMap& request_headers, std::uint64_t size,
                         std::string_view etag, std::int64_t mtime_s) {
  if (request_headers.count("Range") != 1) return {};
  if (std::optional<std::string_view> if_range = request_headers.get("If-Range")) {
    if (!core::ifRangeAllows(*if_range, etag, mtime_s)) return {};
  }
  return parseByteRange(*request_headers.get("Range"), size);
}

}  // namespace portico::origin
