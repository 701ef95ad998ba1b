#pragma once
// CacheRuntime: what the request pipeline needs of the HTTP cache. The store and the coalescer
// are shared by every worker (owned by the Server, outliving the workers); the poster and the
// background jobs belong to one worker.
//
// Keys (cache/cache_key.h): an object without Vary is stored under its primary key. A response
// with Vary stores a *marker* under the primary key (status 0, empty body, meta.vary = the
// names) and the object under primary + kVariantSeparator + variantKey(...). Lookups follow the
// marker. Purging a primary key therefore drops every variant from reach at once; purgePaths()
// also removes the variant objects themselves.
#include <cstddef>
#include <memory>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "cache/cached_object.h"
#include "cache/coalescer.h"
#include "cache/store.h"
#include "proxy/core/clock.h"
#include "proxy/core/loop_poster.h"

namespace portico::proxy {

inline constexpr char kVariantSeparator = '\x1e';

// Work that outlives the request that started it (a stale-while-revalidate refresh). Owned by
// the worker; finishes by calling BackgroundJobs::done(this) (which destroys it), or is
// destroyed when the worker stops.
class BackgroundJob {
 public:
  virtual ~BackgroundJob() = default;
};

class BackgroundJobs {
 public:
  BackgroundJob* adopt(std::unique_ptr<BackgroundJob> job);
  // Destroys `job` (from a deferred call, never inside the job's own stack: see callers).
  void done(BackgroundJob* job);
  std::size_t size() const { return jobs_.size(); }
  void clear() { jobs_.clear(); }

 private:
  std::map<BackgroundJob*, std::unique_ptr<BackgroundJob>> jobs_;
};

class SharedTier;

struct CacheRuntime {
  cache::Store* store = nullptr;
  cache::Coalescer* coalescer = nullptr;
  core::LoopPoster* poster = nullptr;  // this worker's
  BackgroundJobs* jobs = nullptr;      // this worker's
  std::uint64_t max_object = 0;        // bodies above it stream through uncached
  SharedTier* shared = nullptr;       // this worker's handle on L2 (shared_tier.h), or null
};

bool isVaryMarker(const cache::CachedObject& object);
// A marker made at `since`: variants whose request_time is older belong to an earlier marker
// (dropped by an invalidation since) and are not served through this one.
cache::CachedObjectPtr makeVaryMarker(const std::vector<std::string>& vary,
                                      core::WallTime since = {});

// Admin purge (CloudFront invalidation semantics): for site `site`, every object whose path is
// one of `paths` (exact; the query string is part of the object, so "/a.html" does not purge
// "/a.html?x=1" -- use "/a.html*") or starts with the part before a trailing '*'. No paths:
// everything of the site. All variants included. Paths are compared percent-normalised.
// Returns the number of store entries removed (Vary markers included).
std::size_t purgeSite(cache::Store& store, std::string_view site, const std::vector<std::string>& paths);

// The length of `key`'s first `fields` '|'-separated fields, the last separator included
// (escaped '|' are not separators), or npos when the key has fewer.
std::size_t fieldsPrefixLength(std::string_view key, int fields);

// The site of a site key as stored (a view into `key`, escapes kept: site names have none in
// practice), "" for other keys. MemoryStoreOptions::group_of for per-site cache metrics.
std::string_view siteOfKey(std::string_view key);

// The site and path[?query] of a site key, or false if `key` is not one (API keys, garbage).
bool splitSiteKey(std::string_view key, std::string& site, std::string& path_and_query);

}  // namespace portico::proxy
