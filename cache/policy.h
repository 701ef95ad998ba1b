#pragma once
// The HTTP cache policy (RFC 9111, RFC 5861, CloudFront TTLs): pure functions of
// (request head, response head, stored metadata, now, behavior). No clock reads, no I/O, no
// state: `now` is always a parameter (style.md G1). Every "no" carries a NoCacheReason.
//
// How the pipeline uses it, in order:
//   miss/hit path  requestCacheability()       -> Bypass: straight to the origin, nothing cached
//                  (lookup) entryUsability()   -> Fresh / StaleWhileRevalidate / Revalidate...
//   fill           responseCacheability()      -> storable? which fields to strip
//                  makeMeta() on the origin head, then headForStorage() -> CachedObject
//   unsafe method  invalidationTargets()       -> URIs whose entries to purge
//   API stages     apiStageBehavior()          -> the Behavior that encodes the stage TTL
// Conditional requests, ranges and revalidation are in cache/validation.h.
//
// Choices made here (each one conformant; RFC 9111 leaves them to the cache):
//  - Request Cache-Control `no-cache`, `max-age`, `max-stale`, `min-fresh` and `Pragma: no-cache`
//    are ignored, as nginx, Varnish and CloudFront do: a shared cache MAY (they are client
//    preferences, §5.2.1), and honouring them lets any client force origin fetches. Request
//    `no-store` is honoured (the response is not stored). The API-stage per-request
//    invalidation (`Cache-Control: max-age=0` with authorization) is a pipeline feature.
//  - No heuristic freshness: a response without explicit freshness gets the behavior's
//    default_ttl_s, and only when its status is heuristically cacheable (RFC 9110 §15.1) or it
//    says `public`. default_ttl_s = 0 stores nothing that lacks explicit freshness.
//  - The TTL clamp: lifetime = clamp(origin lifetime or default_ttl, min_ttl, max_ttl), except
//    that min_ttl never lengthens a response that forbids stale use (must-revalidate,
//    proxy-revalidate, s-maxage): the operator's floor must not override the origin's explicit
//    "never serve me stale". max_ttl_s = 0 disables caching for the behavior (CloudFront's
//    CachingDisabled), so such requests bypass the cache entirely.
//  - Set-Cookie responses are not stored, unless `private="set-cookie"` says the rest of the
//    response is shareable (then the field is stripped). Qualified `private="a, b"` in general:
//    stored without those fields (§5.2.2.7). Qualified `no-cache="a"` is treated as plain
//    no-cache (every use revalidated), which §5.2.2.4 allows.
//  - 206 from the origin is not stored (ranges are answered from whole stored bodies);
//    responses to HEAD are not stored (fetch with GET to fill the cache from a HEAD miss).
//  - must-revalidate, proxy-revalidate, s-maxage and no-cache disable stale serving entirely,
//    including stale-while-revalidate / stale-if-error and the site defaults (§4.2.4).
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "cache/cache_control.h"
#include "cache/cached_object.h"
#include "conf/config.h"
#include "proxy/core/clock.h"
#include "proxy/core/http_message.h"

