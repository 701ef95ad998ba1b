// Every class of configuration error yields the right key and line, and all errors of a file
// are reported together. Cases are TOML snippets whose offending lines carry a marker comment
// "#<n>"; an expected error "<n> key: reason" must match "t.toml:<line of #<n>>: key: reason"
// as a prefix (reasons may go on with details).
#include <gtest/gtest.h>

#include "conf/config_parser.h"
#include "tests/unit/conf/conf_test_util.h"

namespace portico::conf {
namespace {

using testing::ScopedEnv;
using testing::ScratchDir;

// Valid preamble every case starts from: a listener, a dir origin "files", a lambda "fn".
constexpr const char* kBase = R"([server]
listen = ["127.0.0.1:0"]
[origins.files]
type = "dir"
root = "www"
[origins.fn]
type = "lambda"
endpoint = "http://127.0.0.1:9001"
function = "f"
)";

struct ErrorCase {
  const char* name;
  std::string toml;                   // appended to kBase unless it starts with "!" (then alone)
  std::vector<std::string> expected;  // "<n> key: reason-prefix", in report order
};

std::string expand(const std::string& text, const std::string& expected) {
  // "<n> rest": find the line carrying "#<n>".
  const std::size_t close = expected.find("> ");
  if (!expected.starts_with("<") || close == std::string::npos) return expected;
  const std::string marker = "#" + expected.substr(0, close + 1);
  int line = 1;
  std::size_t start = 0;
  while (true) {
    const std::size_t end = text.find('\n', start);
    const std::string_view l(text.data() + start, (end == std::string::npos ? text.size() : end) - start);
    if (l.find(marker) != std::string_view::npos) break;
    if (end == std::string::npos) {
      ADD_FAILURE() << "marker " << marker << " not found";
      return expected;
    }
    ++line;
    start = end + 1;
  }
  return "t.toml:" + std::to_string(line) + ": " + expected.substr(close + 2);
}

void PrintTo(const ErrorCase& c, std::ostream* os) { *os << c.name; }

class ConfigErrorsTest : public ::testing::TestWithParam<ErrorCase> {
 protected:
  ConfigErrorsTest() {
    dir_.mkdir("www");
    dir_.write("file.txt", "x");
    dir_.write("tls/cert.pem", "c");
    dir_.write("tls/key.pem", "k");
  }
  ScratchDir dir_;
};

TEST_P(ConfigErrorsTest, ReportsKeyAndLine) {
  const ErrorCase& c = GetParam();
  const std::string text = c.toml.starts_with("!") ? c.toml.substr(1) : std::string(kBase) + c.toml;
  ScopedEnv key("PORTICO_TEST_KEY", "k");
  ScopedEnv unset("PORTICO_TEST_UNSET", std::nullopt);
  const LoadResult r = parseConfig(text, "t.toml", dir_.str());
  std::string all;
  for (const ConfigError& e : r.errors) all += "  " + e.toString() + "\n";
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.config, nullptr);
  ASSERT_EQ(r.errors.size(), c.expected.size()) << all;
  for (std::size_t i = 0; i < c.expected.size(); ++i) {
    const std::string want = expand(text, c.expected[i]);
    EXPECT_TRUE(r.errors[i].toString().starts_with(want)) << "want prefix: " << want << "\ngot:\n" << all;
  }
}

const std::string kSite = "[[sites]]\nname = \"www\"\nhosts = [\"a.test\"]\norigin = \"files\"\n";
const std::string kApi = "[[apis]]\nname = \"api\"\nhosts = [\"api.test\"]\n[[apis.stages]]\nname = \"prod\"\n";

