#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <string_view>

#include "proxy/api/cors.h"

namespace portico::proxy {
namespace {

conf::Cors exampleCors() {
  conf::Cors c;
  c.allow_origins = {"http://localhost:8080", "https://app.example.test/"};
  c.allow_methods = {"GET", "POST", "PUT"};
  c.allow_headers = {"Content-Type", "Authorization"};
  c.max_age_s = 600;
  return c;
}

core::RequestHead preflightRequest(std::string_view origin, std::string_view method,
                                   std::optional<std::string_view> headers = std::nullopt) {
  core::RequestHead req;
  req.method = "OPTIONS";
  req.path = "/prod/bill/1";
  req.headers.add("Origin", origin);
  req.headers.add("Access-Control-Request-Method", method);
  if (headers) req.headers.add("Access-Control-Request-Headers", *headers);
  return req;
}

// The value of `name` in `h` (names compared case-insensitively), or nullopt.
std::optional<std::string> field(const CorsHeaders& h, std::string_view name) {
  for (const auto& [n, v] : h.fields) {
    if (core::iequals(n, name)) return v;
  }
  return std::nullopt;
}

TEST(Cors, IsPreflightNeedsOptionsOriginAndRequestMethod) {
  EXPECT_TRUE(isPreflight(preflightRequest("http://localhost:8080", "PUT")));

  core::RequestHead no_origin;
  no_origin.method = "OPTIONS";
  no_origin.headers.add("Access-Control-Request-Method", "PUT");
  EXPECT_FALSE(isPreflight(no_origin));
  EXPECT_FALSE(preflight(exampleCors(), no_origin).has_value());

  core::RequestHead no_acrm;
  no_acrm.method = "OPTIONS";
  no_acrm.headers.add("Origin", "http://localhost:8080");
  EXPECT_FALSE(isPreflight(no_acrm));

  core::RequestHead get = preflightRequest("http://localhost:8080", "PUT");
  get.method = "GET";
  EXPECT_FALSE(isPreflight(get));
  EXPECT_FALSE(preflight(exampleCors(), get).has_value());
}

TEST(Cors, PreflightFromAllowedOriginAnswersEveryField) {
  std::optional<CorsHeaders> h =
      preflight(exampleCors(), preflightRequest("http://localhost:8080", "PUT", "Content-Type"));
  ASSERT_TRUE(h.has_value());
  ASSERT_EQ(h->fields.size(), 5u);
  EXPECT_EQ(h->fields[0].first, "Access-Control-Allow-Origin");
  EXPECT_EQ(h->fields[0].second, "http://localhost:8080");
  EXPECT_EQ(field(*h, "Access-Control-Allow-Methods"), "GET, POST, PUT");
  EXPECT_EQ(field(*h, "Access-Control-Allow-Headers"), "Content-Type, Authorization");
  EXPECT_EQ(field(*h, "Access-Control-Max-Age"), "600");
  EXPECT_EQ(field(*h, "Vary"), "Origin");
}

TEST(Cors, UnlistedOriginGetsNothing) {
  EXPECT_FALSE(preflight(exampleCors(), preflightRequest("http://evil.test", "GET")).has_value());
  // Same host, other port or scheme: a different origin.
  EXPECT_FALSE(preflight(exampleCors(), preflightRequest("http://localhost:8081", "GET")).has_value());
  EXPECT_FALSE(preflight(exampleCors(), preflightRequest("https://localhost:8080", "GET")).has_value());
  EXPECT_FALSE(preflight(exampleCors(), preflightRequest("http://localhost:8080.evil.test", "GET")).has_value());
  EXPECT_FALSE(preflight(exampleCors(), preflightRequest("", "GET")).has_value());
}

TEST(Cors, OriginComparisonIgnoresCaseAndConfTrailingSlash) {
  std::optional<CorsHeaders> h = preflight(exampleCors(), preflightRequest("HTTP://LocalHost:8080", "GET"));
  ASSERT_TRUE(h.has_value());
  EXPECT_EQ(field(*h, "Access-Control-Allow-Origin"), "HTTP://LocalHost:8080");  // echoed as sent
  h = preflight(exampleCors(), preflightRequest("https://app.example.test", "GET"));
  ASSERT_TRUE(h.has_value());
  EXPECT_EQ(field(*h, "Access-Control-Allow-Origin"), "https://app.example.test");
}

TEST(Cors, WildcardOriginAnswersStar) {
  conf::Cors c = exampleCors();
  c.allow_origins = {"*"};
  std::optional<CorsHeaders> h = preflight(c, preflightRequest("http://anything.test", "POST"));
  ASSERT_TRUE(h.has_value());
  EXPECT_EQ(field(*h, "Access-Control-Allow-Origin"), "*");
  EXPECT_TRUE(preflight(c, preflightRequest("null", "POST")).has_value());  // opaque origins too
}

TEST(Cors, NoAllowedOriginsAllowsNothing) {
  conf::Cors c = exampleCors();
  c.allow_origins.clear();
  EXPECT_FALSE(preflight(c, preflightRequest("http://localhost:8080", "GET")).has_value());
}

TEST(Cors, MethodNotAllowed) {
  EXPECT_FALSE(preflight(exampleCors(), preflightRequest("http://localhost:8080", "DELETE")).has_value());
  EXPECT_FALSE(preflight(exampleCors(), preflightRequest("http://localhost:8080", "")).has_value());
  // Methods are case-sensitive, as the browser compares them.
  EXPECT_FALSE(preflight(exampleCors(), preflightRequest("http://localhost:8080", "put")).has_value());
}

TEST(Cors, SafelistedMethodsNeedNotBeListed) {
  conf::Cors c = exampleCors();
  c.allow_methods = {"PUT"};
  for (std::string_view m : {"GET", "HEAD", "POST"}) {
    EXPECT_TRUE(preflight(c, preflightRequest("http://localhost:8080", m)).has_value()) << m;
  }
  c.allow_methods.clear();
  std::optional<CorsHeaders> h = preflight(c, preflightRequest("http://localhost:8080", "GET"));
  ASSERT_TRUE(h.has_value());
  EXPECT_FALSE(field(*h, "Access-Control-Allow-Methods").has_value());  // empty list: omitted
}

TEST(Cors, WildcardMethodsAndHeaders) {
  conf::Cors c = exampleCors();
  c.allow_methods = {"*"};
  c.allow_headers = {"*"};
  std::optional<CorsHeaders> h = preflight(c, preflightRequest("http://localhost:8080", "PATCH", "X-Anything, x-other"));
  ASSERT_TRUE(h.has_value());
  EXPECT_EQ(field(*h, "Access-Control-Allow-Methods"), "*");
  EXPECT_EQ(field(*h, "Access-Control-Allow-Headers"), "*");
}

TEST(Cors, HeaderNotAllowed) {
  EXPECT_FALSE(preflight(exampleCors(),
                         preflightRequest("http://localhost:8080", "PUT", "content-type, x-secret"))
                   .has_value());
  conf::Cors c = exampleCors();
  c.allow_headers.clear();
  EXPECT_FALSE(preflight(c, preflightRequest("http://localhost:8080", "PUT", "content-type")).has_value());
}

TEST(Cors, RequestedHeadersAreCaseInsensitiveAndToleratesSpacing) {
  std::optional<CorsHeaders> h = preflight(
      exampleCors(), preflightRequest("http://localhost:8080", "PUT", " AUTHORIZATION ,content-TYPE,, "));
  EXPECT_TRUE(h.has_value());
  // Several Access-Control-Request-Headers fields are one list.
  core::RequestHead req = preflightRequest("http://localhost:8080", "PUT", "authorization");
  req.headers.add("Access-Control-Request-Headers", "x-secret");
  EXPECT_FALSE(preflight(exampleCors(), req).has_value());
}

TEST(Cors, MaxAgeOmittedWhenZero) {
  conf::Cors c = exampleCors();
  c.max_age_s = 0;
  std::optional<CorsHeaders> h = preflight(c, preflightRequest("http://localhost:8080", "GET"));
  ASSERT_TRUE(h.has_value());
  EXPECT_FALSE(field(*h, "Access-Control-Max-Age").has_value());
}

core::RequestHead actualRequest(std::optional<std::string_view> origin) {
  core::RequestHead req;
  req.method = "GET";
  req.path = "/prod/bill/1";
  if (origin) req.headers.add("Origin", *origin);
  return req;
}

TEST(Cors, ActualFromAllowedOriginGetsAllowOriginAndVary) {
  core::HeaderMap resp;
  resp.add("Content-Type", "application/json");
  decorateActual(exampleCors(), actualRequest("http://localhost:8080"), resp);
  EXPECT_EQ(resp.get("Access-Control-Allow-Origin"), "http://localhost:8080");
  EXPECT_EQ(resp.getJoined("Vary"), "Origin");
  EXPECT_EQ(resp.size(), 3u);
}

TEST(Cors, ActualFromUnlistedOrMissingOriginGetsOnlyVary) {
  for (std::optional<std::string_view> origin : {std::optional<std::string_view>("http://evil.test"),
                                                 std::optional<std::string_view>()}) {
    core::HeaderMap resp;
    resp.add("Access-Control-Allow-Origin", "*");  // the origin server's own: the conf decides
    decorateActual(exampleCors(), actualRequest(origin), resp);
    EXPECT_FALSE(resp.has("Access-Control-Allow-Origin"));
    EXPECT_EQ(resp.getJoined("Vary"), "Origin");
  }
}

TEST(Cors, ActualReplacesTheOriginServersAllowOrigin) {
  core::HeaderMap resp;
  resp.add("access-control-allow-origin", "https://other.test");
  decorateActual(exampleCors(), actualRequest("http://localhost:8080"), resp);
  EXPECT_EQ(resp.count("Access-Control-Allow-Origin"), 1u);
  EXPECT_EQ(resp.get("Access-Control-Allow-Origin"), "http://localhost:8080");
}

TEST(Cors, VaryMergesWithExistingVary) {
  core::HeaderMap resp;
  resp.add("Vary", "Accept-Encoding");
  resp.add("Vary", "Accept-Language");
  decorateActual(exampleCors(), actualRequest("http://localhost:8080"), resp);
  EXPECT_EQ(resp.count("Vary"), 1u);
  EXPECT_EQ(resp.get("Vary"), "Accept-Encoding, Accept-Language, Origin");

  decorateActual(exampleCors(), actualRequest("http://localhost:8080"), resp);  // idempotent
  EXPECT_EQ(resp.get("Vary"), "Accept-Encoding, Accept-Language, Origin");

  core::HeaderMap lower;
  lower.add("vary", "origin, accept");
  decorateActual(exampleCors(), actualRequest(std::nullopt), lower);
  EXPECT_EQ(lower.get("Vary"), "origin, accept");

  core::HeaderMap star;
  star.add("Vary", "*");
  decorateActual(exampleCors(), actualRequest(std::nullopt), star);
  EXPECT_EQ(star.get("Vary"), "*");

  core::HeaderMap empty;
  empty.add("Vary", "");
  decorateActual(exampleCors(), actualRequest(std::nullopt), empty);
  EXPECT_EQ(empty.get("Vary"), "Origin");
}

TEST(Cors, AllowedOriginValue) {
  EXPECT_EQ(allowedOriginValue(exampleCors(), "http://localhost:8080"), "http://localhost:8080");
  EXPECT_FALSE(allowedOriginValue(exampleCors(), "http://localhost").has_value());
  EXPECT_FALSE(allowedOriginValue(exampleCors(), "").has_value());
}

}  // namespace
}  // namespace portico::proxy
