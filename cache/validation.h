#pragma once
// Answering from a stored response, and refreshing it: conditional requests (RFC 9110 §13,
// RFC 9111 §4.3.2), single byte ranges (RFC 9110 §14), the revalidation request the cache
// sends (RFC 9111 §4.3.1) and the merge of a 304 into the stored head (RFC 9111 §4.3.4).
// Pure functions: no clock, no I/O (style.md G1). Freshness lives in cache/policy.h.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "cache/cached_object.h"
#include "proxy/core/header_map.h"
#include "proxy/core/http_conditional.h"
#include "proxy/core/http_message.h"

namespace portico::cache {

// ---- entity tags and ranges: proxy/core/http_conditional.h, shared with the dir origin ----

using core::ByteRange;
using core::contentRange;
using core::ifNoneMatchMatches;
using core::parseByteRange;
using core::RangeKind;
using core::unsatisfiedContentRange;
using core::weakEtagEquals;

// ---- conditional requests on a hit ------------------------------------------------------------

enum class ConditionalOutcome {
  None,             // no condition a cache evaluates applies: answer with the stored response
  NotModified,      // answer 304 (notModifiedHead)
  ForwardToOrigin,  // If-Match / If-Unmodified-Since: preconditions meant for the origin
                    // (RFC 9111 §4.3.2: a cache must not evaluate them); do not answer from cache
};
std::string_view toString(ConditionalOutcome outcome);

// GET/HEAD only (any other method: None). If-None-Match decides when present; otherwise a single
// valid If-Modified-Since is compared with the stored Last-Modified, or the stored Date, or the
// time the response was received (RFC 9111 §4.3.2).
ConditionalOutcome evaluateConditional(const core::RequestHead& request, const CachedObject& object);

// The 304 head for a stored response (RFC 9110 §15.4.5): Cache-Control, Content-Location, Date,
// ETag, Expires, Vary, and Last-Modified when there is no ETag. The caller adds Age / X-Cache.
core::ResponseHead notModifiedHead(const core::ResponseHead& stored);

// ---- byte ranges ------------------------------------------------------------------------------

// The range to apply to a hit: GET only, exactly one Range field, and an If-Range (if any) that
// still matches the stored response: a strong ETag equal to the stored strong ETag, or an
// HTTP-date equal to the stored Last-Modified (§13.1.5).
ByteRange requestedRange(const core::RequestHead& request, const CachedObject& object);


// ---- revalidation -----------------------------------------------------------------------------

// Prepares the headers of the request the cache sends to revalidate `meta`: removes the
// client's own conditional and range fields (If-None-Match, If-Modified-Since, If-Match,
// If-Unmodified-Since, If-Range, Range), then adds If-None-Match from the stored ETag and
// If-Modified-Since from the stored Last-Modified (both when both exist, §4.3.1).
void setRevalidationHeaders(core::HeaderMap& origin_request, const ObjectMeta& meta);

// RFC 9111 §4.3.4: does a 304 refer to the stored response? If it has an ETag, it must equal
// the stored one (weak comparison for a weak tag, exact otherwise); else if it has a
// Last-Modified it must equal the stored one; with neither it refers to what we asked about.
bool notModifiedSelects(const ObjectMeta& meta, const core::ResponseHead& not_modified);

// The stored head refreshed by a 304 (§3.2, §4.3.4): every field the 304 carries replaces the
// stored field of that name, except Content-Length, Content-Range, Content-Encoding,
// Transfer-Encoding, Vary (it would change the variant), Set-Cookie (never stored), Age and the
// hop-by-hop fields. nullopt if notModifiedSelects() is false: the caller must fetch in full.
// Afterwards recompute the meta with makeMeta(request_time, response_time, merged, ...), where
// the times are those of the revalidation exchange, and re-check responseCacheability().
std::optional<core::ResponseHead> mergeNotModified(const core::ResponseHead& stored, const ObjectMeta& meta,
                                                   const core::ResponseHead& not_modified);

}  // namespace portico::cache
