#include "cache/cache_status.h"

namespace portico::cache {

std::string_view toString(CacheStatus s) {
  switch (s) {
    case CacheStatus::Hit: return "hit";
    case CacheStatus::RefreshHit: return "refresh_hit";
    case CacheStatus::Miss: return "miss";
    case CacheStatus::Bypass: return "bypass";
    case CacheStatus::Error: return "error";
  }
  return "unknown";
}

std::string_view xCacheValue(CacheStatus s) {
  switch (s) {
    case CacheStatus::Hit: return "Hit from portico";
    case CacheStatus::RefreshHit: return "RefreshHit from portico";
    case CacheStatus::Miss: return "Miss from portico";
    case CacheStatus::Bypass: return "Miss from portico";
    case CacheStatus::Error: return "Error from portico";
  }
  return "Miss from portico";
}

}  // namespace portico::cache
