#pragma once
// The `lambda` origin (conf::LambdaOrigin): a function backend invoked exactly as AWS Lambda is
// (brief.md "Function backends: the wire contract"):
//
//   POST {endpoint}/2015-03-31/functions/{function}/invocations
//   body: the API Gateway proxy event, payload format 1.0 (buildProxyEvent)
//
// and answered with {"statusCode", "headers", "multiValueHeaders", "body", "isBase64Encoded"}
// (parseProxyResult). Outcomes, as API Gateway maps them (the pipeline turns errors into
// 502 {"message": "Internal server error"} / 504 {"message": "Endpoint request timed out"}):
//   2xx invoke answer with a valid result      -> onOriginHead + body + onOriginDone(None)
//   X-Amz-Function-Error on the invoke answer  -> onOriginDone(FunctionError), no head
//   non-2xx invoke status, non-JSON, bad shape -> onOriginDone(BadResponse), no head
//   result larger than kMaxResultBytes         -> onOriginDone(BadResponse)
//   no answer within timeout_ms                -> onOriginDone(Timeout)
//   connect failure                            -> onOriginDone(ConnectFailed)
//   request body larger than kMaxEventBodyBytes -> onOriginDone(Internal) (the server's
//                                                 max_body_bytes normally stops it earlier)
//
// Threading and callbacks: as origin/origin_client.h. The request body is buffered (Lambda
// takes one JSON document): the invoke starts at endBody(), or at once when !has_body; every
// sendBody() chunk is taken immediately, so pendingBodyBytes() is always 0. The function's
// answer is buffered whole (it is one JSON document), then delivered in pieces that honour
// onOriginBody() returning false.
#include <uv.h>

#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "conf/config.h"
#include "origin/curl_multi.h"
#include "origin/http_origin.h"
#include "origin/origin_client.h"
#include "proxy/core/http_message.h"

namespace portico::origin {

class LambdaOriginClient : public OriginClient {
 public:
  // Lambda's own limit is 6 MB; we allow some more before calling an answer malformed.
  static constexpr std::size_t kMaxResultBytes = 10u << 20;
  static constexpr std::size_t kMaxEventBodyBytes = 10u << 20;

  // `loop` and `multi` (the worker's) must outlive every Fetch this client returns.
  LambdaOriginClient(uv_loop_t* loop, CurlMulti& multi, conf::LambdaOrigin cfg);

  // OriginClient
  FetchPtr fetch(OriginRequest request, ResponseSink& sink) override;

  // The invoke URL: {endpoint}/2015-03-31/functions/{function}/invocations.
  // The invoke URL; `request` may carry the endpoint / function of its stage.
  std::string invokeUrl(const OriginRequest* request = nullptr) const;

 private:
  static constexpr std::size_t kMaxParsedUrls = 64;
  // The invoke URL for `request`, parsed once per distinct URL (null if libcurl rejects it).
  std::shared_ptr<const ParsedUrl> parsedInvokeUrl(const OriginRequest& request);

  uv_loop_t* loop_;
  CurlMulti& multi_;
  conf::LambdaOrigin cfg_;
  std::shared_ptr<const ParsedUrl> default_url_;  // the origin's own endpoint and function
  std::unordered_map<std::string, std::shared_ptr<const ParsedUrl>> parsed_;  // stage overrides
};

// ---- pure helpers (exposed for tests) -------------------------------------------------------

// The API Gateway proxy event v1.0 for `request` with request body `body` (`has_body` false:
// "body": null), serialized as JSON. Without request.api the event describes the raw path
// (resource = path, stage ""). Never throws: invalid UTF-8 in header values is replaced.
std::string buildProxyEvent(const OriginRequest& request, std::string_view body, bool has_body);

// A function's answer mapped to an HTTP response. nullopt (with `why`) when malformed.
struct ProxyResult {
  core::ResponseHead head;
  std::string body;
};
std::optional<ProxyResult> parseProxyResult(std::string_view json, std::string* why);

// Percent-decodes %XX only ('+' stays '+', as API Gateway does); a bad escape is kept as is.
std::string percentDecode(std::string_view s);
// RFC 4648 base64 with padding. decode accepts missing padding and ignores CR/LF; anything
// else invalid -> nullopt.
std::string base64Encode(std::string_view bytes);
std::optional<std::string> base64Decode(std::string_view text);

}  // namespace portico::origin
