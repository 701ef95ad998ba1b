#pragma once
// HTTP validators, conditional requests and byte ranges for a file-backed origin (the dir
// origin answers like an object store: strong ETags, Last-Modified, 304, 206, 416).
// Pure functions over header values, file size and mtime; no I/O, no clock.
#include <cstdint>
#include <string>
#include <string_view>

#include "proxy/core/header_map.h"

namespace portico::origin {

// A strong entity tag from the file's mtime (ns) and size: "\"<hex mtime_ns>-<hex size>\"".
// Stable across workers and restarts for an unchanged file; changes when the file is rewritten.
std::string makeFileEtag(std::int64_t mtime_s, std::int64_t mtime_ns, std::uint64_t size);

// RFC 9110 §13.1.2: true if the If-None-Match field value `list` ("*" or a comma-separated
// list of entity tags, W/ allowed) matches `etag` by the weak comparison. A malformed list
// matches nothing from the malformed member on.
bool ifNoneMatchMatches(std::string_view list, std::string_view etag);

enum class Conditional {
  Serve,        // no precondition applies, or the representation changed
  NotModified,  // answer 304
};

// RFC 9110 §13.2.2 order for GET/HEAD: If-None-Match decides when present; otherwise
// If-Modified-Since (one valid HTTP-date) gives NotModified when mtime_s <= that date.
Conditional evaluateConditional(const core::HeaderMap& request_headers, std::string_view etag,
                                std::int64_t mtime_s);

enum class RangeKind {
  None,           // no Range, or one to ignore (malformed, several ranges, other unit) -> 200
  Satisfiable,    // one range [first, last] inside the file -> 206
  Unsatisfiable,  // a valid range that selects nothing -> 416 "Content-Range: bytes */size"
};

struct ByteRange {
  RangeKind kind = RangeKind::None;
  std::uint64_t first = 0;
  std::uint64_t last = 0;  // inclusive
  std::uint64_t length() const { return last - first + 1; }
};

// RFC 9110 §14.1.2 for one range: "bytes=a-b" (b clamped to size-1), "bytes=a-", "bytes=-n"
// (the last n bytes). Several ranges ("0-1,5-6") are ignored on purpose: multipart/byteranges
// is not worth its cost for a static-site origin, and ignoring Range is always allowed.
ByteRange parseByteRange(std::string_view value, std::uint64_t size);

// RFC 9110 §13.1.5: true if the If-Range value lets the Range apply: an entity tag that equals
// `etag` by the strong comparison (a weak tag never does), or an HTTP-date equal to mtime_s.
bool ifRangeAllows(std::string_view if_range, std::string_view etag, std::int64_t mtime_s);

// What to do with the request's Range for a GET of a file with these validators: combines
// Range (exactly one field) with If-Range.
ByteRange requestedRange(const core::HeaderMap& request_headers, std::uint64_t size,
                         std::string_view etag, std::int64_t mtime_s);

}  // namespace portico::origin