const ErrorCase kCases[] = {
    // ---- syntax, unknown keys, types
    {"Syntax", "!a = 1\nb = [1,\nc = 2 #<1>\n", {"<1> TOML syntax error: "}},
    {"SyntaxDuplicateKey", "!a = 1\na = 2 #<1>\n", {"<1> TOML syntax error: "}},
    {"UnknownTopLevel", "[sever] #<1>\nworkers = 1\n", {"<1> sever: unknown key"}},
    {"UnknownSiteKeyWithHint", kSite + "defualt_ttl_s = 5 #<1>\n",
     {"<1> sites[0].defualt_ttl_s: unknown key (did you mean \"default_ttl_s\"?)"}},
    {"UnknownNestedInline", kApi + "cache = { enabled = true, tll_s = 1 } #<1>\n",
     {"<1> apis[0].stages[0].cache.tll_s: unknown key"}},
    {"WrongTypeString", "!workers_bad = 0 #<1>\n[server]\nlisten = [\"127.0.0.1:0\"]\nworkers = \"4\" #<2>\n",
     {"<1> workers_bad: unknown key", "<2> server.workers: expected an integer, got a string"}},
    {"WrongTypeListElement", kSite + "[[sites]]\nname = \"b\"\nhosts = [\"b.test\", 7] #<1>\norigin = \"files\"\n",
     {"<1> sites[1].hosts[1]: expected a string, got an integer"}},
    {"WrongTypeBool", kSite + "compress = \"yes\" #<1>\n",
     {"<1> sites[0].compress: expected a boolean (true or false), got a string"}},
    {"SitesNotArray", "!sites = 5 #<1>\n[server]\nlisten = [\":0\"]\n", {"<1> sites: expected an array of tables, got an integer"}},
    // ---- server ranges, sizes, listeners
    {"WorkersRange", "!\n[server]\nlisten = [\"127.0.0.1:0\"]\nworkers = 2000 #<2>\n",
     {"<2> server.workers: must be in [0, 1024] (got 2000)"}},
    {"TimeoutZero", "!\n[server]\nlisten = [\"127.0.0.1:0\"]\nheader_timeout_ms = 0 #<1>\nidle_timeout_ms = -5 #<2>\n",
     {"<1> server.header_timeout_ms: must be > 0 (got 0)", "<2> server.idle_timeout_ms: must be > 0 (got -5)"}},
    {"MaxHeaderBytesRange", "!\n[server]\nlisten = [\":0\"]\nmax_header_bytes = 100 #<1>\n",
     {"<1> server.max_header_bytes: must be in [1024, 1048576] bytes (got 100)"}},
    {"BadSizes", "[cache]\nmemory = \"10XB\" #<1>\nmax_object = 0 #<2>\nredis_max_object = \"1.5MiB\" #<3>\n",
     {"<1> cache.memory: invalid size \"10XB\"", "<2> cache.max_object: must be > 0 (got 0)",
      "<3> cache.redis_max_object: invalid size"}},
    {"RedisUrl", "[cache]\nredis = \"http://127.0.0.1:6379\" #<1>\n",
     {"<1> cache.redis: must be \"\" (off) or a redis://host:port[/db] URL: redis URL: unsupported scheme"}},
    {"RedisUrlPort", "[cache]\nredis = \"redis://127.0.0.1:99999/0\" #<1>\n",
     {"<1> cache.redis: must be \"\" (off) or a redis://host:port[/db] URL: redis URL: bad port"}},
    {"RedisPasswordEnvUnset", "[cache]\nredis = \"redis://127.0.0.1:6379\"\nredis_password_env = \"PORTICO_TEST_NO_SUCH_VAR\" #<1>\n",
     {"<1> cache.redis_password_env: environment variable PORTICO_TEST_NO_SUCH_VAR is not set"}},
    {"RedisClusterDb", "[cache]\nredis = \"redis://127.0.0.1:7000/3\"\nredis_cluster = true #<1>\n",
     {"<1> cache.redis_cluster: a Redis Cluster has only database 0"}},
    {"BadListen", "!\n[server]\nlisten = [\"127.0.0.1:99999\"] #<1>\n",
     {"<1> server.listen[0]: invalid listen address \"127.0.0.1:99999\""}},
    {"NoListener", "!\n[server] #<1>\nworkers = 1\n",
     {"<1> server.listen: at least one listener is required"}},
    {"NoServer", "![origins.x] #<1>\ntype = \"http\"\nendpoint = \"http://127.0.0.1:1\"\n",
     {"<1> server: missing required key"}},
    {"AccessLogDirMissing", "!\n[server]\nlisten = [\":0\"]\naccess_log = \"/nonexistent/dir/a.log\" #<1>\n",
     {"<1> server.access_log: directory does not exist: /nonexistent/dir"}},
    {"AdminListen", "[admin]\nlisten = \"nowhere\" #<1>\n", {"<1> admin.listen: invalid listen address"}},
    // ---- tls
    {"TlsEmpty", "!\n[server]\nlisten = [\":0\"]\n[server.tls] #<1>\nlisten = [] #<2>\n",
     {"<1> server.tls.certificates: missing required key", "<2> server.tls.listen: must list at least one address"}},
    {"TlsFiles", "!\n[server]\nlisten = [\":0\"]\n[server.tls]\nlisten = [\":0\"]\n"
                 "certificates = [{ cert = \"tls/cert.pem\", key = \"tls/missing.pem\" }, #<1>\n"
                 "  { cert = \"tls\", key = \"tls/key.pem\" }] #<2>\nmin_version = \"TLSv1.1\" #<3>\n",
     {"<1> server.tls.certificates[0].key: file not found: ", "<2> server.tls.certificates[1].cert: not a regular file",
      "<3> server.tls.min_version: must be \"TLSv1.2\" or \"TLSv1.3\""}},
    // ---- origins
    {"OriginBadType", "[origins.x] #<1>\ntype = \"ftp\" #<2>\nroot = \"/\"\n",
     {"<2> origins.x.type: must be one of dir, s3, lambda, http"}},
    {"OriginMissingKeys", "[origins.d] #<1>\ntype = \"dir\"\n[origins.s] #<2>\ntype = \"s3\"\nendpoint = \"http://h\"\n"
                          "access_key_env = \"PORTICO_TEST_KEY\"\nsecret_key_env = \"PORTICO_TEST_KEY\"\n"
                          "[origins.t] #<3>\nroot = \"www\"\n",
     {"<1> origins.d.root: missing required key", "<2> origins.s.bucket: missing required key",
      "<3> origins.t.type: missing required key"}},
    {"OriginKeyOfAnotherType", "[origins.h]\ntype = \"http\"\nendpoint = \"http://127.0.0.1:1\"\nfunction = \"f\" #<1>\n",
     {"<1> origins.h.function: unknown key"}},
    {"OriginEndpoint", "[origins.legacy]\ntype = \"http\"\nendpoint = \"ftp://127.0.0.1\" #<1>\n"
                       "[origins.l2]\ntype = \"lambda\"\nfunction = \"x\"\nendpoint = \"http://h:0\" #<2>\n",
     {"<1> origins.legacy.endpoint: must be an http:// or https:// URL", "<2> origins.l2.endpoint: has an invalid port"}},
    {"DirRoot", "[origins.d1]\ntype = \"dir\"\nroot = \"nope\" #<1>\n[origins.d2]\ntype = \"dir\"\nroot = \"file.txt\" #<2>\n",
     {"<1> origins.d1.root: directory does not exist: ", "<2> origins.d2.root: not a directory: "}},
    {"S3EnvUnset", "[origins.s] #<1>\ntype = \"s3\"\nendpoint = \"http://h\"\nbucket = \"b\"\n"
                   "access_key_env = \"PORTICO_TEST_UNSET\" #<2>\nsecret_key_env = \"PORTICO_TEST_KEY\"\n",
     {"<2> origins.s.access_key_env: environment variable PORTICO_TEST_UNSET is not set"}},
    {"OriginTimeout", "[origins.l]\ntype = \"lambda\"\nendpoint = \"http://h\"\nfunction = \"f\"\ntimeout_ms = 0 #<1>\n",
     {"<1> origins.l.timeout_ms: must be > 0"}},
    // ---- sites
    {"SiteUnknownOrigin", "[[sites]]\nname = \"w\"\nhosts = [\"a.test\"]\norigin = \"nope\" #<1>\n"
                          "  [[sites.behaviors]]\n  path = \"/x/*\"\n  origin = \"nada\" #<2>\n",
     {"<1> sites[0].origin: unknown origin \"nope\" (defined: files, fn)", "<2> sites[0].behaviors[0].origin: unknown origin"}},
    {"SiteMissingKeys", "[[sites]] #<1>\nname = \"w\"\n", {"<1> sites[0].hosts: missing required key", "<1> sites[0].origin: missing required key"}},
    {"SiteTtlOrder", kSite + "default_ttl_s = 10 #<1>\nmin_ttl_s = 20\n",
     {"<1> sites[0].default_ttl_s: requires min_ttl_s <= default_ttl_s <= max_ttl_s (got 20 <= 10 <= 31536000)"}},
    {"BehaviorTtlOrderAfterFallback", kSite + "default_ttl_s = 60\nmax_ttl_s = 100\n  [[sites.behaviors]]\n  path = \"/a/*\"\n  default_ttl_s = 50\n"
                                              "  [[sites.behaviors]]\n  path = \"/b/*\"\n  default_ttl_s = 200 #<1>\n",
     {"<1> sites[0].behaviors[1].default_ttl_s: requires min_ttl_s <= default_ttl_s <= max_ttl_s (got 0 <= 200 <= 100)"}},
    {"NegativeTtl", kSite + "  [[sites.behaviors]]\n  path = \"/a\"\n  min_ttl_s = -1 #<1>\n",
     {"<1> sites[0].behaviors[0].min_ttl_s: must be in [0, 3153600000] (got -1)"}},
    {"ErrorPages", kSite + "error_pages = [ { status = 200, path = \"404.html\" } ] #<1>\n",
     {"<1> sites[0].error_pages[0].status: must be in [400, 599] (got 200)", "<1> sites[0].error_pages[0].path: must start with '/'"}},
    {"DuplicateBehaviorPattern", kSite + "  [[sites.behaviors]]\n  path = \"/a/*\"\n  [[sites.behaviors]]\n  path = \"/a/*\" #<1>\n",
     {"<1> sites[0].behaviors[1].path: duplicate path pattern \"/a/*\""}},
    {"DuplicateNamesAndHosts", kSite + "[[sites]]\nname = \"www\" #<1>\nhosts = [\"A.test\"] #<2>\norigin = \"files\"\n"
                                       "[[apis]]\nname = \"api\"\nhosts = [\"a.test\", \"b:80\"] #<3>\n[[apis.stages]]\nname = \"p\"\n",
     {"<1> sites[1].name: name \"www\" is already used by sites[0]", "<2> sites[1].hosts[0]: host \"a.test\" is already served by sites[0]",
      "<3> apis[0].hosts[0]: host \"a.test\" is already served by sites[0]", "<3> apis[0].hosts[1]: \"b:80\" must not include a port"}},
    // ---- apis
    {"ApiNoStages", "[[apis]] #<1>\nname = \"a\"\nhosts = [\"api.test\"]\n",
     {"<1> apis[0].stages: an API needs at least one stage"}},
    {"StageNames", kApi + "[[apis.stages]]\nname = \"prod\" #<1>\n[[apis.stages]]\nname = \"v1/beta\" #<2>\n",
     {"<1> apis[0].stages[1].name: duplicate stage name \"prod\"", "<2> apis[0].stages[2].name: must be a single path segment"}},
    {"StageCache", kApi + "cache = { enabled = true, ttl_s = 3601, unauthorized_invalidation = \"drop\" } #<1>\n"
                          "throttle = { rate = -1, burst = \"x\" } #<2>\n",
     {"<1> apis[0].stages[0].cache.ttl_s: must be in [0, 3600] (got 3601)",
      "<1> apis[0].stages[0].cache.unauthorized_invalidation: must be one of fail, ignore_with_warning, ignore",
      "<2> apis[0].stages[0].throttle.rate: must be a finite number >= 0", "<2> apis[0].stages[0].throttle.burst: expected a number"}},
    {"StageAccess", kApi + "api_keys_env = \"PORTICO_TEST_UNSET_KEYS_VAR\" #<1>\n"
                           "[[apis.routes]]\npath = \"/a\"\norigin = \"fn\"\nauthorizer = \"ghost\" #<2>\n"
                           "cache_methods = [\"GET\", \"POST\"] #<3>\nthrottle = { rate = 0 } #<4>\n",
     {"<1> apis[0].stages[0].api_keys_env: environment variable PORTICO_TEST_UNSET_KEYS_VAR is not set",
      "<2> apis[0].routes[0].authorizer: no authorizer \"ghost\"",
      "<3> apis[0].routes[0].cache_methods: \"POST\" cannot be cached",
      "<4> apis[0].routes[0].throttle.rate: must be > 0"}},
    {"RouteOriginXorMock", kApi + "[[apis.routes]] #<1>\npath = \"/a\"\n[[apis.routes]]\npath = \"/b\"\norigin = \"fn\"\n"
                                  "mock = { status = 200 } #<2>\n[[apis.routes]]\npath = \"/c\"\norigin = \"ghost\" #<3>\n",
     {"<1> apis[0].routes[0]: needs exactly one of \"origin\" and \"mock\"", "<2> apis[0].routes[1].mock: a route has either",
      "<3> apis[0].routes[2].origin: unknown origin \"ghost\""}},
    {"RouteMethodAndPath", kApi + "[[apis.routes]]\nmethod = \"FETCH\" #<1>\npath = \"bill\" #<2>\norigin = \"fn\"\n"
                                  "[[apis.routes]]\npath = \"/{a+}/b\" #<3>\norigin = \"fn\"\n[[apis.routes]]\npath = \"/x/{b\" #<4>\norigin = \"fn\"\n"
                                  "[[apis.routes]]\npath = \"/x//y\" #<5>\norigin = \"fn\"\n[[apis.routes]]\npath = \"/{a}/{a}\" #<6>\norigin = \"fn\"\n",
     {"<1> apis[0].routes[0].method: must be one of GET HEAD POST PUT DELETE PATCH OPTIONS ANY",
      "<2> apis[0].routes[0].path: must start with '/'", "<3> apis[0].routes[1].path: greedy parameter {a+} must be the last segment",
      "<4> apis[0].routes[2].path: segment \"{b\" must be a literal, {name} or {name+}",
      "<5> apis[0].routes[3].path: must not contain empty segments", "<6> apis[0].routes[4].path: parameter {a} appears twice"}},
    {"DuplicateRoute", kApi + "[[apis.routes]]\nmethod = \"get\"\npath = \"/bill/{id}\"\norigin = \"fn\"\n"
                              "[[apis.routes]]\nmethod = \"ANY\"\npath = \"/bill/{id}\"\norigin = \"fn\"\n"
                              "[[apis.routes]]\nmethod = \"GET\"\npath = \"/bill/{other}\" #<1>\norigin = \"fn\"\n",
     {"<1> apis[0].routes[2].path: duplicate route GET /bill/{other} (same as apis[0].routes[0])"}},
    {"CacheKeyPathNotAParam", kApi + "[[apis.routes]]\npath = \"/bill/{id}\"\norigin = \"fn\"\n"
                                     "cache_key = { path = [\"id\", \"month\"], query = 3 } #<1>\ncache_ttl_s = 4000 #<2>\n",
     {"<1> apis[0].routes[0].cache_key.path: \"month\" is not a parameter of /bill/{id}",
      "<1> apis[0].routes[0].cache_key.query: expected an array of strings", "<2> apis[0].routes[0].cache_ttl_s: must be in [0, 3600]"}},
    {"MockStatus", kApi + "[[apis.routes]]\npath = \"/m\"\nmock = { status = 99, headers = { X = 1 } } #<1>\n",
     {"<1> apis[0].routes[0].mock.status: must be in [100, 599] (got 99)", "<1> apis[0].routes[0].mock.headers.X: expected a string"}},
    {"CorsMethods", "[[apis]]\nname = \"api\"\nhosts = [\"api.test\"]\n"
                    "cors = { allow_methods = [\"GET\", \"BREW\"], max_age_s = -1 } #<1>\n[[apis.stages]]\nname = \"p\"\n",
     {"<1> apis[0].cors.allow_methods: \"BREW\" is not one of", "<1> apis[0].cors.max_age_s: must be in [0, 3153600000] (got -1)"}},
    // ---- limits: hostile input is an error, not a crash or a hang
    {"NestingTooDeep", "!a = " + std::string(100000, '[') + std::string(100000, ']') + " #<1>\n",
     {"<1> arrays/tables nested deeper than 32 levels"}},
    {"DottedKeyBomb", "!" + [] { std::string s; for (int i = 0; i < 50000; ++i) s += "a."; return s; }() + "b = 1 #<1>\n",
     {"<1> more than 64 dotted key parts on one line"}},
};

