#pragma once
// CORS for API stages, from conf::Cors (API Gateway's "CORS configuration" of HTTP APIs; the
// browser side is the Fetch standard, §3.2 "CORS protocol").
//
// Two entry points, both pure functions of (conf, request head):
//   - preflight(): an OPTIONS request carrying Origin and Access-Control-Request-Method is the
//     browser asking permission. The proxy answers it itself (204, the fields returned here) and
//     never forwards it to the origin, as API Gateway does when CORS is configured.
//   - decorateActual(): every other response of an API with CORS configured gets
//     Access-Control-Allow-Origin (when the request's Origin is allowed) and Vary: Origin.
//     Call it on the response as SENT, after any cache lookup, never on what is stored: the
//     allowed origin depends on the request, so a stored copy must not carry it.
//
// Matching rules:
//   - Origins: an allow_origins entry "*" allows every origin (including the opaque "null"), and
//     then Access-Control-Allow-Origin is "*". Otherwise the request's Origin must equal one entry
//     (scheme://host[:port], compared ASCII case-insensitively: scheme and host are
//     case-insensitive and browsers send them lower-case; a trailing '/' on the conf entry is
//     ignored), and that origin is echoed back.
//   - Methods: the requested method must be listed in allow_methods (conf upper-cases them;
//     compared case-sensitively like the browser does), or allow_methods holds "*", or it is a
//     CORS-safelisted method (GET, HEAD, POST), which browsers allow without any
//     Access-Control-Allow-Methods.
//   - Headers: every name in Access-Control-Request-Headers (comma list, possibly repeated; empty
//     items ignored) must be in allow_headers, ASCII case-insensitively, unless allow_headers
//     holds "*".
// Not supported (not in conf::Cors): credentials, expose_headers.
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "conf/config.h"
#include "proxy/core/header_map.h"
#include "proxy/core/http_message.h"

namespace portico::proxy {

struct CorsHeaders {
  std::vector<std::pair<std::string, std::string>> fields;
};

// True for OPTIONS with both Origin and Access-Control-Request-Method. An OPTIONS without them
// is an ordinary request and goes through the API's routes like any other.
bool isPreflight(const core::RequestHead& req);

// The header fields to answer a preflight with (status 204 is the caller's), in this order:
// Access-Control-Allow-Origin, -Allow-Methods (the conf list joined ", ", omitted when empty),
// -Allow-Headers (likewise), -Max-Age (when max_age_s > 0), Vary: Origin.
// nullopt when `req` is not a preflight, its Origin is not allowed, its method is not allowed, or
// one of its requested headers is not allowed: then the caller answers WITHOUT any
// Access-Control-* field, and the browser refuses the actual request.
std::optional<CorsHeaders> preflight(const conf::Cors& cors, const core::RequestHead& req);

// Actual (non-preflight) responses. Sets Access-Control-Allow-Origin when the request's Origin
// is allowed, and removes any the origin server sent otherwise (the conf is the authority, as in
// API Gateway, which ignores CORS headers from the integration when CORS is configured). Adds
// "Origin" to Vary always (merged into an existing Vary; nothing to do when Vary already lists
// Origin or is "*"), so that caches keep the answers for different origins apart.
void decorateActual(const conf::Cors& cors, const core::RequestHead& req,
                    core::HeaderMap& response_headers);

// The Access-Control-Allow-Origin value for `origin` ("*" or the origin itself), or nullopt when
// the origin is not allowed. Exposed for the pipeline's logs and tests.
std::optional<std::string> allowedOriginValue(const conf::Cors& cors, std::string_view origin);

}  // namespace portico::proxy
