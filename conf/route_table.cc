// RouteTable: the per-request lookup, compiled once from a Config. Hosts are a hash map; API
// resource templates are precompiled into segment vectors and pre-sorted by specificity, so
// match() is one hash lookup plus a first-match scan with no allocation beyond the result.
#include "conf/route_table.h"

#include <algorithm>
#include <functional>
#include <unordered_map>

#include "conf/resource_template.h"

namespace portico::conf {

namespace {

struct StringHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
};

// Glob over the whole of `path`: '*' any run (including '/'), '?' exactly one character. Greedy
// with single backtrack point: O(|pattern| * |path|) worst case, no recursion.
bool glob(std::string_view p, std::string_view s) {
  std::size_t pi = 0;
  std::size_t si = 0;
  std::size_t star = std::string_view::npos;
  std::size_t mark = 0;
  while (si < s.size()) {
    if (pi < p.size() && p[pi] == '*') {
      star = pi++;
      mark = si;
    } else if (pi < p.size() && (p[pi] == '?' || p[pi] == s[si])) {
      ++pi;
      ++si;
    } else if (star != std::string_view::npos) {
      pi = star + 1;
      si = ++mark;
    } else {
      return false;
    }
  }
  while (pi < p.size() && p[pi] == '*') ++pi;
  return pi == p.size();
}

int hexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Ranks a segment kind for the left-to-right tie-break: literal > {param} > {param+}.
int kindRank(TemplateSegment::Kind k) {
  switch (k) {
    case TemplateSegment::Kind::Literal: return 2;
    case TemplateSegment::Kind::Param: return 1;
    case TemplateSegment::Kind::Greedy: return 0;
  }
  return 0;
}

}  // namespace

struct RouteTable::Impl {
  struct HostEntry {
    const Site* site = nullptr;
    std::size_t api = 0;  // index into apis when site is null
  };
  struct CompiledRoute {
    ResourceTemplate tmpl;
    const ApiRoute* route = nullptr;
    bool any_method = false;
  };
  struct CompiledApi {
    const Api* api = nullptr;
    std::vector<CompiledRoute> routes;  // most specific first
  };

  std::unordered_map<std::string, HostEntry, StringHash, std::equal_to<>> hosts;
  std::vector<CompiledApi> apis;

  // True if `a` must be tried before `b` (the header's specificity rules, then a left-to-right
  // segment comparison; equal ones keep config order via stable_sort).
  static bool moreSpecific(const CompiledRoute& a, const CompiledRoute& b) {
    const int la = a.tmpl.literalCount();
    const int lb = b.tmpl.literalCount();
    if (la != lb) return la > lb;
    if (a.tmpl.greedy() != b.tmpl.greedy()) return !a.tmpl.greedy();
    const std::size_t n = std::min(a.tmpl.segments.size(), b.tmpl.segments.size());
    for (std::size_t i = 0; i < n; ++i) {
      const int ra = kindRank(a.tmpl.segments[i].kind);
      const int rb = kindRank(b.tmpl.segments[i].kind);
      if (ra != rb) return ra > rb;
    }
    if (a.any_method != b.any_method) return !a.any_method;
    return false;
  }
};

RouteTable::RouteTable(const Config& config) : impl_(std::make_unique<Impl>()) {
  for (const Site& site : config.sites) {
    for (const std::string& host : site.hosts) impl_->hosts.try_emplace(host, Impl::HostEntry{&site, 0});
  }
  for (const Api& api : config.apis) {
    Impl::CompiledApi compiled;
    compiled.api = &api;
    for (const ApiRoute& route : api.routes) {
      Impl::CompiledRoute r;
      // The parser rejected invalid templates; a hand-built Config with one gets a route that
      // never matches rather than a crash.
      if (!compileResourceTemplate(route.path, r.tmpl).empty()) continue;
      r.route = &route;
      r.any_method = route.method == "ANY";
      compiled.routes.push_back(std::move(r));
    }
    std::stable_sort(compiled.routes.begin(), compiled.routes.end(), Impl::moreSpecific);
    for (const std::string& host : api.hosts) {
      impl_->hosts.try_emplace(host, Impl::HostEntry{nullptr, impl_->apis.size()});
    }
    impl_->apis.push_back(std::move(compiled));
  }
}

