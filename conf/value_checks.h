#pragma once
// Pure checks and conversions for single configuration values (conf-internal; std only).
// parseSize / parseListenAddress (declared in config_parser.h) are implemented alongside.
// Each check returns an empty string when the value is fine, else the reason, phrased to follow
// "key: " in an error message.
#include <cstddef>
#include <string>
#include <string_view>

namespace portico::conf {

// "http://host[:port][/path]" or "https://...": scheme, non-empty host, numeric port 1..65535,
// no whitespace, no userinfo, query or fragment.
std::string checkHttpUrl(std::string_view url);

// A Host a site or API answers to: lower-case DNS name or IPv4 literal ([a-z0-9.-_]), or a
// bracketed IPv6 literal; no port, no wildcard. Call after lower-casing.
std::string checkHostName(std::string_view host);

// An API route method: GET HEAD POST PUT DELETE PATCH OPTIONS or ANY (upper-case).
bool isRouteMethod(std::string_view method);

std::string toLowerAscii(std::string_view s);
std::string toUpperAscii(std::string_view s);

// `path` if absolute, else base_dir/path; lexically normalised ("a/../b" -> "b").
std::string resolvePath(const std::string& base_dir, const std::string& path);

// An existing, readable regular file (TLS certificate/key). "" or the reason.
std::string checkReadableFile(const std::string& path);

// Levenshtein distance, for "did you mean" hints on unknown keys.
std::size_t editDistance(std::string_view a, std::string_view b);

}  // namespace portico::conf
