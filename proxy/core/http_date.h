#pragma once
// RFC 9110 §5.6.7 HTTP-date: format IMF-fixdate, parse IMF-fixdate / RFC 850 / asctime.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace portico::core {

// Seconds since the Unix epoch -> "Sun, 06 Nov 1994 08:49:37 GMT".
std::string formatHttpDate(std::int64_t unix_seconds);
// Any of the three RFC 9110 forms -> seconds since the epoch; nullopt if invalid.
std::optional<std::int64_t> parseHttpDate(std::string_view s);

// A per-thread cache of the current Date header value, refreshed at most once a second.
std::string_view cachedHttpDate(std::int64_t unix_seconds);

}  // namespace portico::core
