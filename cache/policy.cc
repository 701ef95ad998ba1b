#include "cache/policy.h"

#include <algorithm>
#include <chrono>

namespace portico::cache {
namespace {

// RFC 9110 §15.1: status codes that are heuristically cacheable (may be stored without explicit
// freshness). 206 is on the list but never stored here.
bool heuristicallyCacheable(int status) {
  switch (status) {
    case 200: case 203: case 204: case 206: case 300: case 301: case 308:
    case 404: case 405: case 410: case 414: case 501:
      return true;
    default:
      return false;
  }
}

// Final status codes whose caching semantics we implement (for must-understand, §5.2.2.3):
// those defined by RFC 9110 and used by our origins.
bool understoodStatus(int status) {
  switch (status) {
    case 200: case 201: case 202: case 203: case 204: case 205:
    case 300: case 301: case 302: case 303: case 305: case 307: case 308:
    case 400: case 401: case 402: case 403: case 404: case 405: case 406: case 407: case 408:
    case 409: case 410: case 411: case 412: case 413: case 414: case 415: case 416: case 417:
    case 421: case 422: case 426:
    case 500: case 501: case 502: case 503: case 504: case 505:
      return true;
    default:
      return false;
  }
}

// s-maxage implies proxy-revalidate for a shared cache (§5.2.2.10).
bool forbidsStale(const ResponseCacheControl& cc) {
  return cc.must_revalidate || cc.proxy_revalidate || cc.s_maxage.has_value();
}

bool contains(const std::vector<std::string>& v, std::string_view s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

std::int64_t secondsBetween(core::WallTime from, core::WallTime to) {
  return std::chrono::duration_cast<std::chrono::seconds>(to - from).count();
}

bool hasValidator(const core::ResponseHead& r) { return r.headers.has("ETag") || r.headers.has("Last-Modified"); }

// RFC 3986 §5.2.4 remove_dot_segments. Linear: the input is consumed by index, never copied.
std::string removeDotSegments(std::string_view in) {
  std::string out;
  auto popSegment = [&out] {
    const std::size_t slash = out.rfind('/');
    out.erase(slash == std::string::npos ? 0 : slash);
  };
  std::size_t i = 0;
  while (i < in.size()) {
    const std::string_view r = in.substr(i);
    if (r.starts_with("../")) {
      i += 3;
    } else if (r.starts_with("./")) {
      i += 2;
    } else if (r.starts_with("/./")) {
      i += 2;  // leaves the input at "/..."
    } else if (r == "/.") {
      out += '/';
      break;
    } else if (r.starts_with("/../")) {
      i += 3;
      popSegment();
    } else if (r == "/..") {
      popSegment();
      out += '/';
      break;
    } else if (r == "." || r == "..") {
      break;
    } else {
      std::size_t next = in.find('/', i + (r.front() == '/' ? 1 : 0));
      if (next == std::string_view::npos) next = in.size();
      out.append(in.substr(i, next - i));
      i = next;
    }
  }
  if (out.empty() || out.front() != '/') out.insert(out.begin(), '/');
  return out;
}

// A Location / Content-Location value -> a target on the request's host, if it names one.
std::optional<InvalidationTarget> resolveReference(const core::RequestHead& request, std::string_view ref) {
  ref = core::trimOws(ref);
  if (const std::size_t hash = ref.find('#'); hash != std::string_view::npos) ref = ref.substr(0, hash);
  if (ref.empty()) return std::nullopt;

  // scheme ":" (only http/https can name our host)
  std::size_t colon = ref.find(':');
  const std::size_t first_delim = ref.find_first_of("/?");
  if (colon != std::string_view::npos && (first_delim == std::string_view::npos || colon < first_delim)) {
    const std::string_view scheme = ref.substr(0, colon);
    if (!core::iequals(scheme, "http") && !core::iequals(scheme, "https")) return std::nullopt;
    ref.remove_prefix(colon + 1);
    if (ref.substr(0, 2) != "//") return std::nullopt;
  }
  std::string path_and_query;
  if (ref.substr(0, 2) == "//") {  // authority present: must be our host
    ref.remove_prefix(2);
    const std::size_t end = ref.find_first_of("/?");
    std::string_view authority = ref.substr(0, end);
    if (const std::size_t at = authority.rfind('@'); at != std::string_view::npos) authority.remove_prefix(at + 1);
    if (core::normalizeHost(authority) != request.authority || request.authority.empty()) return std::nullopt;
    ref = end == std::string_view::npos ? std::string_view() : ref.substr(end);
    path_and_query = ref.empty() || ref.front() == '?' ? "/" + std::string(ref) : std::string(ref);
  } else if (!ref.empty() && ref.front() == '/') {
    path_and_query = std::string(ref);
  } else {  // relative path: merge with the request path's directory (RFC 3986 §5.2.3)
    const std::size_t slash = request.path.rfind('/');
    const std::string base = slash == std::string::npos ? "/" : request.path.substr(0, slash + 1);
    path_and_query = ref.front() == '?' ? request.path + std::string(ref) : base + std::string(ref);
  }
  InvalidationTarget t;
  t.host = request.authority;
  const std::size_t q = path_and_query.find('?');
  t.path = removeDotSegments(std::string_view(path_and_query).substr(0, q));
  if (q != std::string::npos) t.query = path_and_query.substr(q + 1);
  return t;
}

}  // namespace

std::string_view toString(NoCacheReason reason) {
  switch (reason) {
    case NoCacheReason::None: return "none";
    case NoCacheReason::Method: return "method";
    case NoCacheReason::CachingDisabled: return "caching_disabled";
    case NoCacheReason::RequestNoStore: return "request_no_store";
    case NoCacheReason::Status: return "status";
    case NoCacheReason::PartialContent: return "partial_content";
    case NoCacheReason::ResponseNoStore: return "response_no_store";
    case NoCacheReason::MustUnderstand: return "must_understand";
    case NoCacheReason::Private: return "private";
    case NoCacheReason::Authorization: return "authorization";
    case NoCacheReason::SetCookie: return "set_cookie";
    case NoCacheReason::VaryStar: return "vary_star";
    case NoCacheReason::NoExplicitFreshness: return "no_explicit_freshness";
    case NoCacheReason::ZeroTtlNoValidator: return "zero_ttl_no_validator";
  }
  return "unknown";
}

std::string_view toString(EntryUsability usability) {
  switch (usability) {
    case EntryUsability::Fresh: return "fresh";
    case EntryUsability::StaleWhileRevalidate: return "stale_while_revalidate";
    case EntryUsability::RevalidateOrStaleOnError: return "revalidate_or_stale_on_error";
    case EntryUsability::Revalidate: return "revalidate";
  }
  return "unknown";
}

RequestDecision requestCacheability(const core::RequestHead& request, const conf::Behavior& behavior) {
  if (behavior.store_methods.empty() ? request.method != "GET" && request.method != "HEAD"
                                     : !contains(behavior.store_methods, request.method)) {
    return {RequestCacheability::Bypass, NoCacheReason::Method};
  }
  if (behavior.max_ttl_s <= 0) return {RequestCacheability::Bypass, NoCacheReason::CachingDisabled};
  if (parseRequestCacheControl(request.headers).no_store) {
    return {RequestCacheability::NoStore, NoCacheReason::RequestNoStore};
  }
  return {RequestCacheability::Cacheable, NoCacheReason::None};
}

Freshness freshnessLifetime(const core::ResponseHead& response, const ResponseCacheControl& cc,
                            const conf::Behavior& behavior, core::WallTime response_time) {
  Freshness f;
  f.explicit_freshness = true;
  if (cc.s_maxage) {
    f.origin_lifetime_s = *cc.s_maxage;
  } else if (cc.max_age) {
    f.origin_lifetime_s = *cc.max_age;
  } else if (const ExpiresField expires = parseExpires(response.headers); expires.present) {
    if (expires.time) {
      // Expires - Date; a missing or invalid Date is taken as the time the response arrived.
      const std::int64_t date = parseDate(response.headers).value_or(core::toUnixSeconds(response_time));
      f.origin_lifetime_s = std::clamp<std::int64_t>(*expires.time - date, 0, kDeltaSecondsMax);
    }  // else: an invalid Expires means "already expired" (§5.3): 0
  } else {
    f.explicit_freshness = false;
  }
  std::int64_t lifetime = f.explicit_freshness ? f.origin_lifetime_s : behavior.default_ttl_s;
  // CloudFront's error caching: an error answer without freshness of its own is kept for the
  // error-caching TTL, not the default TTL (a key uploaded after a 404 shows up in seconds).
  if (!f.explicit_freshness && response.status >= 400) {
    lifetime = std::min(lifetime, kErrorCachingTtlS);
  }
  if (lifetime < behavior.min_ttl_s && !forbidsStale(cc)) lifetime = behavior.min_ttl_s;
  if (lifetime > behavior.max_ttl_s) lifetime = behavior.max_ttl_s;
  f.lifetime_s = std::max<std::int64_t>(lifetime, 0);
  return f;
}

ResponseDecision responseCacheability(const core::RequestHead& request, const core::ResponseHead& response,
                                      const conf::Behavior& behavior, core::WallTime response_time,
                                      const StaleDefaults& defaults) {
  ResponseDecision d;
  auto no = [&d](NoCacheReason r) {
    d.reason = r;
    d.strip_fields.clear();
    return d;
  };
  if (behavior.store_methods.empty() ? request.method != "GET"
                                     : !contains(behavior.store_methods, request.method)) {
    return no(NoCacheReason::Method);
  }
  if (behavior.max_ttl_s <= 0) return no(NoCacheReason::CachingDisabled);
  if (parseRequestCacheControl(request.headers).no_store) return no(NoCacheReason::RequestNoStore);
  const int status = response.status;
  if (status == 206) return no(NoCacheReason::PartialContent);
  if (status < 200 || status == 304 || status > 999) return no(NoCacheReason::Status);

  const ResponseCacheControl cc = parseResponseCacheControl(response.headers);
  // §5.2.2.3: must-understand overrides no-store for status codes we implement, and forbids
  // storing any other.
  if (cc.must_understand) {
    if (!understoodStatus(status)) return no(NoCacheReason::MustUnderstand);
  } else if (cc.no_store) {
    return no(NoCacheReason::ResponseNoStore);
  }
  if (cc.is_private) return no(NoCacheReason::Private);
  // §3.5: a shared cache stores an answer to an authorized request only with explicit consent.
  if (request.headers.has("Authorization") && !cc.is_public && !cc.s_maxage && !cc.must_revalidate &&
      !behavior.api_stage) {
    return no(NoCacheReason::Authorization);
  }
  const bool error_answer = status >= 500 || status == 429;
  if (error_answer && behavior.error_answers == conf::Behavior::ErrorAnswers::Never) {
    return no(NoCacheReason::Status);
  }
  if (response.headers.has("Set-Cookie") && !contains(cc.private_fields, "set-cookie") &&
      !behavior.store_set_cookie) {
    return no(NoCacheReason::SetCookie);
  }
  if (parseVary(response.headers).star) return no(NoCacheReason::VaryStar);

  const Freshness f = freshnessLifetime(response, cc, behavior, response_time);
  if (!f.explicit_freshness) {
    const bool always = behavior.api_stage ||
                        (error_answer && behavior.error_answers == conf::Behavior::ErrorAnswers::Always);
    if (!heuristicallyCacheable(status) && !cc.is_public && !always) return no(NoCacheReason::Status);
    if (behavior.default_ttl_s <= 0) return no(NoCacheReason::NoExplicitFreshness);
  }
  // An entry that is never fresh, cannot be revalidated cheaply and may not be served stale
  // would only be replaced by the next full fetch: not worth storing.
  if ((f.lifetime_s == 0 || cc.no_cache) && !hasValidator(response)) {
    const bool stale_use = !forbidsStale(cc) && !cc.no_cache &&
                           (cc.stale_while_revalidate.value_or(defaults.stale_while_revalidate_s) > 0 ||
                            cc.stale_if_error.value_or(defaults.stale_if_error_s) > 0);
    if (!stale_use) return no(NoCacheReason::ZeroTtlNoValidator);
  }
  d.storable = true;
  d.reason = NoCacheReason::None;
  d.strip_fields = cc.private_fields;
  return d;
}

ObjectMeta makeMeta(core::WallTime request_time, core::WallTime response_time, const core::ResponseHead& response,
                    const conf::Behavior& behavior, const StaleDefaults& defaults) {
  ObjectMeta m;
  m.request_time = request_time;
  m.response_time = response_time;

  // §4.2.3 corrected initial age.
  const std::int64_t response_s = core::toUnixSeconds(response_time);
  const std::int64_t date_value = parseDate(response.headers).value_or(response_s);
  const std::int64_t apparent_age = std::max<std::int64_t>(0, response_s - date_value);
  const std::int64_t response_delay = std::max<std::int64_t>(0, secondsBetween(request_time, response_time));
  const std::int64_t corrected_age_value = parseAge(response.headers) + response_delay;
  m.corrected_initial_age_s = std::min(std::max(apparent_age, corrected_age_value), kDeltaSecondsMax);

  const ResponseCacheControl cc = parseResponseCacheControl(response.headers);
  m.freshness_lifetime_s = freshnessLifetime(response, cc, behavior, response_time).lifetime_s;
  m.must_revalidate = forbidsStale(cc);
  m.no_cache = cc.no_cache;
  if (!m.must_revalidate && !m.no_cache) {
    m.stale_while_revalidate_s = cc.stale_while_revalidate.value_or(defaults.stale_while_revalidate_s);
    m.stale_if_error_s = cc.stale_if_error.value_or(defaults.stale_if_error_s);
  }
  if (std::optional<std::string_view> etag = response.headers.get("ETag")) m.etag = std::string(core::trimOws(*etag));
  if (std::optional<std::string_view> lm = response.headers.get("Last-Modified")) {
    m.last_modified = std::string(core::trimOws(*lm));
  }
  m.vary = parseVary(response.headers).names;
  return m;
}

core::ResponseHead headForStorage(const core::ResponseHead& response, const ResponseDecision& decision) {
  core::ResponseHead head = response;
  head.headers.remove("Age");
  for (const std::string& name : decision.strip_fields) head.headers.remove(name);
  return head;
}

std::int64_t currentAge(const ObjectMeta& meta, core::WallTime now) {
  const std::int64_t resident = std::max<std::int64_t>(0, secondsBetween(meta.response_time, now));
  return meta.corrected_initial_age_s + resident;
}

EntryState entryUsability(core::WallTime now, const ObjectMeta& meta) {
  EntryState s;
  s.age_s = currentAge(meta, now);
  if (meta.no_cache) {
    s.usability = EntryUsability::Revalidate;
    return s;
  }
  if (s.age_s < meta.freshness_lifetime_s) {
    s.usability = EntryUsability::Fresh;
    return s;
  }
  const std::int64_t staleness = s.age_s - meta.freshness_lifetime_s;
  if (meta.must_revalidate) {
    s.usability = EntryUsability::Revalidate;
  } else if (staleness < meta.stale_while_revalidate_s) {
    s.usability = EntryUsability::StaleWhileRevalidate;
  } else if (staleness < meta.stale_if_error_s) {
    s.usability = EntryUsability::RevalidateOrStaleOnError;
  } else {
    s.usability = EntryUsability::Revalidate;
  }
  return s;
}

bool staleIfErrorAllows(core::WallTime now, const ObjectMeta& meta) {
  if (meta.must_revalidate || meta.no_cache) return false;
  return currentAge(meta, now) - meta.freshness_lifetime_s < meta.stale_if_error_s;
}

std::int64_t retentionSeconds(const ObjectMeta& meta, core::WallTime now, std::int64_t validator_grace_s) {
  const std::int64_t remaining = meta.freshness_lifetime_s - currentAge(meta, now);
  std::int64_t extra = 0;
  if (!meta.must_revalidate && !meta.no_cache) {
    extra = std::max(meta.stale_while_revalidate_s, meta.stale_if_error_s);
  }
  if (!meta.etag.empty() || !meta.last_modified.empty()) extra = std::max(extra, validator_grace_s);
  return remaining + extra;
}

bool isSafeMethod(std::string_view method) {
  return method == "GET" || method == "HEAD" || method == "OPTIONS" || method == "TRACE";
}

std::vector<InvalidationTarget> invalidationTargets(const core::RequestHead& request,
                                                    const core::ResponseHead& response) {
  std::vector<InvalidationTarget> out;
  if (isSafeMethod(request.method) || response.status < 200 || response.status >= 400) return out;
  // The target as received (cache keys use the received path too); references are resolved.
  out.push_back(InvalidationTarget{request.authority, request.path, request.query});
  for (std::string_view field : {"Location", "Content-Location"}) {
    const std::optional<std::string_view> v = response.headers.get(field);
    if (!v) continue;
    std::optional<InvalidationTarget> t = resolveReference(request, *v);
    if (t && std::find(out.begin(), out.end(), *t) == out.end()) out.push_back(std::move(*t));
  }
  return out;
}

conf::Behavior apiStageBehavior(const conf::Stage& stage, const conf::ApiRoute& route) {
  conf::Behavior b;
  b.path = route.path;
  b.origin = route.origin;
  const std::int64_t ttl = stage.cache.enabled ? route.cache_ttl_s.value_or(stage.cache.ttl_s) : 0;
  b.default_ttl_s = b.min_ttl_s = b.max_ttl_s = std::max<std::int64_t>(ttl, 0);
  b.query_in_key = false;
  b.compress = false;
  b.api_stage = true;
  b.store_methods = route.cache_methods;
  b.store_set_cookie = stage.cache.cache_set_cookie;
  b.error_answers = stage.cache.cache_errors ? conf::Behavior::ErrorAnswers::Always
                                             : conf::Behavior::ErrorAnswers::Never;
  return b;
}

}  // namespace portico::cache
