#include "proxy/pipeline/cache_fill.h"

#include <chrono>

#include "cache/cache_key.h"
#include "cache/validation.h"
#include "proxy/pipeline/shared_tier.h"

namespace portico::proxy {
std::string variantStoreKey(const std::string& primary_key, const std::vector<std::string>& vary,
                            const core::HeaderMap& request_headers) {
  std::string key = primary_key;
  key += kVariantSeparator;
  key += cache::variantKey(vary, request_headers);
  return key;
}

bool CacheFill::begin(const core::RequestHead& request, const core::ResponseHead& origin_head,
                      const conf::Behavior& behavior, const cache::StaleDefaults& defaults,
                      core::WallTime request_time, core::WallTime response_time,
                      const std::string& primary_key, std::uint64_t max_object,
                      std::int64_t lifetime_override_s) {
  collecting_ = false;
  too_large_ = false;
  body_.clear();
  cache::ResponseDecision decision =
      cache::responseCacheability(request, origin_head, behavior, response_time, defaults);
  if (lifetime_override_s == 0) {
    reason_ = cache::NoCacheReason::NoExplicitFreshness;
    return false;
  }
  // An override (error pages) replaces the lifetime only: what the origin forbids to store
  // (no-store, private, Set-Cookie, ...) stays unstored.
  const bool lifetime_only = decision.reason == cache::NoCacheReason::NoExplicitFreshness ||
                             decision.reason == cache::NoCacheReason::ZeroTtlNoValidator ||
                             decision.reason == cache::NoCacheReason::Status;
  if (!decision.storable && (lifetime_override_s < 0 || !lifetime_only)) {
    reason_ = decision.reason;
    return false;
  }
  if (auto len = core::contentLength(origin_head.headers); len && *len > max_object) {
    reason_ = cache::NoCacheReason::None;
    too_large_ = true;
    return false;
  }
  meta_ = cache::makeMeta(request_time, response_time, origin_head, behavior, defaults);
  if (lifetime_override_s > 0) meta_.freshness_lifetime_s = lifetime_override_s;
  head_ = cache::headForStorage(origin_head, decision);
  primary_key_ = primary_key;
  store_key_ = meta_.vary.empty() ? primary_key
                                  : variantStoreKey(primary_key, meta_.vary, request.headers);
  limit_ = max_object;
  if (auto len = core::contentLength(origin_head.headers)) body_.reserve(*len);
  collecting_ = true;
  reason_ = cache::NoCacheReason::None;
  return true;
}

bool CacheFill::append(std::string_view chunk) {
  if (!collecting_) return false;
  if (body_.size() + chunk.size() > limit_) {
    abandon();
    return false;
  }
  body_.append(chunk);
  return true;
}

cache::CachedObjectPtr CacheFill::commit(cache::Store& store) {
  if (!collecting_) return nullptr;
  collecting_ = false;
  auto object = std::make_shared<cache::CachedObject>();
  object->head = std::move(head_);
  // Stored for long: no spare capacity (header vectors are reserved for a dozen fields).
  object->head.headers.entries().shrink_to_fit();
  object->body = std::make_shared<const std::string>(std::move(body_));
  object->meta = std::move(meta_);
  if (!object->meta.vary.empty()) {
    // Keep an existing marker for the same names: replacing it would hide the other variants
    // (see makeVaryMarker). A new marker starts at this response's request time.
    cache::CachedObjectPtr existing = store.lookup(primary_key_);
    if (!existing || !isVaryMarker(*existing) || existing->meta.vary != object->meta.vary) {
      store.insert(primary_key_, makeVaryMarker(object->meta.vary, object->meta.request_time));
    }
  }
  store.insert(store_key_, object);
  return object;
}

cache::CachedObjectPtr refreshNotModified(const cache::CachedObjectPtr& stale,
                                          const core::ResponseHead& not_modified,
                                          const core::RequestHead& request,
                                          const conf::Behavior& behavior,
                                          const cache::StaleDefaults& defaults,
                                          core::WallTime request_time,
                                          core::WallTime response_time, cache::Store& store,
                                          const std::string& store_key) {
  auto merged = cache::mergeNotModified(stale->head, stale->meta, not_modified);
  if (!merged) return nullptr;
  // The merged head is judged like a fresh 200 from the origin; Age comes from the 304.
  core::ResponseHead judged = *merged;
  if (auto age = not_modified.headers.get("age")) judged.headers.set("Age", *age);
  cache::ResponseDecision decision =
      cache::responseCacheability(request, judged, behavior, response_time, defaults);
  if (!decision.storable) {
    store.remove(store_key);
    return nullptr;
  }
  auto object = std::make_shared<cache::CachedObject>();
  object->meta = cache::makeMeta(request_time, response_time, judged, behavior, defaults);
  object->head = cache::headForStorage(judged, decision);
  object->body = stale->body;
  store.insert(store_key, object);
  return object;
}

// ---- BackgroundRefresh ------------------------------------------------------------------------

BackgroundRefresh::BackgroundRefresh(Params params) : p_(std::move(params)) {}

BackgroundRefresh::~BackgroundRefresh() {
  fetch_.reset();  // no sink call after this
  // An unfinished token is Dangling: a waiting follower takes over.
}

void BackgroundRefresh::start() {
  request_time_ = core::SystemClock::instance().wallNow();
  fetch_ = p_.origin->fetch(std::move(p_.request), *this);
}

void BackgroundRefresh::onOriginHead(core::ResponseHead head) {
  if (finished_) return;
  const core::WallTime now = core::SystemClock::instance().wallNow();
  cache::Store& store = *p_.store;
  if (head.status == 304) {
    auto fresh = refreshNotModified(p_.stale, head, p_.client_head, p_.behavior, p_.defaults,
                                    request_time_, now, store, p_.store_key);
    if (fresh) {
      p_.token.complete(fresh);
      shareStoredObject(p_.runtime->shared, store, p_.primary_key, p_.store_key, fresh);
    } else {
      p_.token.fail();
    }
    finishLater();
    return;
  }
  if (head.status >= 500) {
    p_.token.fail();  // keep the stale entry: stale-if-error may still serve it
    finishLater();
    return;
  }
  if (!fill_.begin(p_.client_head, head, p_.behavior, p_.defaults, request_time_, now,
                   p_.primary_key, p_.runtime->max_object)) {
    store.remove(p_.store_key);  // the origin no longer lets this be cached
    p_.token.giveUp(kHitForMiss);
    finishLater();
  }
}

bool BackgroundRefresh::onOriginBody(std::string_view chunk) {
  if (!finished_ && !fill_.append(chunk)) {
    p_.token.giveUp(std::chrono::milliseconds(0));
    finishLater();
  }
  return true;
}

void BackgroundRefresh::onOriginDone(origin::FetchError error) {
  if (finished_) return;
  if (error == origin::FetchError::None && fill_.collecting()) {
    cache::CachedObjectPtr object = fill_.commit(*p_.store);
    p_.token.complete(object);
    shareStoredObject(p_.runtime->shared, *p_.store, p_.primary_key, fill_.storeKey(), object);
  } else {
    p_.token.fail();
  }
  finishLater();
}

void BackgroundRefresh::finishLater() {
  if (finished_) return;
  finished_ = true;
  // Destroyed from a fresh stack: we are inside the fetch's callback now.
  BackgroundJobs* jobs = p_.runtime->jobs;
  BackgroundJob* self = this;
  p_.defer->defer([jobs, self] { jobs->done(self); });
}

}  // namespace portico::proxy
