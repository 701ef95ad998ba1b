// Section readers for [[sites]] (CloudFront distribution analog) and [[apis]] (API Gateway REST
// API analog).
#include <algorithm>
#include <cstdlib>
#include <variant>

#include "conf/parse_sections.h"
#include "conf/resource_template.h"
#include "conf/value_checks.h"

namespace portico::conf {

namespace {

// ---- sites --------------------------------------------------------------------------------

// Reads the cache keys shared by a site (its default behavior) and its behaviors into `b`, which
// arrives holding the fallback values. Returns whether any TTL key was set here.
bool readBehaviorKeys(TableReader& t, ParseContext& ctx, Behavior& b) {
  std::string origin;
  if (t.getString("origin", origin)) {
    ctx.checkOriginRef(t, "origin", origin);
    b.origin = origin;
  }
  bool ttl_set = false;
  ttl_set |= t.getInt("default_ttl_s", b.default_ttl_s, 0, kMaxTtlSeconds);
  ttl_set |= t.getInt("min_ttl_s", b.min_ttl_s, 0, kMaxTtlSeconds);
  ttl_set |= t.getInt("max_ttl_s", b.max_ttl_s, 0, kMaxTtlSeconds);
  t.getBool("query_in_key", b.query_in_key);
  t.getBool("compress", b.compress);
  return ttl_set;
}

// min <= default <= max, checked on the resolved values; reported at the first TTL key this
// table sets (so an inherited bad value is blamed on the key that made it bad).
void checkTtlOrder(TableReader& t, const Behavior& b) {
  if (b.min_ttl_s <= b.default_ttl_s && b.default_ttl_s <= b.max_ttl_s) return;
  const char* key = "default_ttl_s";
  for (const char* k : {"default_ttl_s", "min_ttl_s", "max_ttl_s"}) {
    if (t.has(k)) {
      key = k;
      break;
    }
  }
  t.error(key, "requires min_ttl_s <= default_ttl_s <= max_ttl_s (got " + std::to_string(b.min_ttl_s) +
                   " <= " + std::to_string(b.default_ttl_s) + " <= " + std::to_string(b.max_ttl_s) + ")");
}

std::string checkPathPattern(std::string_view pattern) {
  if (pattern.empty()) return "must not be empty";
  if (pattern.size() > 255) return "must be at most 255 characters";
  for (char c : pattern) {
    if (static_cast<unsigned char>(c) <= ' ' || c == 0x7f) return "must not contain spaces or control characters";
  }
  return {};
}

void readErrorPages(TableReader& site, std::vector<ErrorPage>& out) {
  std::set<int> statuses;
  for (TableReader& t : site.tableArray("error_pages")) {
    ErrorPage page;
    if (t.require("status") && t.getInt("status", page.status, 400, 599) && !statuses.insert(page.status).second) {
      t.error("status", "another error page already handles status " + std::to_string(page.status));
    }
    if (t.requireString("path", page.path) && page.path.front() != '/') t.error("path", "must start with '/'");
    t.getInt("ttl_s", page.ttl_s, 0, kMaxTtlSeconds);
    out.push_back(std::move(page));
  }
}

void readSite(TableReader& t, ParseContext& ctx) {
  Site site;
  if (t.requireString("name", site.name)) ctx.claimName(t, "name", site.name);
  if (t.require("hosts") && t.getStringList("hosts", site.hosts)) ctx.claimHosts(t, "hosts", site.hosts);
  if (t.getString("index", site.index) &&
      (site.index.empty() || site.index.find('/') != std::string::npos)) {
    t.error("index", "must be a file name (non-empty, no '/')");
  }
  readErrorPages(t, site.error_pages);
  t.getInt("stale_while_revalidate_s", site.stale_while_revalidate_s, 0, kMaxTtlSeconds);
  t.getInt("stale_if_error_s", site.stale_if_error_s, 0, kMaxTtlSeconds);

  Behavior base;  // the site's default behavior; behaviors fall back to it
  t.require("origin");
  readBehaviorKeys(t, ctx, base);
  checkTtlOrder(t, base);

  std::set<std::string> patterns;
  for (TableReader& bt : t.tableArray("behaviors")) {
    Behavior b = base;
    if (bt.requireString("path", b.path)) {
      if (std::string why = checkPathPattern(b.path); !why.empty()) {
        bt.error("path", why);
      } else if (!patterns.insert(b.path).second) {
        bt.error("path", "duplicate path pattern \"" + b.path + "\" in this site");
      } else if (b.path == "*" || b.path == "/*") {
        bt.warning("path", "matches every path: later behaviors and the site's defaults never apply");
      }
    }
    if (readBehaviorKeys(bt, ctx, b)) checkTtlOrder(bt, b);
    site.behaviors.push_back(std::move(b));
  }
  base.path = "*";
  site.behaviors.push_back(std::move(base));
  ctx.config.sites.push_back(std::move(site));
}

// ---- apis ---------------------------------------------------------------------------------

void readCors(TableReader& t, Cors& cors) {
  t.getStringList("allow_origins", cors.allow_origins);
  if (t.getStringList("allow_methods", cors.allow_methods)) {
    for (std::string& m : cors.allow_methods) {
      m = toUpperAscii(m);
      if (m != "*" && (m == "ANY" || !isRouteMethod(m))) {
        t.error("allow_methods", "\"" + m + "\" is not one of GET HEAD POST PUT DELETE PATCH OPTIONS or \"*\"");
      }
    }
  }
  t.getStringList("allow_headers", cors.allow_headers);
  t.getInt("max_age_s", cors.max_age_s, 0, kMaxTtlSeconds);
}

Throttle readThrottle(TableReader& t) {
  Throttle throttle;
  t.require("rate");
  if (t.getNumber("rate", throttle.rate, 0) && throttle.rate <= 0) {
    t.error("rate", "must be > 0 requests per second");
  }
  throttle.burst = std::max(throttle.rate, 1.0);
  if (t.getNumber("burst", throttle.burst, 0) && throttle.burst < 1) {
    t.error("burst", "must be at least 1");
  }
  return throttle;
}

void readStage(TableReader& t, std::set<std::string>& names, Stage& stage) {
  if (t.requireString("name", stage.name)) {
    const bool segment_ok = stage.name != "." && stage.name != ".." &&
                            std::none_of(stage.name.begin(), stage.name.end(), [](char c) {
                              return c == '/' || c == '%' || c == '?' || c == '#' ||
                                     static_cast<unsigned char>(c) <= ' ' || c == 0x7f;
                            });
    if (!segment_ok) {
      t.error("name", "must be a single path segment (no '/', '%', '?', '#' or spaces)");
    } else if (!names.insert(stage.name).second) {
      t.error("name", "duplicate stage name \"" + stage.name + "\" in this API");
    }
  }
  std::vector<std::pair<std::string, std::string>> vars;
  if (t.getStringPairs("variables", vars)) stage.variables.insert(vars.begin(), vars.end());
  if (std::optional<TableReader> c = t.table("cache")) {
    StageCache& sc = stage.cache;
    c->getBool("enabled", sc.enabled);
    c->getInt("ttl_s", sc.ttl_s, 0, kMaxStageCacheTtlSeconds);
    c->getSize("capacity", sc.capacity, 0);
    c->getBool("require_authorization_to_invalidate", sc.require_authorization_to_invalidate);
    if (c->getString("unauthorized_invalidation", sc.unauthorized_invalidation) &&
        sc.unauthorized_invalidation != "fail" && sc.unauthorized_invalidation != "ignore_with_warning" &&
        sc.unauthorized_invalidation != "ignore") {
      c->error("unauthorized_invalidation", "must be one of fail, ignore_with_warning, ignore");
    }
    c->getBool("cache_set_cookie", sc.cache_set_cookie);
    c->getBool("cache_errors", sc.cache_errors);
  }
  if (std::optional<TableReader> th = t.table("throttle")) stage.throttle = readThrottle(*th);
  if (t.getString("api_keys_env", stage.api_keys_env)) {
    const char* value = stage.api_keys_env.empty() ? nullptr : std::getenv(stage.api_keys_env.c_str());
    if (stage.api_keys_env.empty()) {
      t.error("api_keys_env", "must name an environment variable");
    } else if (value == nullptr) {
      t.error("api_keys_env", "environment variable " + stage.api_keys_env + " is not set");
    } else {
      std::string_view list(value);
      while (!list.empty()) {
        std::size_t comma = list.find(',');
        std::string_view key = list.substr(0, comma);
        while (!key.empty() && (key.front() == ' ' || key.front() == '\t')) key.remove_prefix(1);
        while (!key.empty() && (key.back() == ' ' || key.back() == '\t')) key.remove_suffix(1);
        if (!key.empty()) stage.api_keys.emplace_back(key);
        if (comma == std::string_view::npos) break;
        list.remove_prefix(comma + 1);
      }
      if (stage.api_keys.empty()) {
        t.error("api_keys_env", "environment variable " + stage.api_keys_env + " holds no key");
      }
    }
  }
}

void readAuthorizer(TableReader& t, ParseContext& ctx, const std::string& name, Authorizer& a) {
  a.name = name;
  a.line = t.line();
  if (t.getString("type", a.type) && a.type != "jwt") t.error("type", "must be \"jwt\" (got \"" + a.type + "\")");
  if (t.requireString("jwks_file", a.jwks_file)) a.jwks_file = resolvePath(ctx.base_dir, a.jwks_file);
  t.getString("issuer", a.issuer);
  if (t.has("audience")) {
    std::string one;
    if (t.isString("audience")) {
      t.getString("audience", one);
      a.audience.push_back(one);
    } else {
      t.getStringList("audience", a.audience);
    }
  }
}

void readMock(TableReader& t, MockResponse& mock) {
  t.getInt("status", mock.status, 100, 599);
  t.getStringPairs("headers", mock.headers);
  t.getString("body", mock.body);
}

// Returns the compiled template (empty segments and false when the path is invalid).
bool readRoute(TableReader& t, ParseContext& ctx, ApiRoute& route, ResourceTemplate& tmpl) {
  if (t.getString("method", route.method)) {
    route.method = toUpperAscii(route.method);
    if (!isRouteMethod(route.method)) t.error("method", "must be one of GET HEAD POST PUT DELETE PATCH OPTIONS ANY");
  }
  bool tmpl_ok = false;
  if (t.requireString("path", route.path)) {
    if (std::string why = compileResourceTemplate(route.path, tmpl); !why.empty()) t.error("path", why);
    else tmpl_ok = true;
  }
  const bool has_origin = t.has("origin");
  const bool has_mock = t.has("mock");
  if (has_origin == has_mock) {
    if (has_mock) t.error("mock", "a route has either \"origin\" or \"mock\", not both");
    else ctx.diag.error(t.line(), t.path(), "needs exactly one of \"origin\" and \"mock\"");
  }
  if (t.getString("origin", route.origin)) ctx.checkOriginRef(t, "origin", route.origin);
  if (std::optional<TableReader> m = t.table("mock")) {
    route.mock.emplace();
    readMock(*m, *route.mock);
  }
  if (std::optional<TableReader> k = t.table("cache_key")) {
    CacheKeySpec& key = route.cache_key;
    if (k->getStringList("path", key.path) && tmpl_ok) {
      for (const std::string& name : key.path) {
        if (!tmpl.hasParam(name)) k->error("path", "\"" + name + "\" is not a parameter of " + route.path);
      }
    }
    k->getStringList("query", key.query);
    k->getStringList("headers", key.headers);
  }
  std::int64_t ttl = 0;
  if (t.getInt("cache_ttl_s", ttl, 0, kMaxStageCacheTtlSeconds)) route.cache_ttl_s = ttl;
  if (t.getStringList("cache_methods", route.cache_methods)) {
    for (std::string& m : route.cache_methods) {
      m = toUpperAscii(m);
      if (m != "GET" && m != "HEAD" && m != "OPTIONS") {
        t.error("cache_methods", "\"" + m + "\" cannot be cached (GET, HEAD, OPTIONS)");
      }
    }
  }
  t.getBool("api_key_required", route.api_key_required);
  t.getString("authorizer", route.authorizer);
  if (std::optional<TableReader> th = t.table("throttle")) route.throttle = readThrottle(*th);
  return tmpl_ok;
}

// A caching stage keys a route on its resource path plus the declared cache_key parameters only
// (as API Gateway does): path parameters left out make different resources share one entry, and
// a route without any cache_key ignores the query string. Both are legal, hence warnings.
void warnUncachedParams(TableReader& t, const Api& api, const ApiRoute& route, const ResourceTemplate& tmpl) {
  if (route.mock) return;
  const auto caching = std::find_if(api.stages.begin(), api.stages.end(),
                                    [](const Stage& s) { return s.cache.enabled && s.cache.ttl_s > 0; });
  if (caching == api.stages.end()) return;
  if (route.method != "GET" && route.method != "ANY") return;
  std::vector<std::string> missing;
  for (const TemplateSegment& s : tmpl.segments) {
    if (s.kind != TemplateSegment::Kind::Literal &&
        std::find(route.cache_key.path.begin(), route.cache_key.path.end(), s.text) == route.cache_key.path.end()) {
      missing.push_back("{" + s.text + "}");
    }
  }
  if (missing.empty()) {
    if (!t.has("cache_key")) {
      t.warning("path", "stage \"" + caching->name + "\" caches this route but it has no cache_key: entries are keyed "
                        "on the resource path only (query strings and headers ignored)");
    }
    return;
  }
  std::string list;
  for (const std::string& m : missing) list += (list.empty() ? "" : ", ") + m;
  t.warning(t.has("cache_key") ? "cache_key" : "path",
            "stage \"" + caching->name + "\" caches this route but its cache key omits " + list +
                ": requests differing only there share one cache entry (add them to cache_key.path)");
}

// Route access settings against the API: the authorizer exists; API keys are required only
// where every stage has keys; an authorizer whose identity is not part of a caching stage's key
// shares cached answers across callers (API Gateway's pitfall: a warning, as it may be meant).
void checkAccess(TableReader& t, const Api& api, const ApiRoute& route) {
  if (!route.authorizer.empty() && !api.authorizers.count(route.authorizer)) {
    t.error("authorizer", "no authorizer \"" + route.authorizer + "\" in [apis.authorizers] of this API");
  }
  if (route.api_key_required) {
    for (const Stage& s : api.stages) {
      if (s.api_keys_env.empty()) {
        t.error("api_key_required", "stage \"" + s.name + "\" has no api_keys_env: no key could ever pass");
      }
    }
  }
  if (route.authorizer.empty() || route.mock) return;
  const auto caching = std::find_if(api.stages.begin(), api.stages.end(),
                                    [](const Stage& s) { return s.cache.enabled && s.cache.ttl_s > 0; });
  if (caching == api.stages.end()) return;
  const auto& h = route.cache_key.headers;
  const bool keyed = std::any_of(h.begin(), h.end(), [](const std::string& n) {
    return toUpperAscii(n) == "AUTHORIZATION";
  });
  if (!keyed) {
    t.warning("authorizer", "stage \"" + caching->name + "\" caches this route and its cache_key has no "
                            "\"Authorization\" header: cached answers are shared across callers");
  }
}

// Names referenced as ${stageVariables.NAME} in `text`.
std::vector<std::string> stageVariableRefs(std::string_view text) {
  static constexpr std::string_view kOpen = "${stageVariables.";
  std::vector<std::string> names;
  for (std::size_t at = text.find(kOpen); at != std::string_view::npos; at = text.find(kOpen, at + 1)) {
    std::size_t end = text.find('}', at);
    if (end == std::string_view::npos) break;
    names.emplace_back(text.substr(at + kOpen.size(), end - at - kOpen.size()));
  }
  return names;
}

// A route whose origin names ${stageVariables.x} needs x in every stage of the API.
void checkStageVariables(TableReader& t, const ParseContext& ctx, const Api& api, const ApiRoute& route) {
  auto oc = ctx.config.origins.find(route.origin);
  if (route.mock || oc == ctx.config.origins.end()) return;
  std::vector<std::string> refs;
  if (const auto* l = std::get_if<LambdaOrigin>(&oc->second.spec)) {
    refs = stageVariableRefs(l->endpoint);
    for (std::string& n : stageVariableRefs(l->function)) refs.push_back(std::move(n));
  } else if (const auto* h = std::get_if<HttpOrigin>(&oc->second.spec)) {
    refs = stageVariableRefs(h->endpoint);
  }
  for (const std::string& name : refs) {
    for (const Stage& stage : api.stages) {
      if (!stage.variables.count(name)) {
        t.error("origin", "origin \"" + route.origin + "\" uses ${stageVariables." + name +
                              "}, which stage \"" + stage.name + "\" does not define");
      }
    }
  }
}

void readApi(TableReader& t, ParseContext& ctx) {
  Api api;
  if (t.requireString("name", api.name)) ctx.claimName(t, "name", api.name);
  if (t.require("hosts") && t.getStringList("hosts", api.hosts)) ctx.claimHosts(t, "hosts", api.hosts);
  if (std::optional<TableReader> c = t.table("cors")) {
    api.cors.emplace();
    readCors(*c, *api.cors);
  }
  if (std::optional<TableReader> auths = t.table("authorizers")) {
    for (auto& [name, a] : auths->entries()) {
      Authorizer authorizer;
      readAuthorizer(a, ctx, name, authorizer);
      api.authorizers.emplace(name, std::move(authorizer));
    }
  }
  std::set<std::string> stage_names;
  for (TableReader& st : t.tableArray("stages")) {
    Stage stage;
    readStage(st, stage_names, stage);
    api.stages.push_back(std::move(stage));
  }
  if (api.stages.empty()) t.error("stages", "an API needs at least one stage ([[apis.stages]])");

  std::map<std::string, std::string> seen_routes;  // "METHOD shape" -> "apis[0].routes[1]"
  for (TableReader& rt : t.tableArray("routes")) {
    ApiRoute route;
    ResourceTemplate tmpl;
    if (readRoute(rt, ctx, route, tmpl)) {
      const std::string id = route.method + " " + tmpl.shape();
      const auto [it, fresh] = seen_routes.emplace(id, rt.path());
      if (!fresh) rt.error("path", "duplicate route " + route.method + " " + route.path + " (same as " + it->second + ")");
      warnUncachedParams(rt, api, route, tmpl);
    }
    checkAccess(rt, api, route);
    checkStageVariables(rt, ctx, api, route);
    api.routes.push_back(std::move(route));
  }
  if (api.routes.empty()) t.warning("routes", "API has no routes: every request gets 403");
  ctx.config.apis.push_back(std::move(api));
}

}  // namespace

void readSites(TableReader& root, ParseContext& ctx) {
  for (TableReader& t : root.tableArray("sites")) readSite(t, ctx);
}

void readApis(TableReader& root, ParseContext& ctx) {
  for (TableReader& t : root.tableArray("apis")) readApi(t, ctx);
}

}  // namespace portico::conf
