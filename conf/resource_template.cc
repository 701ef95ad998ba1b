#include "conf/resource_template.h"

#include <algorithm>

namespace portico::conf {

namespace {

bool isParamNameChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '-' || c == '.';
}

}  // namespace

int ResourceTemplate::literalCount() const {
  return static_cast<int>(std::count_if(segments.begin(), segments.end(), [](const TemplateSegment& s) {
    return s.kind == TemplateSegment::Kind::Literal;
  }));
}

bool ResourceTemplate::hasParam(std::string_view name) const {
  return std::any_of(segments.begin(), segments.end(), [&](const TemplateSegment& s) {
    return s.kind != TemplateSegment::Kind::Literal && s.text == name;
  });
}

std::string ResourceTemplate::shape() const {
  if (segments.empty()) return "/";
  std::string r;
  for (const TemplateSegment& s : segments) {
    r += '/';
    switch (s.kind) {
      case TemplateSegment::Kind::Literal: r += s.text; break;
      case TemplateSegment::Kind::Param: r += "{}"; break;
      case TemplateSegment::Kind::Greedy: r += "{+}"; break;
    }
  }
  return r;
}

std::string compileResourceTemplate(std::string_view tmpl, ResourceTemplate& out) {
  if (tmpl.empty() || tmpl.front() != '/') return "must start with '/'";
  ResourceTemplate r;
  std::vector<std::string_view> parts;
  splitResourcePath(tmpl, parts);
  for (std::size_t i = 0; i < parts.size(); ++i) {
    const std::string_view part = parts[i];
    if (part.empty()) return "must not contain empty segments (\"//\" or a trailing '/')";
    TemplateSegment seg;
    const bool braces = part.find_first_of("{}") != std::string_view::npos;
    if (!braces) {
      for (char c : part) {
        if (static_cast<unsigned char>(c) <= ' ' || c == 0x7f || c == '?' || c == '#' || c == '%')
          return "segment \"" + std::string(part) + "\" contains a character not allowed in a path";
      }
      seg.text = std::string(part);
    } else {
      if (part.size() < 3 || part.front() != '{' || part.back() != '}')
        return "segment \"" + std::string(part) + "\" must be a literal, {name} or {name+}";
      std::string_view name = part.substr(1, part.size() - 2);
      seg.kind = TemplateSegment::Kind::Param;
      if (name.back() == '+') {
        name.remove_suffix(1);
        seg.kind = TemplateSegment::Kind::Greedy;
        if (i + 1 != parts.size()) return "greedy parameter {" + std::string(name) + "+} must be the last segment";
      }
      if (name.empty() || !std::all_of(name.begin(), name.end(), isParamNameChar))
        return "segment \"" + std::string(part) + "\" has an invalid parameter name (letters, digits, '_', '-', '.')";
      if (r.hasParam(name)) return "parameter {" + std::string(name) + "} appears twice";
      seg.text = std::string(name);
    }
    r.segments.push_back(std::move(seg));
  }
  out = std::move(r);
  return {};
}

void splitResourcePath(std::string_view path, std::vector<std::string_view>& out) {
  out.clear();
  if (path.size() <= 1) return;  // "/" (or "") has no segments
  std::size_t start = 1;
  while (true) {
    const std::size_t slash = path.find('/', start);
    if (slash == std::string_view::npos) {
      out.push_back(path.substr(start));
      return;
    }
    out.push_back(path.substr(start, slash - start));
    start = slash + 1;
  }
}

bool matchSegments(const ResourceTemplate& tmpl, std::string_view path,
                   const std::vector<std::string_view>& segments,
                   std::vector<std::pair<std::string, std::string>>* params) {
  const std::size_t n = tmpl.segments.size();
  if (tmpl.greedy() ? segments.size() < n : segments.size() != n) return false;
  for (std::size_t i = 0; i < n; ++i) {
    const TemplateSegment& t = tmpl.segments[i];
    switch (t.kind) {
      case TemplateSegment::Kind::Literal:
        if (segments[i] != t.text) return false;
        break;
      case TemplateSegment::Kind::Param:
        if (segments[i].empty()) return false;
        break;
      case TemplateSegment::Kind::Greedy:
        // One or more segments, the first non-empty ("/legacy/" and "/legacy//x" do not match).
        if (segments[i].empty()) return false;
        break;
    }
  }
  if (params != nullptr) {
    for (std::size_t i = 0; i < n; ++i) {
      const TemplateSegment& t = tmpl.segments[i];
      if (t.kind == TemplateSegment::Kind::Param) {
        params->emplace_back(t.text, std::string(segments[i]));
      } else if (t.kind == TemplateSegment::Kind::Greedy) {
        const char* begin = segments[i].data();
        params->emplace_back(t.text, std::string(begin, static_cast<std::size_t>(path.data() + path.size() - begin)));
      }
    }
  }
  return true;
}

}  // namespace portico::conf
