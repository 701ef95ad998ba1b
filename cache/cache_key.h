#pragma once
// Cache keys: which stored object answers a request. Pure string building (style.md G1).
//
// A key has two parts, as in RFC 9111 §4.1 and Envoy/Varnish:
//   primary  the resource: for a site, "site|<site>|<behavior path pattern>|<host>|<path>[?<query>]";
//            for an API stage, "api|<api>|<stage>|<route template>|p:..|q:..|h:.." with only the
//            declared cache_key parameters (API Gateway semantics). Readable on purpose: logs,
//            the admin purge and Redis keys show it as is.
//   variant  which Vary variant of it: built from the names in the stored response's Vary and
//            this request's values of those fields; "" when the stored response has no Vary.
// Lookup is therefore two-step: find the primary's stored Vary names, then the variant.
//
// Normalisation: percent-escapes of unreserved characters are decoded and the others
// upper-cased (RFC 3986 §6.2.2, equivalence-preserving); the query is sorted by name then value
// (or dropped when the behavior's query_in_key is false); header names are lower-cased, values
// trimmed, list members re-joined with ","; an absent field and an empty one key differently.
// Every variable component is escaped ('\' -> "\\", '|' -> "\|", control octets -> "\xHH"), so
// distinct inputs never build the same key.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "conf/config.h"
#include "proxy/core/header_map.h"
#include "proxy/core/http_message.h"

namespace portico::cache {

struct CacheKey {
  std::string primary;
  std::string variant;  // "" for a response without Vary
  bool operator==(const CacheKey&) const = default;
};

// FNV-1a 64 over primary, a separator and variant: the same value in every process and build
// (sharding, Redis), unlike std::hash.
std::uint64_t stableHash(const CacheKey& key);

// For std::unordered_map<CacheKey, ..., CacheKeyHash>.
struct CacheKeyHash {
  std::size_t operator()(const CacheKey& key) const { return static_cast<std::size_t>(stableHash(key)); }
};

// Percent-encoding normalisation of a raw path or query (see above). Malformed escapes are kept.
std::string normalizePercentEncoding(std::string_view raw);
// The raw query with empty members dropped, each member percent-normalised, sorted by name then
// value ("b=2&a=1&a=0" -> "a=0&a=1&b=2"); "a" (no '=') and "a=" stay distinct.
std::string normalizeQuery(std::string_view raw_query);

// The prefix every key of site `site` starts with.
std::string sitePrefix(std::string_view site);

// The primary key of a site request. `behavior` is the one the route table matched for it.
std::string sitePrimaryKey(const conf::Site& site, const conf::Behavior& behavior, const core::RequestHead& request);

// The primary key of an API stage request: `path_params` are the route match's parameters
// (RouteMatch::path_params); only those named in route.cache_key.path count, likewise the query
// parameters (names compared percent-decoded, all values kept) and request headers it names.
// The prefix every key of an API stage starts with (stage flush: Store::purgePrefix).
std::string apiStagePrefix(std::string_view api, std::string_view stage);

std::string apiPrimaryKey(const conf::Api& api, const conf::Stage& stage, const conf::ApiRoute& route,
                          const std::vector<std::pair<std::string, std::string>>& path_params,
                          const core::RequestHead& request);

// The variant key for a stored response whose Vary names are `vary_names` (ObjectMeta::vary:
// lower-case, sorted, unique) and a request carrying `request_headers`. "" when vary_names is
// empty.
std::string variantKey(const std::vector<std::string>& vary_names, const core::HeaderMap& request_headers);

// The normalised value of header `name` in `headers` for keying: nullopt when absent.
std::optional<std::string> keyedHeaderValue(const core::HeaderMap& headers, std::string_view name);

}  // namespace portico::cache
