#pragma once
// The JWT authorizer of API stages (API Gateway's "JWT authorizer"): a bearer token in the
// Authorization header is accepted when it is a compact JWS (RFC 7515) signed RS256 or ES256 by
// a key of the stage's JWKS, is within its validity window, and names the configured issuer
// and one of the configured audiences (RFC 7519 §4.1). On success the claims are handed on, as
// API Gateway hands them to the function: each top-level claim as a string.
//
// Pure functions of (token, keys, policy, now) (style.md G1): no clock, no I/O, callable from
// any worker thread. Hostile input is the normal case here: tokens longer than kMaxJwtBytes are
// refused before any decoding, JSON is parsed without exceptions and with a nesting limit, and
// the payload is decoded only after the signature has been verified.
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "proxy/auth/jwks.h"

namespace portico::proxy {

// Longer tokens are refused unread (API Gateway caps a whole request header at 10 KB).
inline constexpr std::size_t kMaxJwtBytes = 16 * 1024;

struct JwtPolicy {
  std::string issuer;                  // required match of "iss" when non-empty
  std::vector<std::string> audiences;  // when non-empty: "aud" (string or array) must contain one
  std::int64_t leeway_s = 60;          // clock skew allowed on exp / nbf / iat (negative: 0)
};

struct JwtResult {
  bool ok = false;
  // Why not, for logs only (never sent to clients; it never quotes the token): "malformed
  // token", "token too long", "alg none", "alg HS256 not allowed", "unsupported alg",
  // "crit not supported", "unknown kid", "alg does not match key", "bad signature",
  // "payload not a JSON object", "missing exp", "bad exp", "expired", "not yet valid",
  // "issued in the future", "iss mismatch", "aud mismatch", ...
  std::string reason;
  std::string claims_json;                    // the payload object, compact, when ok
  std::map<std::string, std::string> claims;  // top-level claims as strings, when ok: strings
                                              // as they are, numbers/bools/null printed,
                                              // arrays/objects as compact JSON text
};

// Verifies `token`, a compact JWS "header.payload.signature" (each part base64url without
// padding), at wall-clock `now_unix_s`:
//   - header: a JSON object whose "alg" is RS256 or ES256. "none", HS256/384/512 (the
//     key-confusion attack, where the RSA public key is used as an HMAC secret) and anything
//     else are refused, as is a "crit" header (no extension is understood). "kid" selects the
//     key (Jwks::verify); "jwk", "jku", "x5u", "x5c" are ignored: keys come only from `keys`.
//   - signature: verified over the first two parts as received, before the payload is read.
//   - payload: a JSON object. "exp" is required; the token is expired once now >= exp + leeway.
//     "nbf" (now + leeway < nbf: not yet valid) and "iat" (iat > now + leeway: issued in the
//     future) are checked when present. Times are NumericDate: integers or decimals, any
//     magnitude (compared saturated, never overflowing); other types are refused.
//   - policy: "iss" and "aud" as documented on JwtPolicy.
// Never throws, never crashes, bounded work whatever the input.
JwtResult verifyJwt(std::string_view token, const Jwks& keys, const JwtPolicy& policy,
                    std::int64_t now_unix_s);

// The token of an Authorization value "Bearer <token>": the scheme case-insensitive, followed
// by one or more spaces; trailing spaces/tabs ignored. nullopt for another scheme, an empty
// token, or a token with whitespace inside. The view points into `authorization_value`.
std::optional<std::string_view> bearerToken(std::string_view authorization_value);

}  // namespace portico::proxy
