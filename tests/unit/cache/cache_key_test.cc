// Cache keys (cache/cache_key.h): normalisation that keeps equivalent requests together and
// everything else apart, Vary variants, API stage keys from the declared cache_key, hashing.
#include "cache/cache_key.h"

#include <gtest/gtest.h>

#include <string>
#include <unordered_set>
#include <utility>
#include <vector>

namespace portico::cache {
namespace {

using Fields = std::vector<std::pair<std::string, std::string>>;

core::RequestHead request(std::string host, std::string path, std::string query, const Fields& fields = {}) {
  core::RequestHead r;
  r.method = "GET";
  r.authority = std::move(host);
  r.path = std::move(path);
  r.query = std::move(query);
  for (const auto& [n, v] : fields) r.headers.add(n, v);
  return r;
}

conf::Site site() {
  conf::Site s;
  s.name = "www";
  return s;
}

conf::Behavior behavior(std::string pattern, bool query_in_key) {
  conf::Behavior b;
  b.path = std::move(pattern);
  b.query_in_key = query_in_key;
  return b;
}

TEST(Normalize, PercentEncoding) {
  const struct {
    const char* in;
    const char* want;
  } cases[] = {
      {"/a/b", "/a/b"},
      {"/%7euser", "/~user"},      // unreserved decoded
      {"/%41%62%2D%2e%5F", "/Ab-._"},
      {"/a%2fb", "/a%2Fb"},        // reserved kept, hex upper-cased
      {"/a%2Fb", "/a%2Fb"},
      {"/%e2%82%ac", "/%E2%82%AC"},
      {"/100%", "/100%"},          // malformed escapes kept as they are
      {"/%zz", "/%zz"},
      {"/%4", "/%4"},
      {"/a+b", "/a+b"},            // '+' is not a space in a path
  };
  for (const auto& c : cases) EXPECT_EQ(normalizePercentEncoding(c.in), c.want) << c.in;
}

TEST(Normalize, QuerySortedByNameThenValue) {
  const struct {
    const char* in;
    const char* want;
  } cases[] = {
      {"", ""},
      {"b=2&a=1", "a=1&b=2"},
      {"a=2&a=1&a=10", "a=1&a=10&a=2"},
      {"a&a=", "a&a="},            // bare name and empty value stay distinct
      {"a=&a", "a&a="},
      {"&&x=1&&", "x=1"},          // empty members dropped
      {"q=%7e&p=%2f", "p=%2F&q=~"},
      {"a=1=2", "a=1=2"},          // only the first '=' splits
  };
  for (const auto& c : cases) EXPECT_EQ(normalizeQuery(c.in), c.want) << c.in;
}

TEST(SitePrimaryKey, Format) {
  EXPECT_EQ(sitePrimaryKey(site(), behavior("*", true), request("localhost", "/a/b", "y=2&x=1")),
            "site|www|*|localhost|/a/b?x=1&y=2");
  EXPECT_EQ(sitePrimaryKey(site(), behavior("/assets/*", false), request("localhost", "/assets/app.js", "v=3")),
            "site|www|/assets/*|localhost|/assets/app.js");
  EXPECT_EQ(sitePrimaryKey(site(), behavior("*", true), request("localhost", "/", "")), "site|www|*|localhost|/");
  conf::Site odd = site();
  odd.name = "a|b\\c";
  EXPECT_EQ(sitePrimaryKey(odd, behavior("*", true), request("h", "/p|q", "")), "site|a\\|b\\\\c|*|h|/p\\|q");
  EXPECT_EQ(sitePrimaryKey(site(), behavior("*", true), request("h", std::string("/a\x01", 3), "")),
            "site|www|*|h|/a\\x01");
}

TEST(SitePrimaryKey, SameAndDifferent) {
  const conf::Site s = site();
  const conf::Behavior all = behavior("*", true);
  const conf::Behavior noq = behavior("*", false);
  auto key = [&](const conf::Behavior& b, const core::RequestHead& r) { return sitePrimaryKey(s, b, r); };
  // Equivalent requests share a key.
  EXPECT_EQ(key(all, request("h", "/a", "x=1&y=2")), key(all, request("h", "/a", "y=2&x=1")));
  EXPECT_EQ(key(all, request("h", "/%7Ea", "")), key(all, request("h", "/~a", "")));
  EXPECT_EQ(key(all, request("h", "/a", "")), key(all, request("h", "/a", "&")));
  EXPECT_EQ(key(noq, request("h", "/a", "x=1")), key(noq, request("h", "/a", "x=2")));
  // Different resources do not.
  EXPECT_NE(key(all, request("h", "/a", "x=1")), key(all, request("h", "/a", "x=2")));
  EXPECT_NE(key(all, request("h", "/a", "x")), key(all, request("h", "/a", "x=")));
  EXPECT_NE(key(all, request("h1", "/a", "")), key(all, request("h2", "/a", "")));
  EXPECT_NE(key(all, request("h", "/a", "")), key(all, request("h", "/A", "")));
  EXPECT_NE(key(all, request("h", "/a%2Fb", "")), key(all, request("h", "/a/b", "")));
  EXPECT_NE(key(all, request("h", "/a", "")), key(behavior("/a*", true), request("h", "/a", "")));
  conf::Site other = s;
  other.name = "api2";
  EXPECT_NE(key(all, request("h", "/a", "")), sitePrimaryKey(other, all, request("h", "/a", "")));
}

TEST(VariantKey, Table) {
  using Names = std::vector<std::string>;
  const struct {
    const char* name;
    Names vary;
    Fields fields;
    const char* want;
  } cases[] = {
      {"no_vary", {}, {{"Accept-Encoding", "gzip"}}, ""},
      {"present", {"accept-encoding"}, {{"Accept-Encoding", "gzip"}}, "accept-encoding=gzip"},
      {"name_case_insensitive", {"accept-encoding"}, {{"ACCEPT-ENCODING", "gzip"}}, "accept-encoding=gzip"},
      {"absent", {"accept-encoding"}, {}, "accept-encoding"},
      {"empty", {"accept-encoding"}, {{"Accept-Encoding", ""}}, "accept-encoding="},
      {"trimmed", {"accept-encoding"}, {{"Accept-Encoding", "  gzip ,  br "}}, "accept-encoding=gzip,br"},
      {"lines_combined", {"accept-encoding"}, {{"Accept-Encoding", "gzip"}, {"accept-encoding", "br"}},
       "accept-encoding=gzip,br"},
      {"two_names", {"accept-encoding", "accept-language"}, {{"Accept-Language", "fr"}, {"Accept-Encoding", "br"}},
       "accept-encoding=br|accept-language=fr"},
      {"value_escaped", {"x"}, {{"X", "a|b=c"}}, "x=a\\|b=c"},
      {"name_eq_escaped", {"a=b"}, {}, "a\\=b"},
  };
  for (const auto& c : cases) EXPECT_EQ(variantKey(c.vary, request("h", "/", "", c.fields).headers), c.want) << c.name;
  // Values are compared as sent (case matters: not every field is case-insensitive).
  EXPECT_NE(variantKey({"accept-language"}, request("h", "/", "", {{"Accept-Language", "FR"}}).headers),
            variantKey({"accept-language"}, request("h", "/", "", {{"Accept-Language", "fr"}}).headers));
}

struct ApiFixture {
  conf::Api api;
  conf::Stage stage;
  conf::ApiRoute route;
  ApiFixture() {
    api.name = "billing";
    stage.name = "prod";
    route.method = "GET";
    route.path = "/bill/{id}";
    route.cache_key.path = {"id"};
    route.cache_key.query = {"month"};
    route.cache_key.headers = {"Accept-Language"};
  }
  std::string key(const std::string& id, const std::string& query, const Fields& fields = {}) const {
    return apiPrimaryKey(api, stage, route, {{"id", id}}, request("api.test", "/prod/bill/" + id, query, fields));
  }
};

TEST(ApiPrimaryKey, DeclaredParametersOnly) {
  const ApiFixture f;
  EXPECT_EQ(f.key("42", "month=5&x=1", {{"Accept-Language", "fr"}, {"X-Other", "1"}}),
            "api|billing|prod|/bill/{id}|p:id=42|q:month&=5|h:accept-language=fr");
  EXPECT_EQ(f.key("42", ""), "api|billing|prod|/bill/{id}|p:id=42|q:month|h:accept-language");
  // Undeclared query parameters and headers do not split entries.
  EXPECT_EQ(f.key("42", "month=5&x=1"), f.key("42", "x=2&month=5", {{"X-Other", "2"}}));
  // Declared ones do; absent, bare and empty are three different things.
  EXPECT_NE(f.key("42", "month=5"), f.key("42", "month=6"));
  EXPECT_NE(f.key("42", ""), f.key("42", "month"));
  EXPECT_NE(f.key("42", "month"), f.key("42", "month="));
  EXPECT_NE(f.key("42", ""), f.key("42", "", {{"Accept-Language", ""}}));
  EXPECT_NE(f.key("42", ""), f.key("43", ""));
  // Several values: all count, in a stable order; names match percent-decoded.
  EXPECT_EQ(f.key("42", "month=2&month=1"), f.key("42", "month=1&month=2"));
  EXPECT_EQ(f.key("42", "m%6Fnth=1"), f.key("42", "month=1"));
  EXPECT_EQ(f.key("42", "month=%7e"), f.key("42", "month=~"));

  ApiFixture undeclared;  // path parameter left out of cache_key: entries shared (API Gateway)
  undeclared.route.cache_key = {};
  EXPECT_EQ(undeclared.key("1", "a=1"), undeclared.key("2", "a=2"));
  EXPECT_EQ(undeclared.key("1", ""), "api|billing|prod|/bill/{id}");

  ApiFixture other_stage;
  other_stage.stage.name = "dev";
  EXPECT_NE(f.key("1", ""), other_stage.key("1", ""));
}

TEST(StableHash, FixedValueAndBoundary) {
  // FNV-1a 64 of "p\0v": the same in every build, process and machine.
  EXPECT_EQ(stableHash(CacheKey{"p", "v"}), 8724721632269005905ull);
  EXPECT_NE(stableHash(CacheKey{"ab", "c"}), stableHash(CacheKey{"a", "bc"}));
  std::unordered_set<CacheKey, CacheKeyHash> set;
  set.insert(CacheKey{"a", ""});
  set.insert(CacheKey{"a", "accept-encoding=gzip"});
  set.insert(CacheKey{"a", ""});
  EXPECT_EQ(set.size(), 2u);
  EXPECT_TRUE(set.count(CacheKey{"a", "accept-encoding=gzip"}));
}

}  // namespace
}  // namespace portico::cache
