#pragma once
// HTTP validators, conditional requests and byte ranges for a file-backed origin (the dir
// origin answers like an object store: strong ETags, Last-Modified, 304, 206, 416).
// Pure functions over header values, file size and mtime; no I/O, no clock.
#include <cstdint>
#include <string>
#include <string_view>

#include "proxy/core/header_map.h"
#include "proxy/core/http_conditional.h"

namespace portico::origin {

// A strong entity tag from the file's mtime (ns) and size: "\"<hex mtime_ns>-<hex size>\"".
// Stable across workers and restarts for an unchanged file; changes when the file is rewritten.
std::string makeFileEtag(std::int64_t mtime_s, std::int64_t mtime_ns, std::uint64_t size);

// Entity tags, If-None-Match, If-Range and byte ranges: proxy/core/http_conditional.h, shared
// with the cache.
using core::ByteRange;
using core::ifNoneMatchMatches;
using core::ifRangeAllows;
using core::parseByteRange;
using core::RangeKind;

enum class Conditional {
  Serve,        // no precondition applies, or the representation changed
  NotModified,  // answer 304
};

// RFC 9110 §13.2.2 order for GET/HEAD: If-None-Match decides when present; otherwise
// If-Modified-Since (one valid HTTP-date) gives NotModified when mtime_s <= that date.
Conditional evaluateConditional(const core::HeaderMap& request_headers, std::string_view etag,
                                std::int64_t mtime_s);

// What to do with the request's Range for a GET of a file with these validators: combines
// Range (exactly one field) with If-Range.
ByteRange requestedRange(const core::HeaderMap& request_headers, std::uint64_t size,
                         std::string_view etag, std::int64_t mtime_s);

}  // namespace portico::origin