RouteTable::~RouteTable() = default;

RouteMatch RouteTable::match(std::string_view host, std::string_view method, std::string_view path) const {
  RouteMatch m;
  const auto it = impl_->hosts.find(host);
  if (it == impl_->hosts.end()) return m;

  if (const Site* site = it->second.site) {
    m.kind = RouteKind::Site;
    m.site = site;
    for (const Behavior& b : site->behaviors) {
      if (matchPathPattern(b.path, path)) {
        m.behavior = &b;
        return m;
      }
    }
    // Unreachable for a parsed Config (its last behavior is "*"); a hand-built one without
    // behaviors gets a null behavior.
    if (!site->behaviors.empty()) m.behavior = &site->behaviors.back();
    return m;
  }

  const Impl::CompiledApi& api = impl_->apis[it->second.api];
  m.api = api.api;
  m.kind = RouteKind::ApiNoStage;
  std::string_view rest = path;
  if (!rest.empty() && rest.front() == '/') rest.remove_prefix(1);
  const std::size_t slash = rest.find('/');
  const std::string_view stage_name = rest.substr(0, slash);
  if (stage_name.empty()) return m;
  for (const Stage& s : api.api->stages) {
    if (s.name == stage_name) {
      m.stage = &s;
      break;
    }
  }
  if (m.stage == nullptr) return m;
  const std::string_view resource = slash == std::string_view::npos ? std::string_view("/") : rest.substr(slash);
  m.kind = RouteKind::ApiNoRoute;
  m.resource_path = std::string(resource);

  thread_local std::vector<std::string_view> segments;  // reused: no per-request allocation
  const std::string_view res = m.resource_path;
  splitResourcePath(res, segments);
  for (const Impl::CompiledRoute& r : api.routes) {
    if (!r.any_method && r.route->method != method) continue;
    if (!matchSegments(r.tmpl, res, segments, nullptr)) continue;
    matchSegments(r.tmpl, res, segments, &m.path_params);
    m.route = r.route;
    m.kind = RouteKind::Api;
    break;
  }
  segments.clear();
  return m;
}

bool matchPathPattern(std::string_view pattern, std::string_view path) {
  // Both sides are compared as if they started with '/': "*.jpg" is "/*.jpg".
  if (!pattern.empty() && pattern.front() == '/') pattern.remove_prefix(1);
  if (!path.empty() && path.front() == '/') path.remove_prefix(1);
  return glob(pattern, path);
}

bool matchResourceTemplate(std::string_view tmpl, std::string_view path,
                           std::vector<std::pair<std::string, std::string>>& params) {
  ResourceTemplate compiled;
  if (!compileResourceTemplate(tmpl, compiled).empty()) return false;
  if (path.empty() || path.front() != '/') return false;
  std::vector<std::string_view> segments;
  splitResourcePath(path, segments);
  std::vector<std::pair<std::string, std::string>> found;
  if (!matchSegments(compiled, path, segments, &found)) return false;
  params = std::move(found);
  return true;
}

bool percentDecode(std::string_view in, std::string& out) {
  // Most paths carry no escape: then a NUL check and one copy.
  if (in.find('%') == std::string_view::npos) {
    if (in.find('\0') != std::string_view::npos) return false;
    out.assign(in.data(), in.size());
    return true;
  }
  std::string r;
  r.reserve(in.size());
  for (std::size_t i = 0; i < in.size(); ++i) {
    const char c = in[i];
    if (c == '\0') return false;
    if (c != '%') {
      r.push_back(c);
      continue;
    }
    if (in.size() - i < 3) return false;  // '%' needs two hex digits
    const int hi = hexValue(in[i + 1]);
    const int lo = hexValue(in[i + 2]);
    if (hi < 0 || lo < 0) return false;
    const int v = hi * 16 + lo;
    if (v == 0) return false;  // %00 would truncate C strings downstream (file paths, logs)
    r.push_back(static_cast<char>(v));
    i += 2;
  }
  out = std::move(r);
  return true;
}

}  // namespace portico::conf