namespace portico::cache {

// Why something is not served from or stored in the cache (metrics label, log field).
enum class NoCacheReason {
  None,                 // cacheable
  Method,               // request method is not GET/HEAD (request), or not GET (storing)
  CachingDisabled,      // the behavior's max_ttl_s is 0
  RequestNoStore,       // request Cache-Control: no-store
  Status,               // 1xx or 304, or not heuristically cacheable and no explicit freshness
  PartialContent,       // 206 from the origin
  ResponseNoStore,      // response Cache-Control: no-store
  MustUnderstand,       // must-understand on a status code we do not implement
  Private,              // unqualified private
  Authorization,        // request had Authorization; no public / s-maxage / must-revalidate
  SetCookie,            // response sets a cookie
  VaryStar,             // Vary: *
  NoExplicitFreshness,  // no max-age / s-maxage / Expires, and default_ttl_s is 0
  ZeroTtlNoValidator,   // can never be used: zero lifetime (or no-cache), no validator, no stale use
};
std::string_view toString(NoCacheReason reason);  // "none", "method", "set_cookie", ...

// ---- requests ---------------------------------------------------------------------------------

enum class RequestCacheability {
  Cacheable,  // look up; store the response if responseCacheability agrees
  NoStore,    // look up (a stored response may answer), but never store this response
  Bypass,     // neither look up nor store; no coalescing either
};

struct RequestDecision {
  RequestCacheability kind = RequestCacheability::Cacheable;
  NoCacheReason reason = NoCacheReason::None;
};

RequestDecision requestCacheability(const core::RequestHead& request, const conf::Behavior& behavior);

// ---- responses --------------------------------------------------------------------------------

// Site-wide defaults for the RFC 5861 windows, used when the response does not give its own.
struct StaleDefaults {
  std::int64_t stale_while_revalidate_s = 0;
  std::int64_t stale_if_error_s = 0;
};

struct ResponseDecision {
  bool storable = false;
  NoCacheReason reason = NoCacheReason::None;  // None when storable
  std::vector<std::string> strip_fields;       // lower-case names to drop before storing
};

// `request` is the request the response answers, as the client sent it (its method and
// Authorization matter); `response` is the origin's head, before any hop-by-hop stripping;
// `response_time` is when it arrived (stands in for a missing Date). `defaults` only matter for
// the ZeroTtlNoValidator rule (a stale-if-error default makes a zero-TTL entry worth keeping).
ResponseDecision responseCacheability(const core::RequestHead& request, const core::ResponseHead& response,
                                      const conf::Behavior& behavior, core::WallTime response_time,
                                      const StaleDefaults& defaults = {});

// CloudFront's default "error caching minimum TTL": how long a 4xx/5xx answer without explicit
// freshness is kept (at most the behavior's default TTL, then clamped like any lifetime).
inline constexpr std::int64_t kErrorCachingTtlS = 10;

// RFC 9111 §4.2.1 lifetime and the behavior's clamp; error answers without explicit freshness
// get kErrorCachingTtlS instead of the default TTL.
struct Freshness {
  bool explicit_freshness = false;  // s-maxage, max-age or Expires present (even if invalid)
  std::int64_t origin_lifetime_s = 0;  // what the origin said (0 if nothing explicit)
  std::int64_t lifetime_s = 0;         // after default TTL and clamping
};
Freshness freshnessLifetime(const core::ResponseHead& response, const ResponseCacheControl& cc,
                            const conf::Behavior& behavior, core::WallTime response_time);

// The stored metadata for a storable response. `request_time`: when the origin request was
// sent; `response_time`: when its head arrived (§4.2.3). Call on the origin head (it reads Age)
// before headForStorage().
ObjectMeta makeMeta(core::WallTime request_time, core::WallTime response_time, const core::ResponseHead& response,
                    const conf::Behavior& behavior, const StaleDefaults& defaults);

// The head to store: `response` without Age (recomputed on every hit) and without the fields
// the decision strips.
core::ResponseHead headForStorage(const core::ResponseHead& response, const ResponseDecision& decision);

// ---- stored entries ---------------------------------------------------------------------------

// §4.2.3 current_age = corrected_initial_age + resident_time, in whole seconds (the Age value).
std::int64_t currentAge(const ObjectMeta& meta, core::WallTime now);

enum class EntryUsability {
  Fresh,                     // serve it as a hit
  StaleWhileRevalidate,      // serve it now, revalidate in the background (RFC 5861 §3)
  RevalidateOrStaleOnError,  // revalidate first; if the origin fails, serve it (RFC 5861 §4)
  Revalidate,                // revalidate first; if the origin fails, the client gets the error
};
std::string_view toString(EntryUsability usability);

struct EntryState {
  EntryUsability usability = EntryUsability::Revalidate;
  std::int64_t age_s = 0;  // currentAge(): the Age header to send
};
EntryState entryUsability(core::WallTime now, const ObjectMeta& meta);

// After a revalidation or fetch failed at `now` (5xx, timeout, connection error): may the stale
// entry be served instead of the error?
bool staleIfErrorAllows(core::WallTime now, const ObjectMeta& meta);

// How long a store should keep the entry from `now` (Redis PX, L1 expiry): its remaining
// freshness plus the longest stale window it may be served in, or plus `validator_grace_s` if it
// has a validator (a stale entry with a validator still saves a body transfer). <= 0: drop it.
std::int64_t retentionSeconds(const ObjectMeta& meta, core::WallTime now, std::int64_t validator_grace_s);

// ---- invalidation (RFC 9111 §4.4) -------------------------------------------------------------

bool isSafeMethod(std::string_view method);  // GET, HEAD, OPTIONS, TRACE

struct InvalidationTarget {
  std::string host;   // lower-case, no port
  std::string path;   // origin-form path
  std::string query;  // without '?'
  bool operator==(const InvalidationTarget&) const = default;
};

// For an unsafe (or unknown) method answered with a non-error status (2xx/3xx): the target URI
// (path and query as received, like the cache key), plus the Location and Content-Location URIs
// when they name the same host (references resolved against the request path, dot segments
// removed). Empty otherwise.
std::vector<InvalidationTarget> invalidationTargets(const core::RequestHead& request,
                                                    const core::ResponseHead& response);

// ---- API stages -------------------------------------------------------------------------------

// The Behavior of an API route in a stage: default = min = max = the route's cache_ttl_s or
// the stage's ttl_s (0 when the stage cache is disabled, hence Bypass), query_in_key false (the
// key comes from cache_key, see apiPrimaryKey). Origin no-store / private / Set-Cookie are
// still honoured; origin max-age is overridden, as API Gateway does.
conf::Behavior apiStageBehavior(const conf::Stage& stage, const conf::ApiRoute& route);

}  // namespace portico::cache
