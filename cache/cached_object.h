#pragma once
// CachedObject: one stored response (one variant of one URL), immutable once built.
//
// Lifecycle (G11): built by the request pipeline from an origin answer (head + whole body, only
// for bodies up to cache.max_object) -> wrapped in CachedObjectPtr -> inserted into a Store ->
// shared by every reader (any worker, any thread) until the last reference goes. Nobody mutates
// an object after it is shared: a revalidation (304) builds a new object that shares the body.
// The body is a shared immutable string, so a refreshed entry and readers of the old one use the
// same bytes and nothing is copied per hit.
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "proxy/core/clock.h"
#include "proxy/core/http_message.h"

namespace portico::cache {

using BodyPtr = std::shared_ptr<const std::string>;

// Everything the policy needs about a stored response without re-parsing its headers.
struct ObjectMeta {
  core::WallTime request_time{};   // when the request that produced it was sent (RFC 9111 §4.2.3)
  core::WallTime response_time{};  // when its head arrived
  std::int64_t corrected_initial_age_s = 0;  // §4.2.3 corrected_initial_age at response_time
  std::int64_t freshness_lifetime_s = 0;     // after TTL clamping (min/default/max)
  std::int64_t stale_while_revalidate_s = 0; // 0: not allowed
  std::int64_t stale_if_error_s = 0;         // 0: not allowed
  bool must_revalidate = false;  // must-revalidate / proxy-revalidate / s-maxage: never serve stale
  bool no_cache = false;         // stored, but every use needs a successful revalidation
  std::string etag;              // "" if none (strong or weak, as sent)
  std::string last_modified;     // "" if none (as sent)
  std::vector<std::string> vary;  // lower-cased header names from Vary ("*" never stored)
};

struct CachedObject {
  core::ResponseHead head;  // hop-by-hop headers already removed; no Age, no X-Cache
  BodyPtr body;             // never null
  ObjectMeta meta;

  std::string_view bodyView() const { return *body; }
  std::uint64_t bodySize() const { return body->size(); }
  // Keeps the body's bytes alive (for writes that complete later).
  std::shared_ptr<const void> bodyOwner() const { return body; }

  // Bytes charged against the store's budget: body + headers + a fixed per-object overhead,
  // sized after the measured RSS per object (deploy/bench: cache_memory; the object, its
  // shared_ptr blocks, meta strings, the store's map node, key and eviction node), so that
  // cache.memory bounds real memory rather than payload alone.
  std::uint64_t chargedBytes() const {
    std::uint64_t n = bodySize() + 640;
    for (const auto& [name, value] : head.headers) n += name.size() + value.size() + 64;
    return n;
  }
};

using CachedObjectPtr = std::shared_ptr<const CachedObject>;

}  // namespace portico::cache
