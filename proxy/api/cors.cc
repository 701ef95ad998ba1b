#include "proxy/api/cors.h"

#include <algorithm>

namespace portico::proxy {
namespace {

constexpr std::string_view kOrigin = "Origin";
constexpr std::string_view kRequestMethod = "Access-Control-Request-Method";
constexpr std::string_view kRequestHeaders = "Access-Control-Request-Headers";
constexpr std::string_view kAllowOrigin = "Access-Control-Allow-Origin";

bool contains(const std::vector<std::string>& list, std::string_view value) {
  return std::find(list.begin(), list.end(), value) != list.end();
}

std::string join(const std::vector<std::string>& list) {
  std::string out;
  for (const std::string& item : list) {
    if (!out.empty()) out += ", ";
    out += item;
  }
  return out;
}

bool methodAllowed(const conf::Cors& cors, std::string_view method) {
  if (method == "GET" || method == "HEAD" || method == "POST") return true;  // safelisted
  return contains(cors.allow_methods, "*") || contains(cors.allow_methods, method);
}

bool headerAllowed(const conf::Cors& cors, std::string_view name) {
  return std::any_of(cors.allow_headers.begin(), cors.allow_headers.end(),
                     [&](const std::string& h) { return h == "*" || core::iequals(h, name); });
}

// Every item of the comma list `requested` is an allowed header name.
bool headersAllowed(const conf::Cors& cors, std::string_view requested) {
  while (!requested.empty()) {
    const std::size_t comma = requested.find(',');
    const std::string_view name = core::trimOws(requested.substr(0, comma));
    if (!name.empty() && !headerAllowed(cors, name)) return false;
    if (comma == std::string_view::npos) break;
    requested.remove_prefix(comma + 1);
  }
  return true;
}

// Adds "Origin" to the response's Vary, merging all Vary fields into one.
void addVaryOrigin(core::HeaderMap& headers) {
  std::optional<std::string> vary = headers.getJoined("Vary");
  if (!vary) {
    headers.add("Vary", kOrigin);
    return;
  }
  if (core::listHasToken(*vary, "*") || core::listHasToken(*vary, kOrigin)) return;
  const std::string_view trimmed = core::trimOws(*vary);
  headers.set("Vary", trimmed.empty() ? std::string(kOrigin) : std::string(trimmed) + ", Origin");
}

}  // namespace

std::optional<std::string> allowedOriginValue(const conf::Cors& cors, std::string_view origin) {
  if (origin.empty()) return std::nullopt;
  if (contains(cors.allow_origins, "*")) return std::string("*");
  for (std::string_view allowed : cors.allow_origins) {
    if (allowed.size() > 1 && allowed.back() == '/') allowed.remove_suffix(1);
    if (core::iequals(allowed, origin)) return std::string(origin);
  }
  return std::nullopt;
}

bool isPreflight(const core::RequestHead& req) {
  return req.method == "OPTIONS" && req.headers.has(kOrigin) && req.headers.has(kRequestMethod);
}

std::optional<CorsHeaders> preflight(const conf::Cors& cors, const core::RequestHead& req) {
  if (!isPreflight(req)) return std::nullopt;
  std::optional<std::string> allow_origin = allowedOriginValue(cors, core::trimOws(*req.headers.get(kOrigin)));
  if (!allow_origin) return std::nullopt;
  const std::string_view method = core::trimOws(*req.headers.get(kRequestMethod));
  if (method.empty() || !methodAllowed(cors, method)) return std::nullopt;
  if (std::optional<std::string> requested = req.headers.getJoined(kRequestHeaders)) {
    if (!headersAllowed(cors, *requested)) return std::nullopt;
  }

  CorsHeaders out;
  out.fields.emplace_back(kAllowOrigin, std::move(*allow_origin));
  if (!cors.allow_methods.empty()) {
    out.fields.emplace_back("Access-Control-Allow-Methods", join(cors.allow_methods));
  }
  if (!cors.allow_headers.empty()) {
    out.fields.emplace_back("Access-Control-Allow-Headers", join(cors.allow_headers));
  }
  if (cors.max_age_s > 0) {
    out.fields.emplace_back("Access-Control-Max-Age", std::to_string(cors.max_age_s));
  }
  out.fields.emplace_back("Vary", kOrigin);
  return out;
}

void decorateActual(const conf::Cors& cors, const core::RequestHead& req,
                    core::HeaderMap& response_headers) {
  std::optional<std::string> allow_origin;
  if (std::optional<std::string_view> origin = req.headers.get(kOrigin)) {
    allow_origin = allowedOriginValue(cors, core::trimOws(*origin));
  }
  if (allow_origin) {
    response_headers.set(kAllowOrigin, *allow_origin);
  } else {
    response_headers.remove(kAllowOrigin);
  }
  addVaryOrigin(response_headers);
}

}  // namespace portico::proxy