INSTANTIATE_TEST_SUITE_P(Conf, ConfigErrorsTest, ::testing::ValuesIn(kCases),
                         [](const ::testing::TestParamInfo<ErrorCase>& info) { return std::string(info.param.name); });

// One file with problems in every section: all are reported, in file order, none masks another.
TEST(ConfigErrorsTest, ReportsEveryErrorInOneFile) {
  ScratchDir dir;
  const std::string text = R"([server]
workers = -1
listen = ["127.0.0.1:8080", "bad"]
[cache]
memory = "lots"
[origins.a]
type = "dir"
root = "missing"
[[sites]]
name = "w"
hosts = ["x.test"]
origin = "b"
colour = "blue"
[[apis]]
name = "api"
hosts = ["x.test"]
)";
  const LoadResult r = parseConfig(text, "t.toml", dir.str());
  std::vector<std::string> got;
  for (const ConfigError& e : r.errors) {
    const std::string s = e.toString();  // "t.toml:2: server.workers: reason" -> up to the key
    got.push_back(s.substr(0, s.find(": ", s.find(": ") + 2)));
  }
  const std::vector<std::string> want = {
      "t.toml:2: server.workers", "t.toml:3: server.listen[1]", "t.toml:5: cache.memory",   "t.toml:8: origins.a.root",
      "t.toml:12: sites[0].origin", "t.toml:13: sites[0].colour", "t.toml:14: apis[0].stages", "t.toml:16: apis[0].hosts[0]",
  };
  EXPECT_EQ(got, want);
  EXPECT_EQ(r.config, nullptr);
}

