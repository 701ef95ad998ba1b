// The cache policy (cache/policy.h): request/response cacheability with reasons, freshness and
// the TTL clamp, corrected age, entry usability over time, §4.4 invalidation, API stage TTLs.
// Time is passed in: T0 is "now" at the response, rows move it by hand.
#include "cache/policy.h"

#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <utility>
#include <vector>

#include "proxy/core/http_date.h"

namespace portico::cache {
namespace {

using Fields = std::vector<std::pair<std::string, std::string>>;

constexpr std::int64_t kT0 = 1700000000;
const core::WallTime T0{std::chrono::seconds(kT0)};

core::WallTime at(std::int64_t offset_s) { return T0 + std::chrono::seconds(offset_s); }
std::string date(std::int64_t offset_s) { return core::formatHttpDate(kT0 + offset_s); }

core::RequestHead request(std::string method, const Fields& fields = {}) {
  core::RequestHead r;
  r.method = std::move(method);
  r.path = "/a/b";
  r.authority = "localhost";
  for (const auto& [n, v] : fields) r.headers.add(n, v);
  return r;
}

core::ResponseHead response(int status, const Fields& fields) {
  core::ResponseHead r;
  r.status = status;
  for (const auto& [n, v] : fields) r.headers.add(n, v);
  return r;
}

conf::Behavior behavior(std::int64_t def = 86400, std::int64_t min = 0, std::int64_t max = 31536000) {
  conf::Behavior b;
  b.default_ttl_s = def;
  b.min_ttl_s = min;
  b.max_ttl_s = max;
  return b;
}

// ---- requestCacheability ----------------------------------------------------------------------

TEST(RequestCacheability, Table) {
  using K = RequestCacheability;
  const struct {
    const char* method;
    Fields fields;
    std::int64_t max_ttl;
    K kind;
    NoCacheReason reason;
  } cases[] = {
      {"GET", {}, 100, K::Cacheable, NoCacheReason::None},
      {"HEAD", {}, 100, K::Cacheable, NoCacheReason::None},
      {"POST", {}, 100, K::Bypass, NoCacheReason::Method},
      {"PURGE", {}, 100, K::Bypass, NoCacheReason::Method},
      {"get", {}, 100, K::Bypass, NoCacheReason::Method},  // methods are case-sensitive
      {"GET", {}, 0, K::Bypass, NoCacheReason::CachingDisabled},
      {"GET", {{"Cache-Control", "no-store"}}, 100, K::NoStore, NoCacheReason::RequestNoStore},
      // Client reload directives are ignored by choice (see policy.h).
      {"GET", {{"Cache-Control", "no-cache"}}, 100, K::Cacheable, NoCacheReason::None},
      {"GET", {{"Cache-Control", "max-age=0"}}, 100, K::Cacheable, NoCacheReason::None},
      {"GET", {{"Pragma", "no-cache"}}, 100, K::Cacheable, NoCacheReason::None},
      {"GET", {{"Authorization", "Bearer x"}}, 100, K::Cacheable, NoCacheReason::None},
      {"GET", {{"Range", "bytes=0-1"}}, 100, K::Cacheable, NoCacheReason::None},
  };
  for (const auto& c : cases) {
    const RequestDecision d = requestCacheability(request(c.method, c.fields), behavior(10, 0, c.max_ttl));
    EXPECT_EQ(d.kind, c.kind) << c.method << " " << toString(c.reason);
    EXPECT_EQ(d.reason, c.reason) << c.method << " " << toString(d.reason);
  }
}

// ---- responseCacheability ---------------------------------------------------------------------

struct StoreCase {
  const char* name;
  const char* method;
  Fields request_fields;
  int status;
  Fields response_fields;
  conf::Behavior behavior;
  NoCacheReason reason;  // None: storable
  std::vector<std::string> strip = {};
};

class ResponseCacheabilityTest : public ::testing::TestWithParam<StoreCase> {};

TEST_P(ResponseCacheabilityTest, Decides) {
  const StoreCase& c = GetParam();
  const ResponseDecision d =
      responseCacheability(request(c.method, c.request_fields), response(c.status, c.response_fields), c.behavior, T0);
  EXPECT_EQ(d.reason, c.reason) << toString(d.reason);
  EXPECT_EQ(d.storable, c.reason == NoCacheReason::None);
  EXPECT_EQ(d.strip_fields, c.strip);
}

const Fields kFresh = {{"Date", date(0)}, {"Cache-Control", "max-age=60"}};
const Fields kAuth = {{"Authorization", "Basic eDp5"}};

INSTANTIATE_TEST_SUITE_P(
    Table, ResponseCacheabilityTest,
    ::testing::Values(
        StoreCase{"max_age", "GET", {}, 200, kFresh, behavior(), NoCacheReason::None},
        StoreCase{"nothing_default_ttl", "GET", {}, 200, {{"Date", date(0)}}, behavior(), NoCacheReason::None},
        StoreCase{"nothing_default_zero", "GET", {}, 200, {}, behavior(0), NoCacheReason::NoExplicitFreshness},
        StoreCase{"max_age_default_zero", "GET", {}, 200, kFresh, behavior(0), NoCacheReason::None},
        StoreCase{"expires_default_zero", "GET", {}, 200, {{"Date", date(0)}, {"Expires", date(60)}}, behavior(0),
                  NoCacheReason::None},
        StoreCase{"expires_no_date_uses_response_time", "GET", {}, 200, {{"Expires", date(60)}}, behavior(0),
                  NoCacheReason::None},
        StoreCase{"expires_past_no_validator", "GET", {}, 200, {{"Date", date(0)}, {"Expires", date(-60)}},
                  behavior(), NoCacheReason::ZeroTtlNoValidator},
        StoreCase{"expires_invalid_no_validator", "GET", {}, 200, {{"Expires", "0"}}, behavior(),
                  NoCacheReason::ZeroTtlNoValidator},
        StoreCase{"expires_invalid_with_etag", "GET", {}, 200, {{"Expires", "0"}, {"ETag", "\"v1\""}}, behavior(0),
                  NoCacheReason::None},
        StoreCase{"heuristic_404", "GET", {}, 404, {}, behavior(), NoCacheReason::None},
        StoreCase{"heuristic_301", "GET", {}, 301, {}, behavior(), NoCacheReason::None},
        StoreCase{"heuristic_410", "GET", {}, 410, {}, behavior(), NoCacheReason::None},
        StoreCase{"302_no_freshness", "GET", {}, 302, {}, behavior(), NoCacheReason::Status},
        StoreCase{"500_no_freshness", "GET", {}, 500, {}, behavior(), NoCacheReason::Status},
        StoreCase{"403_no_freshness", "GET", {}, 403, {}, behavior(), NoCacheReason::Status},
        StoreCase{"302_max_age", "GET", {}, 302, kFresh, behavior(), NoCacheReason::None},
        StoreCase{"503_max_age", "GET", {}, 503, kFresh, behavior(), NoCacheReason::None},
        StoreCase{"302_public", "GET", {}, 302, {{"Cache-Control", "public"}}, behavior(), NoCacheReason::None},
        StoreCase{"206", "GET", {}, 206, kFresh, behavior(), NoCacheReason::PartialContent},
        StoreCase{"304", "GET", {}, 304, kFresh, behavior(), NoCacheReason::Status},
        StoreCase{"100", "GET", {}, 100, kFresh, behavior(), NoCacheReason::Status},
        StoreCase{"no_store", "GET", {}, 200, {{"Cache-Control", "max-age=60, no-store"}}, behavior(),
                  NoCacheReason::ResponseNoStore},
        StoreCase{"must_understand_known_status", "GET", {}, 200,
                  {{"Cache-Control", "no-store, must-understand, max-age=60"}}, behavior(), NoCacheReason::None},
        StoreCase{"must_understand_unknown_status", "GET", {}, 299,
                  {{"Cache-Control", "no-store, must-understand, max-age=60"}}, behavior(),
                  NoCacheReason::MustUnderstand},
        StoreCase{"private", "GET", {}, 200, {{"Cache-Control", "private, max-age=60"}}, behavior(),
                  NoCacheReason::Private},
        StoreCase{"private_fields_stripped", "GET", {}, 200,
                  {{"Cache-Control", "private=\"X-User\", max-age=60"}, {"X-User", "u1"}}, behavior(),
                  NoCacheReason::None, {"x-user"}},
        StoreCase{"set_cookie", "GET", {}, 200, {{"Cache-Control", "max-age=60"}, {"Set-Cookie", "a=b"}}, behavior(),
                  NoCacheReason::SetCookie},
        StoreCase{"set_cookie_private_qualified", "GET", {}, 200,
                  {{"Cache-Control", "max-age=60, private=\"Set-Cookie\""}, {"Set-Cookie", "a=b"}}, behavior(),
                  NoCacheReason::None, {"set-cookie"}},
        StoreCase{"set_cookie_no_cache_qualified", "GET", {}, 200,
                  {{"Cache-Control", "max-age=60, no-cache=\"Set-Cookie\""}, {"Set-Cookie", "a=b"}}, behavior(),
                  NoCacheReason::SetCookie},
        StoreCase{"authorization", "GET", kAuth, 200, kFresh, behavior(), NoCacheReason::Authorization},
        StoreCase{"authorization_public", "GET", kAuth, 200, {{"Cache-Control", "public, max-age=60"}}, behavior(),
                  NoCacheReason::None},
        StoreCase{"authorization_s_maxage", "GET", kAuth, 200, {{"Cache-Control", "s-maxage=60"}}, behavior(),
                  NoCacheReason::None},
        StoreCase{"authorization_must_revalidate", "GET", kAuth, 200,
                  {{"Cache-Control", "must-revalidate, max-age=60"}}, behavior(), NoCacheReason::None},
        StoreCase{"authorization_proxy_revalidate_is_not_enough", "GET", kAuth, 200,
                  {{"Cache-Control", "proxy-revalidate, max-age=60"}}, behavior(), NoCacheReason::Authorization},
        StoreCase{"vary_star", "GET", {}, 200, {{"Cache-Control", "max-age=60"}, {"Vary", "Accept, *"}}, behavior(),
                  NoCacheReason::VaryStar},
        StoreCase{"vary_named", "GET", {}, 200, {{"Cache-Control", "max-age=60"}, {"Vary", "Accept-Encoding"}},
                  behavior(), NoCacheReason::None},
        StoreCase{"post", "POST", {}, 200, kFresh, behavior(), NoCacheReason::Method},
        StoreCase{"head", "HEAD", {}, 200, kFresh, behavior(), NoCacheReason::Method},
        StoreCase{"request_no_store", "GET", {{"Cache-Control", "no-store"}}, 200, kFresh, behavior(),
                  NoCacheReason::RequestNoStore},
        StoreCase{"caching_disabled", "GET", {}, 200, kFresh, behavior(0, 0, 0), NoCacheReason::CachingDisabled},
        StoreCase{"max_age_0_no_validator", "GET", {}, 200, {{"Cache-Control", "max-age=0"}}, behavior(),
                  NoCacheReason::ZeroTtlNoValidator},
        StoreCase{"max_age_0_etag", "GET", {}, 200, {{"Cache-Control", "max-age=0"}, {"ETag", "\"1\""}}, behavior(),
                  NoCacheReason::None},
        StoreCase{"max_age_0_last_modified", "GET", {}, 200,
                  {{"Cache-Control", "max-age=0"}, {"Last-Modified", date(-100)}}, behavior(), NoCacheReason::None},
        StoreCase{"max_age_0_stale_if_error", "GET", {}, 200, {{"Cache-Control", "max-age=0, stale-if-error=60"}},
                  behavior(), NoCacheReason::None},
        StoreCase{"max_age_0_sie_but_must_revalidate", "GET", {}, 200,
                  {{"Cache-Control", "max-age=0, stale-if-error=60, must-revalidate"}}, behavior(),
                  NoCacheReason::ZeroTtlNoValidator},
        StoreCase{"no_cache_no_validator", "GET", {}, 200, {{"Cache-Control", "no-cache, max-age=60"}}, behavior(),
                  NoCacheReason::ZeroTtlNoValidator},
        StoreCase{"no_cache_etag", "GET", {}, 200, {{"Cache-Control", "no-cache, max-age=60"}, {"ETag", "\"1\""}},
                  behavior(), NoCacheReason::None},
        StoreCase{"min_ttl_rescues_max_age_0", "GET", {}, 200, {{"Cache-Control", "max-age=0"}}, behavior(100, 10),
                  NoCacheReason::None}),
    [](const ::testing::TestParamInfo<StoreCase>& info) { return std::string(info.param.name); });

TEST(ResponseCacheability, SiteStaleDefaultMakesZeroTtlWorthStoring) {
  const core::ResponseHead r = response(200, {{"Cache-Control", "max-age=0"}});
  EXPECT_EQ(responseCacheability(request("GET"), r, behavior(), T0).reason, NoCacheReason::ZeroTtlNoValidator);
  StaleDefaults defaults;
  defaults.stale_if_error_s = 300;
  EXPECT_TRUE(responseCacheability(request("GET"), r, behavior(), T0, defaults).storable);
}

TEST(ResponseCacheability, ReasonNamesAreDistinct) {
  std::vector<std::string_view> seen;
  for (int i = 0; i <= static_cast<int>(NoCacheReason::ZeroTtlNoValidator); ++i) {
    const std::string_view s = toString(static_cast<NoCacheReason>(i));
    EXPECT_NE(s, "unknown");
    EXPECT_EQ(std::find(seen.begin(), seen.end(), s), seen.end()) << s;
    seen.push_back(s);
  }
  EXPECT_EQ(toString(NoCacheReason::SetCookie), "set_cookie");
}

TEST(HeadForStorage, DropsAgeAndStrippedFields) {
  const core::ResponseHead r =
      response(200, {{"Age", "5"}, {"X-User", "u"}, {"Set-Cookie", "a=b"}, {"ETag", "\"1\""}});
  ResponseDecision d;
  d.storable = true;
  d.strip_fields = {"x-user", "set-cookie"};
  const core::ResponseHead h = headForStorage(r, d);
  EXPECT_FALSE(h.headers.has("Age"));
  EXPECT_FALSE(h.headers.has("X-User"));
  EXPECT_FALSE(h.headers.has("Set-Cookie"));
  EXPECT_EQ(h.headers.get("ETag"), "\"1\"");
}

// ---- freshness and makeMeta -------------------------------------------------------------------

struct MetaCase {
  const char* name;
  Fields fields;
  conf::Behavior behavior;
  std::int64_t request_offset_s;  // request sent at T0 + this (response at T0)
  std::int64_t lifetime;
  std::int64_t initial_age;
  bool must_revalidate = false;
  bool no_cache = false;
  std::int64_t swr = 0;
  std::int64_t sie = 0;
};

class MakeMetaTest : public ::testing::TestWithParam<MetaCase> {};

TEST_P(MakeMetaTest, Computes) {
  const MetaCase& c = GetParam();
  StaleDefaults defaults;
  defaults.stale_while_revalidate_s = 5;
  defaults.stale_if_error_s = 7;
  const ObjectMeta m = makeMeta(at(c.request_offset_s), T0, response(200, c.fields), c.behavior, defaults);
  EXPECT_EQ(m.freshness_lifetime_s, c.lifetime);
  EXPECT_EQ(m.corrected_initial_age_s, c.initial_age);
  EXPECT_EQ(m.must_revalidate, c.must_revalidate);
  EXPECT_EQ(m.no_cache, c.no_cache);
  EXPECT_EQ(m.stale_while_revalidate_s, c.swr);
  EXPECT_EQ(m.stale_if_error_s, c.sie);
  EXPECT_EQ(m.request_time, at(c.request_offset_s));
  EXPECT_EQ(m.response_time, T0);
}

INSTANTIATE_TEST_SUITE_P(
    Table, MakeMetaTest,
    ::testing::Values(
        MetaCase{"max_age", {{"Date", date(0)}, {"Cache-Control", "max-age=100"}}, behavior(), 0, 100, 0, false,
                 false, 5, 7},
        MetaCase{"s_maxage_wins_and_forbids_stale", {{"Cache-Control", "max-age=100, s-maxage=50"}}, behavior(), 0,
                 50, 0, true},
        MetaCase{"max_age_wins_over_expires",
                 {{"Date", date(0)}, {"Cache-Control", "max-age=100"}, {"Expires", date(1000)}}, behavior(), 0, 100,
                 0, false, false, 5, 7},
        MetaCase{"expires_minus_date", {{"Date", date(-100)}, {"Expires", date(1000)}}, behavior(), 0, 1100, 100,
                 false, false, 5, 7},
        MetaCase{"expires_without_date", {{"Expires", date(1000)}}, behavior(), 0, 1000, 0, false, false, 5, 7},
        MetaCase{"expires_invalid", {{"Expires", "0"}}, behavior(), 0, 0, 0, false, false, 5, 7},
        MetaCase{"expires_past", {{"Date", date(0)}, {"Expires", date(-10)}}, behavior(), 0, 0, 0, false, false, 5,
                 7},
        MetaCase{"default_ttl", {{"Date", date(0)}}, behavior(500), 0, 500, 0, false, false, 5, 7},
        MetaCase{"default_clamped_to_max", {}, behavior(500, 0, 100), 0, 100, 0, false, false, 5, 7},
        MetaCase{"min_ttl_raises", {{"Cache-Control", "max-age=10"}}, behavior(500, 60), 0, 60, 0, false, false, 5,
                 7},
        MetaCase{"min_ttl_not_over_must_revalidate", {{"Cache-Control", "max-age=10, must-revalidate"}},
                 behavior(500, 60), 0, 10, 0, true},
        MetaCase{"min_ttl_not_over_s_maxage", {{"Cache-Control", "s-maxage=10"}}, behavior(500, 60), 0, 10, 0, true},
        MetaCase{"max_ttl_caps", {{"Cache-Control", "max-age=1000000"}}, behavior(500, 0, 1000), 0, 1000, 0, false,
                 false, 5, 7},
        MetaCase{"age_header_plus_delay", {{"Date", date(0)}, {"Age", "30"}, {"Cache-Control", "max-age=100"}},
                 behavior(), -2, 100, 32, false, false, 5, 7},
        MetaCase{"apparent_age_wins", {{"Date", date(-100)}, {"Age", "10"}, {"Cache-Control", "max-age=100"}},
                 behavior(), 0, 100, 100, false, false, 5, 7},
        MetaCase{"date_in_future", {{"Date", date(100)}, {"Age", "5"}, {"Cache-Control", "max-age=100"}}, behavior(),
                 0, 100, 5, false, false, 5, 7},
        MetaCase{"huge_age", {{"Age", "99999999999"}, {"Cache-Control", "max-age=100"}}, behavior(), 0, 100,
                 2147483648, false, false, 5, 7},
        MetaCase{"proxy_revalidate", {{"Cache-Control", "max-age=100, proxy-revalidate, stale-if-error=60"}},
                 behavior(), 0, 100, 0, true},
        MetaCase{"no_cache_no_stale", {{"Cache-Control", "no-cache, max-age=100, stale-while-revalidate=9"}},
                 behavior(), 0, 100, 0, false, true},
        MetaCase{"response_windows_win_over_defaults",
                 {{"Cache-Control", "max-age=100, stale-while-revalidate=30"}}, behavior(), 0, 100, 0, false, false,
                 30, 7},
        MetaCase{"invalid_max_age_is_stale", {{"Cache-Control", "max-age=soon"}}, behavior(500), 0, 0, 0, false,
                 false, 5, 7}),
    [](const ::testing::TestParamInfo<MetaCase>& info) { return std::string(info.param.name); });

TEST(MakeMeta, CapturesValidatorsAndVary) {
  const ObjectMeta m = makeMeta(T0, T0,
                                response(200, {{"ETag", " W/\"x\" "},
                                               {"Last-Modified", date(-5)},
                                               {"Vary", "Accept-Language, accept-encoding"}}),
                                behavior(), {});
  EXPECT_EQ(m.etag, "W/\"x\"");
  EXPECT_EQ(m.last_modified, date(-5));
  EXPECT_EQ(m.vary, (std::vector<std::string>{"accept-encoding", "accept-language"}));
}

// ---- usability over time ----------------------------------------------------------------------

ObjectMeta meta(std::int64_t lifetime, std::int64_t initial_age = 0, std::int64_t swr = 0, std::int64_t sie = 0) {
  ObjectMeta m;
  m.request_time = T0;
  m.response_time = T0;
  m.freshness_lifetime_s = lifetime;
  m.corrected_initial_age_s = initial_age;
  m.stale_while_revalidate_s = swr;
  m.stale_if_error_s = sie;
  return m;
}

TEST(EntryUsability, Table) {
  using U = EntryUsability;
  ObjectMeta must = meta(100, 0, 30, 60);
  must.must_revalidate = true;
  ObjectMeta no_cache = meta(100, 0, 30, 60);
  no_cache.no_cache = true;
  const struct {
    const char* name;
    ObjectMeta meta;
    std::int64_t now;
    U want;
    std::int64_t age;
  } cases[] = {
      {"fresh", meta(100), 50, U::Fresh, 50},
      {"fresh_just_before_expiry", meta(100), 99, U::Fresh, 99},
      {"stale_at_lifetime", meta(100), 100, U::Revalidate, 100},
      {"zero_lifetime", meta(0), 0, U::Revalidate, 0},
      {"swr_window", meta(100, 0, 30), 110, U::StaleWhileRevalidate, 110},
      {"swr_window_over", meta(100, 0, 30), 130, U::Revalidate, 130},
      {"sie_inside_swr_is_swr", meta(100, 0, 30, 60), 120, U::StaleWhileRevalidate, 120},
      {"sie_window", meta(100, 0, 30, 60), 140, U::RevalidateOrStaleOnError, 140},
      {"sie_window_over", meta(100, 0, 30, 60), 160, U::Revalidate, 160},
      {"must_revalidate_fresh", must, 10, U::Fresh, 10},
      {"must_revalidate_ignores_windows", must, 110, U::Revalidate, 110},
      {"no_cache_even_when_fresh", no_cache, 1, U::Revalidate, 1},
      {"age_header_beyond_lifetime", meta(60, 120), 0, U::Revalidate, 120},
      {"initial_age_counts", meta(100, 40), 59, U::Fresh, 99},
      {"clock_went_back", meta(100, 10), -50, U::Fresh, 10},
  };
  for (const auto& c : cases) {
    const EntryState s = entryUsability(at(c.now), c.meta);
    EXPECT_EQ(s.usability, c.want) << c.name << ": " << toString(s.usability);
    EXPECT_EQ(s.age_s, c.age) << c.name;
    EXPECT_EQ(currentAge(c.meta, at(c.now)), c.age) << c.name;
  }
}

TEST(StaleIfError, Window) {
  EXPECT_TRUE(staleIfErrorAllows(at(150), meta(100, 0, 0, 60)));
  EXPECT_FALSE(staleIfErrorAllows(at(160), meta(100, 0, 0, 60)));
  EXPECT_FALSE(staleIfErrorAllows(at(101), meta(100)));
  ObjectMeta must = meta(100, 0, 0, 60);
  must.must_revalidate = true;
  EXPECT_FALSE(staleIfErrorAllows(at(101), must));
}

TEST(Retention, FreshnessPlusWindowOrValidatorGrace) {
  EXPECT_EQ(retentionSeconds(meta(100), at(40), 3600), 60);
  EXPECT_EQ(retentionSeconds(meta(100, 0, 30, 60), at(40), 0), 120);
  ObjectMeta with_etag = meta(100, 0, 30, 0);
  with_etag.etag = "\"1\"";
  EXPECT_EQ(retentionSeconds(with_etag, at(40), 3600), 3660);
  EXPECT_LE(retentionSeconds(meta(100), at(200), 3600), 0);  // expired, nothing to revalidate with
  ObjectMeta must = meta(100, 0, 30, 60);
  must.must_revalidate = true;
  EXPECT_EQ(retentionSeconds(must, at(0), 0), 100);
}

// ---- invalidation ----------------------------------------------------------------------------

TEST(Invalidation, Table) {
  using T = InvalidationTarget;
  const struct {
    const char* name;
    const char* method;
    int status;
    Fields fields;
    std::vector<T> want;
  } cases[] = {
      {"get_never", "GET", 200, {}, {}},
      {"options_never", "OPTIONS", 200, {}, {}},
      {"put_204", "PUT", 204, {}, {{"localhost", "/a/b", "q=1"}}},
      {"post_error_none", "POST", 500, {{"Location", "/x"}}, {}},
      {"delete_404_none", "DELETE", 404, {}, {}},
      {"unknown_method_is_unsafe", "FROB", 200, {}, {{"localhost", "/a/b", "q=1"}}},
      {"post_location_path", "POST", 201, {{"Location", "/items/5"}},
       {{"localhost", "/a/b", "q=1"}, {"localhost", "/items/5", ""}}},
      {"post_location_other_host", "POST", 303, {{"Location", "http://other.test/x"}}, {{"localhost", "/a/b", "q=1"}}},
      {"absolute_same_host_port_and_case", "POST", 200, {{"Location", "http://LOCALHOST:8080/c?d=1#frag"}},
       {{"localhost", "/a/b", "q=1"}, {"localhost", "/c", "d=1"}}},
      {"network_path", "PATCH", 200, {{"Content-Location", "//localhost/p"}},
       {{"localhost", "/a/b", "q=1"}, {"localhost", "/p", ""}}},
      {"relative_with_dots", "POST", 200, {{"Content-Location", "c/../d"}},
       {{"localhost", "/a/b", "q=1"}, {"localhost", "/a/d", ""}}},
      {"dot_segments", "POST", 200, {{"Location", "/x/./y/../z/"}},
       {{"localhost", "/a/b", "q=1"}, {"localhost", "/x/z/", ""}}},
      {"no_path", "POST", 200, {{"Location", "https://localhost"}},
       {{"localhost", "/a/b", "q=1"}, {"localhost", "/", ""}}},
      {"other_scheme", "POST", 200, {{"Location", "mailto:a@localhost"}}, {{"localhost", "/a/b", "q=1"}}},
      {"userinfo_other_host", "POST", 200, {{"Location", "http://localhost@evil.test/x"}},
       {{"localhost", "/a/b", "q=1"}}},
      {"same_as_target_deduped", "POST", 200, {{"Location", "/a/b?q=1"}, {"Content-Location", "/a/b?q=1"}},
       {{"localhost", "/a/b", "q=1"}}},
  };
  for (const auto& c : cases) {
    core::RequestHead r = request(c.method);
    r.query = "q=1";
    const std::vector<T> got = invalidationTargets(r, response(c.status, c.fields));
    ASSERT_EQ(got.size(), c.want.size()) << c.name;
    for (std::size_t i = 0; i < got.size(); ++i) {
      EXPECT_EQ(got[i].host, c.want[i].host) << c.name;
      EXPECT_EQ(got[i].path, c.want[i].path) << c.name;
      EXPECT_EQ(got[i].query, c.want[i].query) << c.name;
    }
  }
}

TEST(Invalidation, HostileDotSegmentsAreLinear) {
  std::string loc = "/";
  for (int i = 0; i < 20000; ++i) loc += "../a/./";
  const std::vector<InvalidationTarget> got = invalidationTargets(request("POST"), response(201, {{"Location", loc}}));
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[1].path, "/a/");
}

// ---- API stages -------------------------------------------------------------------------------

TEST(ApiStageBehavior, RouteTtlOverridesStageAndDisabledBypasses) {
  conf::Stage stage;
  stage.cache.enabled = true;
  stage.cache.ttl_s = 300;
  conf::ApiRoute route;
  route.path = "/bill/{id}";
  conf::Behavior b = apiStageBehavior(stage, route);
  EXPECT_EQ(b.default_ttl_s, 300);
  EXPECT_EQ(b.min_ttl_s, 300);
  EXPECT_EQ(b.max_ttl_s, 300);
  EXPECT_FALSE(b.query_in_key);

  route.cache_ttl_s = 60;
  b = apiStageBehavior(stage, route);
  EXPECT_EQ(b.max_ttl_s, 60);
  // The origin's max-age does not shorten nor lengthen a stage entry...
  EXPECT_EQ(makeMeta(T0, T0, response(200, {{"Cache-Control", "max-age=5"}}), b, {}).freshness_lifetime_s, 60);
  // ...but its no-store is still honoured.
  EXPECT_EQ(responseCacheability(request("GET"), response(200, {{"Cache-Control", "no-store"}}), b, T0).reason,
            NoCacheReason::ResponseNoStore);

  stage.cache.enabled = false;
  b = apiStageBehavior(stage, route);
  EXPECT_EQ(requestCacheability(request("GET"), b).reason, NoCacheReason::CachingDisabled);
}

}  // namespace
}  // namespace portico::cache
