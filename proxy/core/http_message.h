#pragma once
// HTTP message heads: plain value types shared by every layer.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "proxy/core/header_map.h"

namespace portico::core {

struct RequestHead {
  std::string method;     // upper-case token as received, e.g. "GET"
  std::string target;     // the request-target exactly as received
  std::string path;       // origin-form path, still percent-encoded, always starts with '/'
  std::string query;      // the part after '?', without the '?', raw ("" if none)
  std::string authority;  // Host, lower-cased, without the port
  std::string scheme = "http";
  int http_major = 1;
  int http_minor = 1;
  HeaderMap headers;
  std::string client_ip;  // peer address, no port

  bool isHead() const { return method == "HEAD"; }
};

struct ResponseHead {
  int status = 200;
  std::string reason;  // empty: the standard phrase for `status`
  HeaderMap headers;
};

// The standard reason phrase for a status code ("Unknown" for unlisted codes).
std::string_view reasonPhrase(int status);

// Splits an origin-form request-target into path and query. Returns false if it is not
// origin-form (does not start with '/'); absolute-form "http://host/p" is accepted and its
// authority returned in `authority_out` (RFC 9112 §3.2.2).
bool splitTarget(std::string_view target, std::string& path, std::string& query,
                 std::string* authority_out);

// The Content-Length field as a number; nullopt if absent or not a plain decimal.
std::optional<std::uint64_t> contentLength(const HeaderMap& headers);

// Host header value -> lower-case host without port; "" if malformed.
std::string normalizeHost(std::string_view host);

}  // namespace portico::core
