#pragma once
// RouteTable: compiled once from a Config (style.md G12), then read-only and shared by all
// workers. Maps (host, method, path) to what serves the request.
//
// Sites: the Host picks the site; behaviors are matched against the decoded path with
// CloudFront path patterns ('*' matches any run of characters including '/', '?' exactly one
// character; a pattern without a leading '/' matches as if it had one), first match wins.
//
// APIs: the Host picks the API; the first path segment names the stage; the rest of the path
// (the resource path, always starting with '/') is matched against the routes' resource
// templates: literal segments, "{name}" (exactly one non-empty segment), and a final
// "{name+}" (one or more segments, greedy). Among matching routes the most specific wins, as in
// API Gateway: a route with more literal segments beats one with fewer; a single-segment
// parameter beats a greedy one; an exact method beats ANY.
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "conf/config.h"

namespace portico::conf {

enum class RouteKind {
  NoHost,      // no site or API serves this Host -> 404
  Site,        // site + behavior
  ApiNoStage,  // API host, but the first segment is not a stage -> 403 Missing Authentication Token
  ApiNoRoute,  // stage found, no route for this method and resource path -> 403 as above
  Api,         // api + stage + route
};

struct RouteMatch {
  RouteKind kind = RouteKind::NoHost;
  const Site* site = nullptr;
  const Behavior* behavior = nullptr;
  const Api* api = nullptr;
  const Stage* stage = nullptr;
  const ApiRoute* route = nullptr;
  std::string resource_path;  // API: the request path without the stage prefix ("/bill/42")
  std::vector<std::pair<std::string, std::string>> path_params;  // API: {"id","42"}; greedy: {"proxy","a/b"}
};

class RouteTable {
 public:
  // `config` must outlive the table (both live in the same snapshot).
  explicit RouteTable(const Config& config);
  ~RouteTable();

  // `host` is normalized (lower-case, no port). `path` is the percent-decoded path.
  RouteMatch match(std::string_view host, std::string_view method, std::string_view path) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// CloudFront path-pattern match (pure). Exposed for tests.
bool matchPathPattern(std::string_view pattern, std::string_view path);

// API resource template match (pure). On success fills `params`. Exposed for tests.
bool matchResourceTemplate(std::string_view tmpl, std::string_view path,
                           std::vector<std::pair<std::string, std::string>>& params);

// Percent-decodes `in` into `out`. Returns false on a malformed escape or a decoded NUL byte.
bool percentDecode(std::string_view in, std::string& out);

}  // namespace portico::conf
