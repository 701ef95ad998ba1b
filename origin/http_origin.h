#pragma once
// The `http` origin (conf::HttpOrigin) and the raw HTTP fetch machinery the `lambda` and `s3`
// origins build on. Transfers run on the worker's CurlMulti (origin/curl_multi.h); this file's
// .cc is, with curl_multi.cc, the only place that includes libcurl (style.md G7).
//
// Threading and callbacks: everything here runs on the CurlMulti's loop thread; sinks are
// called per origin/origin_client.h (never synchronously from fetch(), head/body*/done exactly
// once, nothing after the Fetch is destroyed). Sink callbacks are never made from inside a
// libcurl callback: they come from CurlMulti's dispatch.
//
// Mapping of libcurl results to FetchError:
//   refused / unreachable / DNS / TLS handshake        -> ConnectFailed
//   connect timeout, timeout_ms / total_timeout_ms     -> Timeout
//   malformed or truncated HTTP, empty reply, reset    -> BadResponse
//   bad URL, out of memory, libcurl refusing the setup -> Internal
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "conf/config.h"
#include "origin/curl_multi.h"
#include "origin/origin_client.h"
#include "proxy/core/header_map.h"

namespace portico::origin {

// A URL parsed once by libcurl (a CURLU handle), for an origin that fetches the same URL on
// every request (a lambda origin's invoke URL): a transfer given it hands libcurl the parsed
// handle (CURLOPT_CURLU) instead of a string that libcurl would parse and print back again,
// about a tenth of libcurl's work per request. Immutable once made; shared by the transfers
// that use it, so it lives as long as the longest of them (a conf reload may drop its maker).
class ParsedUrl {
 public:
  // nullptr when libcurl rejects `url`.
  static std::shared_ptr<const ParsedUrl> parse(const std::string& url);
  ~ParsedUrl();
  ParsedUrl(const ParsedUrl&) = delete;
  ParsedUrl& operator=(const ParsedUrl&) = delete;
  const std::string& url() const { return url_; }
  void* handle() const { return handle_; }  // CURLU*, only read by libcurl (it copies it)

 private:
  ParsedUrl(std::string url, void* handle) : url_(std::move(url)), handle_(handle) {}
  std::string url_;
  void* handle_;
};

// One upstream HTTP exchange, fully specified (no further header rewriting happens).
struct HttpFetchSpec {
  std::string url;             // absolute http(s) URL
  // Optional: `url` already parsed (ParsedUrl::url() == url). Used instead of parsing `url`.
  std::shared_ptr<const ParsedUrl> parsed_url;
  std::string method = "GET";  // any token; HEAD gets no body
  // Sent as given, in order. libcurl adds Host and the body framing (Content-Length or
  // Transfer-Encoding: chunked); it adds no Accept, Expect or Content-Type of its own.
  core::HeaderMap headers;
  bool has_body = false;               // a body follows through Fetch::sendBody()/endBody()
  std::uint64_t body_length_hint = 0;  // exact length if known (Content-Length), 0: chunked
  // Or the whole body, known at the start (has_body false): sent with the head
  // (CURLOPT_POSTFIELDS), so a small request leaves in one write instead of two.
  std::optional<std::string> body;
  // How long the upstream may keep us waiting: until the response head is complete, and then
  // between body bytes. The clock runs only while we wait on the upstream: it is reset by
  // request-body bytes it takes, and stopped while the request body waits for the client or
  // while the sink has paused delivery (a slow client never turns into an origin timeout).
  // Expiry -> Timeout (with no head: 504; after a head: the body was cut short). 0: none.
  std::uint64_t timeout_ms = 10000;
  std::uint64_t total_timeout_ms = 0;  // whole-exchange budget (CURLOPT_TIMEOUT_MS), 0: none
  std::uint64_t connect_timeout_ms = 2000;
  // AWS Signature V4 (s3): CURLOPT_AWS_SIGV4 provider string ("aws:amz:<region>:s3") and the
  // credentials (CURLOPT_USERNAME / CURLOPT_PASSWORD). Unsigned when aws_sigv4 is empty.
  std::string aws_sigv4;
  std::string aws_access_key;
  std::string aws_secret_key;
  // The response fields the caller reads (case-insensitive); empty: every field. The others
  // are checked for shape like the rest of the head, then dropped without being copied (the
  // lambda origin reads one field of the invoke answer's head).
  std::span<const std::string_view> only_response_fields;
};

// Starts `spec` on `multi`. Never null and never calls `sink` synchronously: a setup failure is
// delivered as onOriginDone(Internal) from a later loop turn. Backpressure: when onOriginBody()
// returns false the transfer stops reading from the socket (CURL_WRITEFUNC_PAUSE) after at most
// one socket read more, and continues after Fetch::resume(). The request body is streamed
// through CURLOPT_READFUNCTION; onRequestBodyDrained() follows each time the queue empties.
FetchPtr startHttpFetch(CurlMulti& multi, HttpFetchSpec spec, ResponseSink& sink);

// The `http` origin: forwards the client's request to endpoint + path (+ '?' query).
class HttpOriginClient : public OriginClient {
 public:
  // `multi` must outlive every Fetch this client returns (it is the worker's).
  HttpOriginClient(CurlMulti& multi, conf::HttpOrigin cfg);

  // OriginClient
  FetchPtr fetch(OriginRequest request, ResponseSink& sink) override;

 private:
  CurlMulti& multi_;
  conf::HttpOrigin cfg_;
};

// ---- pure helpers (exposed for tests) -------------------------------------------------------

// True for the hop-by-hop fields of RFC 9110 §7.6.1 we strip both ways: Connection, Keep-Alive,
// Proxy-Connection, TE, Trailer, Transfer-Encoding, Upgrade.
bool isHopByHop(std::string_view name);
// Removes hop-by-hop fields and every field named in a Connection header.
void stripHopByHop(core::HeaderMap& headers);
// endpoint (may carry a base path) + path, joined with exactly one '/', + '?' + query if any.
std::string joinUrl(std::string_view endpoint, std::string_view path, std::string_view query);
// The headers sent upstream for a client request: hop-by-hop, Host, Content-Length and Expect
// removed; X-Forwarded-Host (the client's Host), X-Forwarded-For (appended), X-Forwarded-Proto
// and Via: 1.1 portico (appended) added.
core::HeaderMap forwardedRequestHeaders(const core::RequestHead& head);

}  // namespace portico::origin