// Suspicious but valid: warnings, not errors, each at its key's line.
TEST(ConfigWarningsTest, StageCacheRoutesWithoutFullCacheKey) {
  ScratchDir dir;
  dir.mkdir("www");
  const std::string text = std::string(kBase) + R"([[apis]]
name = "api"
hosts = ["api.test"]
  [[apis.stages]]
  name = "prod"
  cache = { enabled = true }
  [[apis.routes]]
  path = "/search"
  origin = "fn"
  [[apis.routes]]
  method = "GET"
  path = "/item/{id}/{rev}"
  origin = "fn"
  cache_key = { path = ["id"] }
  [[apis.routes]]
  method = "POST"
  path = "/item/{id}"
  origin = "fn"
  [[apis.routes]]
  path = "/ok/{id}"
  origin = "fn"
  cache_key = { path = ["id"] }
  [[apis.routes]]
  path = "/mock/{id}"
  mock = { body = "x" }
[[sites]]
name = "www"
hosts = ["www.test"]
origin = "files"
)";
  const LoadResult r = parseConfig(text, "t.toml", dir.str());
  ASSERT_TRUE(r.ok());
  std::vector<std::string> got;
  for (const ConfigWarning& w : r.warnings) got.push_back(w.toString());
  ASSERT_EQ(got.size(), 2u) << ::testing::PrintToString(got);
  EXPECT_TRUE(got[0].starts_with("t.toml:17: apis[0].routes[0].path: stage \"prod\" caches this route but it has no cache_key"))
      << got[0];
  EXPECT_TRUE(got[1].starts_with("t.toml:23: apis[0].routes[1].cache_key: stage \"prod\" caches this route but its cache "
                                 "key omits {rev}"))
      << got[1];
}

}  // namespace
}  // namespace portico::conf
