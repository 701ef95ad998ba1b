#pragma once
// OriginClient: where misses go. One instance per origin per worker; every method is called on
// that worker's loop thread, and every ResponseSink callback runs on it too.
//
// Contract (style.md G11):
//  - fetch() never calls the sink synchronously: the first callback comes from a later loop turn.
//  - The sink gets at most one onOriginHead(), then any number of onOriginBody(), then exactly
//    one onOriginDone() -- unless the Fetch is destroyed first: destroying the Fetch cancels the
//    transfer and no sink callback runs after (or during) the destructor.
//  - onOriginDone(error) with error != None and no head before it: the origin gave no usable
//    answer; the caller maps it to a status (ConnectFailed/BadResponse/FunctionError -> 502,
//    Timeout -> 504). After a head, an error means the body was cut short.
//  - Backpressure: onOriginBody() returns false to ask the fetch to stop delivering; the
//    caller calls Fetch::resume() when it can take more. A fetch may deliver the rest of the
//    chunk it is in, never unbounded more.
//  - The sink must outlive the Fetch (it is normally the object owning the Fetch).
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "proxy/core/http_message.h"

namespace portico::origin {

enum class FetchError {
  None,
  ConnectFailed,  // refused, unreachable, DNS
  Timeout,        // no (complete) answer within the origin's timeout
  BadResponse,    // malformed answer (HTTP or Lambda JSON)
  FunctionError,  // Lambda answered with X-Amz-Function-Error
  NotFound,       // dir origin: no such object (head still sent as 404; informative)
  Internal,
};
std::string_view toString(FetchError e);

// What an API route adds for function backends (API Gateway proxy event v1.0).
struct ApiInvocation {
  std::string resource;  // route template, "/bill/{id}"
  std::string path;      // resource path without the stage, "/bill/42"
  std::string stage;     // "prod"
  std::vector<std::pair<std::string, std::string>> path_params;
  std::map<std::string, std::string> stage_variables;
  std::string request_id;
  std::int64_t request_time_ms = 0;  // epoch ms
  // The origin's endpoint / function with ${stageVariables.x} already substituted by the caller
  // (empty: the origin's own, which then has no references).
  std::string endpoint;
  std::string function;
  // A JWT authorizer's claims (requestContext.authorizer.claims), when the route has one.
  std::optional<std::map<std::string, std::string>> authorizer_claims;
};

struct OriginRequest {
  core::RequestHead head;  // the client's head: method, headers, client_ip, query, version
  std::string path;        // path to request from the origin, percent-encoded, starts with '/'
  std::optional<ApiInvocation> api;
  bool has_body = false;   // a request body follows through Fetch::sendBody()/endBody()
  std::uint64_t body_length_hint = 0;  // Content-Length if known (0: unknown or none)
};

class ResponseSink {
 public:
  virtual ~ResponseSink() = default;
  virtual void onOriginHead(core::ResponseHead head) = 0;
  // Returns false to pause delivery until Fetch::resume().
  virtual bool onOriginBody(std::string_view chunk) = 0;
  virtual void onOriginDone(FetchError error) = 0;
  // The origin took the request body bytes queued so far; the caller may read more from the
  // client (request-body backpressure).
  virtual void onRequestBodyDrained() {}
};

class Fetch {
 public:
  virtual ~Fetch() = default;  // cancels
  // Request body, copied. Only when OriginRequest::has_body. endBody() exactly once at the end.
  virtual void sendBody(std::string_view chunk) = 0;
  virtual void endBody() = 0;
  // Request-body bytes queued and not yet taken by the origin.
  virtual std::size_t pendingBodyBytes() const = 0;
  // Resume response-body delivery after onOriginBody() returned false.
  virtual void resume() = 0;
};
using FetchPtr = std::unique_ptr<Fetch>;

class OriginClient {
 public:
  virtual ~OriginClient() = default;
  virtual FetchPtr fetch(OriginRequest request, ResponseSink& sink) = 0;
};
using OriginClientPtr = std::unique_ptr<OriginClient>;

}  // namespace portico::origin
