#pragma once
// API Gateway resource templates, compiled (pure; std only). Shared by the parser (validation,
// cache_key.path checks, duplicate-route detection) and RouteTable (per-request matching).
//
// A template is "/" or "/seg/seg/...", each segment a literal, "{name}" (exactly one non-empty
// path segment) or, as the last segment only, "{name+}" (one or more segments, greedy).
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace portico::conf {

struct TemplateSegment {
  enum class Kind { Literal, Param, Greedy };
  Kind kind = Kind::Literal;
  std::string text;  // the literal, or the parameter name (without braces and '+')
};

struct ResourceTemplate {
  std::vector<TemplateSegment> segments;

  int literalCount() const;
  bool greedy() const { return !segments.empty() && segments.back().kind == TemplateSegment::Kind::Greedy; }
  bool hasParam(std::string_view name) const;
  // The template with parameter names erased ("/bill/{}", "/legacy/{+}"): two routes with the
  // same shape and method can never be told apart.
  std::string shape() const;
};

// Compiles `tmpl`. Returns "" on success, else the reason (phrased to follow "key: ").
std::string compileResourceTemplate(std::string_view tmpl, ResourceTemplate& out);

// Splits a resource path into segments: "/" -> {}, "/a/b" -> {"a","b"}, "/a/" -> {"a",""}.
// The views point into `path`. `path` must start with '/'.
void splitResourcePath(std::string_view path, std::vector<std::string_view>& out);

// Matches split `segments` (from splitResourcePath(path, ...)) against `tmpl`. When `params` is
// not null and the match succeeds, appends (name, value) for each parameter; a greedy value is
// the rest of `path` from its first segment ("a/b").
bool matchSegments(const ResourceTemplate& tmpl, std::string_view path,
                   const std::vector<std::string_view>& segments,
                   std::vector<std::pair<std::string, std::string>>* params);

}  // namespace portico::conf
