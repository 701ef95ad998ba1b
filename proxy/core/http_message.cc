#include "proxy/core/http_message.h"

#include <charconv>

namespace portico::core {

std::string_view reasonPhrase(int status) {
  switch (status) {
    case 100: return "Continue";
    case 101: return "Switching Protocols";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 203: return "Non-Authoritative Information";
    case 204: return "No Content";
    case 206: return "Partial Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 303: return "See Other";
    case 304: return "Not Modified";
    case 307: return "Temporary Redirect";
    case 308: return "Permanent Redirect";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 406: return "Not Acceptable";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 410: return "Gone";
    case 411: return "Length Required";
    case 412: return "Precondition Failed";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 415: return "Unsupported Media Type";
    case 416: return "Range Not Satisfiable";
    case 417: return "Expectation Failed";
    case 422: return "Unprocessable Content";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    default: return "Unknown";
  }
}

bool splitTarget(std::string_view target, std::string& path, std::string& query,
                 std::string* authority_out) {
  if (target.empty()) return false;
  if (target.front() != '/') {
    // absolute-form: scheme "://" authority path-abempty [ "?" query ]
    std::size_t scheme_end = target.find("://");
    if (scheme_end == std::string_view::npos) return false;
    std::string_view scheme = target.substr(0, scheme_end);
    if (!(scheme == "http" || scheme == "https" || scheme == "HTTP" || scheme == "HTTPS")) {
      return false;
    }
    std::string_view rest = target.substr(scheme_end + 3);
    std::size_t slash = rest.find_first_of("/?");
    std::string_view auth = rest.substr(0, slash);
    if (auth.empty()) return false;
    if (authority_out) *authority_out = std::string(auth);
    target = slash == std::string_view::npos ? std::string_view("/") : rest.substr(slash);
    if (target.front() == '?') {
      path = "/";
      query.assign(target.data() + 1, target.size() - 1);
      return true;
    }
  }
  std::size_t q = target.find('?');
  if (q == std::string_view::npos) {
    path.assign(target.data(), target.size());
    query.clear();
  } else {
    path.assign(target.data(), q);
    query.assign(target.data() + q + 1, target.size() - q - 1);
  }
  return true;
}

std::optional<std::uint64_t> contentLength(const HeaderMap& headers) {
  auto v = headers.get("content-length");
  if (!v) return std::nullopt;
  std::uint64_t n = 0;
  auto [ptr, ec] = std::from_chars(v->data(), v->data() + v->size(), n);
  if (ec != std::errc() || ptr != v->data() + v->size()) return std::nullopt;
  return n;
}

std::string normalizeHost(std::string_view host) {
  host = trimOws(host);
  if (host.empty()) return {};
  std::string_view name = host;
  if (host.front() == '[') {  // IPv6 literal
    std::size_t close = host.find(']');
    if (close == std::string_view::npos) return {};
    name = host.substr(0, close + 1);
    std::string_view after = host.substr(close + 1);
    if (!after.empty() && after.front() != ':') return {};
  } else {
    std::size_t colon = host.find(':');
    if (colon != std::string_view::npos) name = host.substr(0, colon);
  }
  for (char c : name) {
    unsigned char u = static_cast<unsigned char>(c);
    bool ok = (u >= 'a' && u <= 'z') || (u >= 'A' && u <= 'Z') || (u >= '0' && u <= '9') ||
              c == '-' || c == '.' || c == '_' || c == '[' || c == ']' || c == ':';
    if (!ok) return {};
  }
  std::string out = toLower(name);
  if (!out.empty() && out.back() == '.') out.pop_back();
  return out;
}

}  // namespace portico::core
