#pragma once
// What the cache did for a request (style.md G9), in CloudFront's X-Cache vocabulary.
// Issue 2 has no cache yet: every proxied answer is a Miss, mock answers and errors made at the
// edge are reported as such. The HTTP cache (issue 4) fills in Hit / RefreshHit.
#include <string_view>

namespace portico::cache {

enum class CacheStatus { Hit, RefreshHit, Miss, Bypass, Error };

std::string_view toString(CacheStatus s);
// "Hit from portico" etc., the X-Cache header value.
std::string_view xCacheValue(CacheStatus s);

}  // namespace portico::cache
