#pragma once
// The configuration as plain, frozen value types (style.md G12). conf/ depends on std only.
// Parsed from TOML by config_parser, validated there (with file:line errors), then shared
// read-only as std::shared_ptr<const Config> by every worker. Nothing at run time reads TOML.
//
// Every key of ../shared/docs/portico.example.toml maps to a field here; defaults are the
// values a user gets when the key is absent.
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

namespace portico::conf {

struct ListenAddress {
  std::string host;  // "127.0.0.1", "::1", "0.0.0.0"; IPv6 without brackets
  int port = 0;      // 0: any free port (tests)
  std::string toString() const;  // "127.0.0.1:8080" / "[::1]:8080"
};

struct TlsCertificate {
  std::string cert;  // path (resolved against the conf file's directory if relative)
  std::string key;
  int line = 0;  // line of this certificates[i] entry in the conf (for `portico -t` messages)
};

struct TlsConfig {
  std::vector<ListenAddress> listen;
  std::vector<TlsCertificate> certificates;
  std::string min_version = "TLSv1.2";  // "TLSv1.2" | "TLSv1.3"
  bool redirect_http = false;
  std::int64_t hsts_max_age_s = 0;
};

struct ServerConfig {
  int workers = 0;  // 0: one per core
  std::vector<ListenAddress> listen;
  std::uint64_t max_header_bytes = 65536;
  std::uint64_t max_body_bytes = 10 * 1024 * 1024;
  std::uint64_t header_timeout_ms = 10000;
  std::uint64_t idle_timeout_ms = 60000;
  std::uint64_t drain_timeout_ms = 10000;  // SIGTERM: in-flight requests get this long
  std::string access_log = "-";            // "-" stdout, "off", or a path
  std::optional<TlsConfig> tls;
};

struct AdminConfig {
  std::optional<ListenAddress> listen;  // absent: no admin listener
  std::string token_env = "PORTICO_ADMIN_TOKEN";
};

struct CacheConfig {
  std::uint64_t memory = 256ull << 20;
  std::uint64_t max_object = 16ull << 20;
  std::string redis;  // "" = off; else a redis:// URL (conf/redis_url.h), checked when parsed
  std::uint64_t redis_max_object = 1ull << 20;
  std::string redis_password_env;  // "": the URL's password (if any); else read from this var
  bool redis_cluster = false;      // the URL names one node of a Redis Cluster (db must be 0)
};

// ---- origins --------------------------------------------------------------------------------

struct DirOrigin {
  std::string root;  // absolute after loading (relative paths resolve against the conf's dir)
};

struct S3Origin {
  std::string endpoint;
  std::string bucket;
  std::string region = "us-east-1";
  std::string access_key_env = "AWS_ACCESS_KEY_ID";
  std::string secret_key_env = "AWS_SECRET_ACCESS_KEY";
  std::uint64_t timeout_ms = 10000;
  // x-amz-meta-* (user metadata) passed to clients; off by default: metadata often carries
  // internal notes (uploader, build ids) that S3 static hosting users do not mean to publish.
  bool expose_metadata = false;
};

struct LambdaOrigin {
  std::string endpoint;  // "http://127.0.0.1:9001"
  std::string function;
  std::uint64_t timeout_ms = 29000;
};

struct HttpOrigin {
  std::string endpoint;  // "http://127.0.0.1:9002" (may carry a base path)
  std::uint64_t timeout_ms = 10000;
  std::uint64_t connect_timeout_ms = 2000;
};

struct OriginConfig {
  std::string name;
  std::variant<DirOrigin, S3Origin, LambdaOrigin, HttpOrigin> spec;
  std::string_view typeName() const;  // "dir" | "s3" | "lambda" | "http"
};

// ---- sites (CloudFront distribution analog) ---------------------------------------------------

struct ErrorPage {
  int status = 404;
  std::string path;      // "/404.html", fetched from the site's origin
  std::int64_t ttl_s = 10;
};

// A resolved behavior: every key filled in (from the behavior, else from the site).
struct Behavior {
  std::string path = "*";  // CloudFront path pattern: '*' any run of chars, '?' one char
  std::string origin;      // origin name
  std::int64_t default_ttl_s = 86400;
  std::int64_t min_ttl_s = 0;
  std::int64_t max_ttl_s = 31536000;
  bool query_in_key = true;
  bool compress = false;
  // Set for API stages only (cache::apiStageBehavior); sites keep the defaults.
  std::vector<std::string> store_methods;  // methods stored (empty: GET, HEAD answered from it)
  bool store_set_cookie = false;           // store answers that carry Set-Cookie
  enum class ErrorAnswers { Rfc, Never, Always };  // 5xx and 429 answers
  ErrorAnswers error_answers = ErrorAnswers::Rfc;
  // API Gateway's stage cache rules: every other status is stored for the TTL, and a request's
  // Authorization does not prevent storing (the identity is in the key only if cache_key says).
  bool api_stage = false;
};

struct Site {
  std::string name;
  std::vector<std::string> hosts;  // lower-case
  std::string index = "index.html";
  std::vector<ErrorPage> error_pages;
  // RFC 5861 windows for responses that name none themselves (0: none).
  std::int64_t stale_while_revalidate_s = 0;
  std::int64_t stale_if_error_s = 0;
  // The conf's [[sites.behaviors]] in order, then the site's default behavior (path "*") last,
  // so matching is "first match wins" over this list and always finds one.
  std::vector<Behavior> behaviors;
};

// ---- APIs (API Gateway REST API analog) -------------------------------------------------------

struct Cors {
  std::vector<std::string> allow_origins;
  std::vector<std::string> allow_methods;
  std::vector<std::string> allow_headers;
  std::int64_t max_age_s = 0;
};

struct StageCache {
  bool enabled = false;
  std::int64_t ttl_s = 300;  // 0 disables; > 3600 is an error
  std::uint64_t capacity = 0;  // 0: no own budget (shares the memory tier)
  bool require_authorization_to_invalidate = true;
  std::string unauthorized_invalidation = "ignore_with_warning";  // fail | ignore_with_warning | ignore
  // API Gateway's known pitfalls, avoided by default: answers carrying Set-Cookie, and 5xx / 429
  // answers, are not stored unless these say so.
  bool cache_set_cookie = false;
  bool cache_errors = false;
};

struct Throttle {
  double rate = 0;   // requests per second; 0: unlimited
  double burst = 0;
};

struct Stage {
  std::string name;
  std::map<std::string, std::string> variables;
  StageCache cache;
  std::optional<Throttle> throttle;
  std::string api_keys_env;           // env var holding the stage's API keys, comma-separated
  std::vector<std::string> api_keys;  // read from it at load time
};

// A JWT authorizer ([apis.authorizers.NAME], type = "jwt"): RS256 / ES256 tokens verified
// against the keys of a JWKS file (read and checked at load time by the proxy layer).
struct Authorizer {
  std::string name;
  std::string type = "jwt";
  std::string jwks_file;  // absolute after loading
  std::string issuer;
  std::vector<std::string> audience;
  int line = 0;           // for errors found when the keys are loaded
};

struct CacheKeySpec {
  std::vector<std::string> path;     // path parameter names
  std::vector<std::string> query;    // query parameter names
  std::vector<std::string> headers;  // header names
};

struct MockResponse {
  int status = 200;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
};

struct ApiRoute {
  std::string method = "ANY";  // upper-case method or "ANY"
  std::string path;            // resource template: "/bill/{id}", "/legacy/{proxy+}"
  std::string origin;          // origin name; empty when mock is set
  std::optional<MockResponse> mock;
  CacheKeySpec cache_key;
  std::optional<std::int64_t> cache_ttl_s;
  std::vector<std::string> cache_methods = {"GET"};  // GET, plus HEAD / OPTIONS when opted in
  bool api_key_required = false;
  std::string authorizer;            // name in Api::authorizers, "" for none
  std::optional<Throttle> throttle;  // on top of the stage's
};

struct Api {
  std::string name;
  std::vector<std::string> hosts;  // lower-case
  std::optional<Cors> cors;
  std::map<std::string, Authorizer> authorizers;
  std::vector<Stage> stages;
  std::vector<ApiRoute> routes;
};

struct Config {
  std::string source_path;  // the file it was loaded from ("<embedded>" for the demo default)
  ServerConfig server;
  AdminConfig admin;
  CacheConfig cache;
  std::map<std::string, OriginConfig> origins;
  std::vector<Site> sites;
  std::vector<Api> apis;
};

using ConfigPtr = std::shared_ptr<const Config>;

}  // namespace portico::conf
