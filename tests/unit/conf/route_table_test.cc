// RouteTable: host -> site/api; site behaviors by CloudFront path pattern (first match wins);
// API stage + resource template matching with API Gateway specificity. Plus the pure matchers.
#include "conf/route_table.h"

#include <gtest/gtest.h>

#include "conf/config_parser.h"
#include "tests/unit/conf/conf_test_util.h"

namespace portico::conf {
namespace {

using Params = std::vector<std::pair<std::string, std::string>>;

constexpr const char* kConf = R"(
[server]
listen = ["127.0.0.1:0"]
[origins.files]
type = "dir"
root = "."
[origins.fn]
type = "lambda"
endpoint = "http://127.0.0.1:9001"
function = "f"

[[sites]]
name = "www"
hosts = ["www.test", "localhost"]
origin = "files"
  [[sites.behaviors]]
  path = "/assets/*"
  [[sites.behaviors]]
  path = "*.jpg"
  [[sites.behaviors]]
  path = "/a/*/b"
  [[sites.behaviors]]
  path = "/img/???.png"
  [[sites.behaviors]]
  path = "images/*"

[[apis]]
name = "api"
hosts = ["api.test"]
  [[apis.stages]]
  name = "prod"
  [[apis.stages]]
  name = "dev"
  [[apis.routes]]
  method = "GET"
  path = "/bill/{id}"
  origin = "fn"
  [[apis.routes]]
  method = "ANY"
  path = "/bill/{id}"
  origin = "fn"
  [[apis.routes]]
  method = "GET"
  path = "/bill/summary"
  origin = "fn"
  [[apis.routes]]
  method = "ANY"
  path = "/legacy/{proxy+}"
  origin = "fn"
  [[apis.routes]]
  method = "GET"
  path = "/legacy/{x}/info"
  origin = "fn"
  [[apis.routes]]
  method = "ANY"
  path = "/{proxy+}"
  origin = "fn"
  [[apis.routes]]
  method = "GET"
  path = "/"
  mock = { status = 200 }
  [[apis.routes]]
  method = "POST"
  path = "/bill/{id}/pay"
  origin = "fn"

[[apis]]
name = "narrow"
hosts = ["narrow.test"]
  [[apis.stages]]
  name = "v1"
  [[apis.routes]]
  method = "GET"
  path = "/only"
  origin = "fn"
)";

class RouteTableTest : public ::testing::Test {
 protected:
  RouteTableTest() {
    const LoadResult r = parseConfig(kConf, "routes.toml", testing::repoRoot().string());
    for (const ConfigError& e : r.errors) ADD_FAILURE() << e.toString();
    config_ = r.config;
    if (config_) table_ = std::make_unique<RouteTable>(*config_);
  }
  ConfigPtr config_;
  std::unique_ptr<RouteTable> table_;
};

TEST_F(RouteTableTest, UnknownHostIsNoHost) {
  ASSERT_TRUE(table_);
  const RouteMatch m = table_->match("nowhere.test", "GET", "/");
  EXPECT_EQ(m.kind, RouteKind::NoHost);
  EXPECT_EQ(m.site, nullptr);
  EXPECT_EQ(m.api, nullptr);
  EXPECT_EQ(table_->match("", "GET", "/").kind, RouteKind::NoHost);
}

struct BehaviorCase {
  const char* path;
  const char* pattern;  // expected behavior path
};

TEST_F(RouteTableTest, SiteBehaviorsFirstMatchWins) {
  ASSERT_TRUE(table_);
  const BehaviorCase cases[] = {
      {"/assets/site.css", "/assets/*"},
      {"/assets/deep/photo.jpg", "/assets/*"},  // first match wins over *.jpg
      {"/photo.jpg", "*.jpg"},
      {"/x/y/photo.jpg", "*.jpg"},  // '*' crosses '/'
      {"/photo.jpeg", "*"},
      {"/a/x/b", "/a/*/b"},
      {"/a/x/y/b", "/a/*/b"},
      {"/a/b", "*"},  // "/a/*/b" needs "/a/" + something + "/b"
      {"/a/x/bc", "*"},
      {"/img/abc.png", "/img/???.png"},
      {"/img/abcd.png", "*"},
      {"/img/ab.png", "*"},
      {"/images/logo.png", "images/*"},  // no leading '/' in the pattern: as if it had one
      {"/", "*"},
      {"/index.html", "*"},
  };
  for (const BehaviorCase& c : cases) {
    const RouteMatch m = table_->match("www.test", "GET", c.path);
    ASSERT_EQ(m.kind, RouteKind::Site) << c.path;
    EXPECT_EQ(m.site, &config_->sites[0]);
    ASSERT_NE(m.behavior, nullptr) << c.path;
    EXPECT_EQ(m.behavior->path, c.pattern) << c.path;
  }
  EXPECT_EQ(table_->match("localhost", "POST", "/x").site, &config_->sites[0]);
}

struct ApiCase {
  const char* method;
  const char* path;
  RouteKind kind;
  int route;  // index into apis[0].routes, -1 for none
  const char* resource;
  Params params;
};

TEST_F(RouteTableTest, ApiStagesRoutesAndSpecificity) {
  ASSERT_TRUE(table_);
  const ApiCase cases[] = {
      {"GET", "/prod/bill/42", RouteKind::Api, 0, "/bill/42", {{"id", "42"}}},
      {"POST", "/prod/bill/42", RouteKind::Api, 1, "/bill/42", {{"id", "42"}}},  // ANY when no exact
      {"GET", "/prod/bill/summary", RouteKind::Api, 2, "/bill/summary", {}},    // literal beats {id}
      {"GET", "/prod/legacy/a/b/c", RouteKind::Api, 3, "/legacy/a/b/c", {{"proxy", "a/b/c"}}},
      {"GET", "/prod/legacy/a/info", RouteKind::Api, 4, "/legacy/a/info", {{"x", "a"}}},  // 2 literals
      {"DELETE", "/prod/legacy/a/info", RouteKind::Api, 3, "/legacy/a/info", {{"proxy", "a/info"}}},
      {"GET", "/prod/legacy/a", RouteKind::Api, 3, "/legacy/a", {{"proxy", "a"}}},
      {"GET", "/prod/legacy/", RouteKind::Api, 5, "/legacy/", {{"proxy", "legacy/"}}},  // {proxy+} needs a segment
      {"GET", "/prod/other/thing", RouteKind::Api, 5, "/other/thing", {{"proxy", "other/thing"}}},
      {"GET", "/prod/", RouteKind::Api, 6, "/", {}},
      {"GET", "/prod", RouteKind::Api, 6, "/", {}},
      {"POST", "/prod", RouteKind::ApiNoRoute, -1, "/", {}},  // "/" is GET only; {proxy+} needs a segment
      {"POST", "/prod/bill/42/pay", RouteKind::Api, 7, "/bill/42/pay", {{"id", "42"}}},
      {"GET", "/prod/bill/42/pay", RouteKind::Api, 5, "/bill/42/pay", {{"proxy", "bill/42/pay"}}},
      {"GET", "/dev/bill/a b%2F", RouteKind::Api, 0, "/bill/a b%2F", {{"id", "a b%2F"}}},  // path is already decoded
      {"GET", "/staging/bill/1", RouteKind::ApiNoStage, -1, "", {}},
      {"GET", "/", RouteKind::ApiNoStage, -1, "", {}},
      {"GET", "//prod/bill/1", RouteKind::ApiNoStage, -1, "", {}},
      {"GET", "/PROD/bill/1", RouteKind::ApiNoStage, -1, "", {}},  // stage names are case-sensitive
  };
  const Api& api = config_->apis[0];
  for (const ApiCase& c : cases) {
    SCOPED_TRACE(std::string(c.method) + " " + c.path);
    const RouteMatch m = table_->match("api.test", c.method, c.path);
    EXPECT_EQ(m.kind, c.kind);
    EXPECT_EQ(m.api, &api);
    EXPECT_EQ(m.site, nullptr);
    if (c.kind == RouteKind::ApiNoStage) {
      EXPECT_EQ(m.stage, nullptr);
      continue;
    }
    ASSERT_NE(m.stage, nullptr);
    EXPECT_EQ(m.stage->name, std::string(c.path).substr(1, 4) == "prod" ? "prod" : "dev");
    EXPECT_EQ(m.resource_path, c.resource);
    if (c.route < 0) {
      EXPECT_EQ(m.route, nullptr);
    } else {
      EXPECT_EQ(m.route, &api.routes[static_cast<std::size_t>(c.route)]);
      EXPECT_EQ(m.path_params, c.params);
    }
  }
}

TEST_F(RouteTableTest, ApiWithoutCatchAllReportsNoRoute) {
  ASSERT_TRUE(table_);
  EXPECT_EQ(table_->match("narrow.test", "GET", "/v1/only").kind, RouteKind::Api);
  EXPECT_EQ(table_->match("narrow.test", "POST", "/v1/only").kind, RouteKind::ApiNoRoute);  // method exact
  EXPECT_EQ(table_->match("narrow.test", "GET", "/v1/only/").kind, RouteKind::ApiNoRoute);
  EXPECT_EQ(table_->match("narrow.test", "GET", "/v1/other").kind, RouteKind::ApiNoRoute);
  EXPECT_EQ(table_->match("narrow.test", "GET", "/v2/only").kind, RouteKind::ApiNoStage);
}

// Specificity does not depend on the order routes are written in.
TEST(RouteTableOrderTest, MostSpecificWinsRegardlessOfConfOrder) {
  Config c;
  Api api;
  api.name = "a";
  api.hosts = {"h"};
  Stage stage;
  stage.name = "s";
  api.stages.push_back(stage);
  for (const char* p : {"/{proxy+}", "/{a}/{b}", "/x/{b}", "/{a}/y", "/x/y"}) {
    ApiRoute r;
    r.path = p;
    r.origin = "o";
    api.routes.push_back(r);
  }
  ApiRoute get;
  get.method = "GET";
  get.path = "/{a}/{b}";
  get.origin = "o";
  api.routes.push_back(get);
  c.apis.push_back(api);
  const RouteTable t(c);
  const auto routeOf = [&](const char* method, const char* path) {
    const RouteMatch m = t.match("h", method, path);
    return m.route == nullptr ? std::string("none") : m.route->method + " " + m.route->path;
  };
  EXPECT_EQ(routeOf("GET", "/s/x/y"), "ANY /x/y");
  EXPECT_EQ(routeOf("GET", "/s/x/z"), "ANY /x/{b}");  // leftmost literal breaks the tie with /{a}/y
  EXPECT_EQ(routeOf("GET", "/s/w/y"), "ANY /{a}/y");
  EXPECT_EQ(routeOf("GET", "/s/w/z"), "GET /{a}/{b}");  // exact method beats ANY
  EXPECT_EQ(routeOf("PUT", "/s/w/z"), "ANY /{a}/{b}");
  EXPECT_EQ(routeOf("GET", "/s/w/z/q"), "ANY /{proxy+}");
}

struct PatternCase {
  const char* pattern;
  std::string path;
  bool match;
};

TEST(MatchPathPatternTest, CloudFrontPatterns) {
  const PatternCase cases[] = {
      {"*", "/", true},
      {"*", "/anything/at/all", true},
      {"*", "", true},
      {"/a?c", "/abc", true},
      {"/a?c", "/ac", false},
      {"/a?c", "/abbc", false},
      {"?", "/x", true},
      {"?", "/xy", false},
      {"*.jpg", "/a/b/c.jpg", true},
      {"*.jpg", "/a/b/c.jpg.txt", false},
      {"/a/*", "/a/", true},
      {"/a/*", "/a", false},
      {"/a/*/b", "/a//b", true},
      {"/**", "/x", true},
      {"/exact", "/exact", true},
      {"/exact", "/exact/", false},
      {"/Exact", "/exact", false},  // case-sensitive
      {"*a*a*a*a*a*b", "/" + std::string(5000, 'a'), false},  // no exponential backtracking
  };
  for (const PatternCase& c : cases) {
    EXPECT_EQ(matchPathPattern(c.pattern, c.path), c.match) << c.pattern << " vs " << c.path;
  }
}

struct TemplateCase {
  const char* tmpl;
  const char* path;
  bool match;
  Params params;
};

TEST(MatchResourceTemplateTest, TemplatesAndParams) {
  const TemplateCase cases[] = {
      {"/bill/{id}", "/bill/42", true, {{"id", "42"}}},
      {"/bill/{id}", "/bill/", false, {}},
      {"/bill/{id}", "/bill", false, {}},
      {"/bill/{id}", "/bill/42/x", false, {}},
      {"/{a}/{b}", "/1/2", true, {{"a", "1"}, {"b", "2"}}},
      {"/x/{p+}", "/x/a/b/", true, {{"p", "a/b/"}}},
      {"/x/{p+}", "/x/a", true, {{"p", "a"}}},
      {"/x/{p+}", "/x/", false, {}},
      {"/x/{p+}", "/x", false, {}},
      {"/x/{p+}", "/x//a", false, {}},
      {"/", "/", true, {}},
      {"/", "/a", false, {}},
      {"/a", "a", false, {}},         // not a resource path
      {"/{p+}/x", "/a/x", false, {}},  // invalid template never matches
      {"/a/{b", "/a/{b", false, {}},
  };
  for (const TemplateCase& c : cases) {
    Params params;
    EXPECT_EQ(matchResourceTemplate(c.tmpl, c.path, params), c.match) << c.tmpl << " vs " << c.path;
    EXPECT_EQ(params, c.params) << c.tmpl << " vs " << c.path;
  }
}

struct DecodeCase {
  std::string in;
  bool ok;
  std::string out;
};

TEST(PercentDecodeTest, DecodesAndRejects) {
  const DecodeCase cases[] = {
      {"/plain/path", true, "/plain/path"},
      {"%41%62", true, "Ab"},
      {"a%2Fb", true, "a/b"},
      {"a%2fb", true, "a/b"},
      {"%e2%82%AC", true, "\xe2\x82\xac"},
      {"a+b", true, "a+b"},  // '+' is not a space in paths
      {"%2525", true, "%25"},  // decoded once only
      {"", true, ""},
      {"%", false, ""},
      {"%4", false, ""},
      {"100%", false, ""},
      {"%zz", false, ""},
      {"%g1", false, ""},
      {"%00", false, ""},
      {"a%00b", false, ""},
      {std::string("a\0b", 3), false, ""},
  };
  for (const DecodeCase& c : cases) {
    std::string out = "unchanged";
    EXPECT_EQ(percentDecode(c.in, out), c.ok) << c.in;
    if (c.ok) {
      EXPECT_EQ(out, c.out) << c.in;
    }
  }
}

}  // namespace
}  // namespace portico::conf
