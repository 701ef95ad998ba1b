#pragma once
// Parsing of the header fields that drive HTTP caching (RFC 9111 §5, RFC 5861): Cache-Control
// (request and response directives), Pragma, Expires, Age, Date and Vary, into plain structs.
// Pure functions over a HeaderMap: no clock, no I/O (style.md G1). The decisions made from these
// values live in cache/policy.h.
//
// Robustness rules, applied everywhere below:
//  - Directive names are case-insensitive; unknown directives are ignored (§5.2.3).
//  - Arguments may be a token or a quoted-string, whichever form the directive prefers (§5.2).
//  - delta-seconds larger than we care to represent are clamped to 2^31 (§1.2.2).
//  - A freshness value that is invalid (max-age=abc, max-age=-1, max-age with no argument) or
//    given twice with different values counts as "stale": 0 (§4.2.1 encourages exactly that).
//    Extension windows (stale-while-revalidate, stale-if-error) that are invalid are ignored,
//    and duplicates keep the smallest: both choices only ever reduce what the cache may do.
//  - Malformed list members (an unterminated quoted-string) are skipped, never fatal.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "proxy/core/header_map.h"

namespace portico::cache {

// RFC 9111 §1.2.2: the value a cache uses for a delta-seconds it cannot represent.
inline constexpr std::int64_t kDeltaSecondsMax = 2147483648;  // 2^31

// 1*DIGIT -> seconds, clamped to kDeltaSecondsMax; nullopt for anything else (sign, empty,
// spaces, fractions).
std::optional<std::int64_t> parseDeltaSeconds(std::string_view s);

// Response directives (RFC 9111 §5.2.2, RFC 5861, RFC 8246). Field-name arguments are
// lower-cased.
struct ResponseCacheControl {
  bool no_store = false;
  bool no_cache = false;                      // with or without field names (policy treats both alike)
  std::vector<std::string> no_cache_fields;   // no-cache="a, b"
  bool is_private = false;                    // unqualified private (or private="")
  std::vector<std::string> private_fields;    // private="set-cookie": only when is_private is false
  bool is_public = false;
  bool must_revalidate = false;
  bool proxy_revalidate = false;
  bool must_understand = false;
  bool no_transform = false;
  bool immutable = false;
  std::optional<std::int64_t> max_age;    // invalid or conflicting -> 0
  std::optional<std::int64_t> s_maxage;   // invalid or conflicting -> 0
  std::optional<std::int64_t> stale_while_revalidate;  // invalid -> absent; duplicates -> min
  std::optional<std::int64_t> stale_if_error;          // invalid -> absent; duplicates -> min
};

// Request directives (RFC 9111 §5.2.1). `Pragma: no-cache` sets no_cache when the request has
// no Cache-Control field at all (§5.4).
struct RequestCacheControl {
  bool no_cache = false;
  bool no_store = false;
  bool no_transform = false;
  bool only_if_cached = false;
  std::optional<std::int64_t> max_age;    // first valid occurrence
  std::optional<std::int64_t> min_fresh;  // first valid occurrence
  std::optional<std::int64_t> max_stale;  // "max-stale" without a value: kDeltaSecondsMax
};

// Every Cache-Control field line of `headers`, combined as one list (RFC 9110 §5.3).
ResponseCacheControl parseResponseCacheControl(const core::HeaderMap& headers);
RequestCacheControl parseRequestCacheControl(const core::HeaderMap& headers);

// Expires (RFC 9111 §5.3). `present` with no `time` means an invalid date (e.g. "0") or two
// different values: the response is already expired.
struct ExpiresField {
  bool present = false;
  std::optional<std::int64_t> time;  // Unix seconds
};
ExpiresField parseExpires(const core::HeaderMap& headers);

// Date (RFC 9110 §6.6.1): Unix seconds of the first field line; nullopt if absent or invalid.
std::optional<std::int64_t> parseDate(const core::HeaderMap& headers);

// Age (RFC 9111 §5.1): seconds of the first list member; 0 if absent or invalid (an Age we
// cannot read is no evidence of age), clamped to kDeltaSecondsMax.
std::int64_t parseAge(const core::HeaderMap& headers);

// Vary (RFC 9110 §12.5.5): `star` if any member is "*"; otherwise the field names lower-cased,
// sorted and de-duplicated, so that "Vary: B, a" and "Vary: A" + "Vary: b" key alike.
struct VaryField {
  bool star = false;
  std::vector<std::string> names;
};
VaryField parseVary(const core::HeaderMap& headers);

// Splits a comma-separated field value into trimmed, non-empty members, keeping commas inside
// quoted-strings (so `private="a, b", max-age=5` has two members). An unterminated
// quoted-string runs to the end of the value.
std::vector<std::string_view> splitList(std::string_view value);

}  // namespace portico::cache
