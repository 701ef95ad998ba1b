#pragma once
// RequestPipeline: the per-request state machine (style.md G3). One instance per request,
// created by the worker when a head is complete, owned and destroyed by the connection.
//
//   Route ──> Respond                      (mock route, routing error, bad path)
//     └────> Fetch ──> Respond             (origin head arrived; body streams through)
//              └────> ErrorPage ──> Respond (site origin answered a status that has an error page)
//   Respond ──> Done                       (response ended or aborted)
//
// Every transition goes through transition(from, to), which checks the source phase.
// Issue 2 has no cache: every origin answer is a Miss streamed straight through; issue 4 puts
// the cache lookup between Route and Fetch.
#include <optional>
#include <string>
#include <string_view>

#include "conf/route_table.h"
#include "origin/origin_client.h"
#include "proxy/core/clock.h"
#include "proxy/h1/http1_connection.h"
#include "proxy/pipeline/pipeline_context.h"

namespace portico::proxy {

class RequestPipeline final : public RequestHandler, private origin::ResponseSink {
 public:
  RequestPipeline(PipelineContext& ctx, Exchange& exchange, const RequestFraming& framing);
  ~RequestPipeline() override;  // cancels the fetch, writes the access-log line and metrics

  // Routes the request and starts answering it. Called once, right after construction.
  void start();

  // RequestHandler
  void onRequestBody(std::string_view chunk) override;
  void onRequestComplete() override;
  void onWritable() override;

 private:
  enum class Phase { Route, Fetch, ErrorPage, Respond, Done };
  static std::string_view toString(Phase p);
  void transition(Phase from, Phase to);

  // origin::ResponseSink
  void onOriginHead(core::ResponseHead head) override;
  bool onOriginBody(std::string_view chunk) override;
  void onOriginDone(origin::FetchError error) override;
  void onRequestBodyDrained() override;

  void routeSite(const std::string& decoded_path);
  void routeApi();
  void startFetch(std::string_view origin_name, origin::OriginRequest request);
  void startErrorPage();
  void respond(int status, std::string_view content_type, std::string body,
               const core::HeaderMap* extra = nullptr);
  void respondApiError(int status, std::string_view message, std::string_view error_type);
  void respondOriginError(origin::FetchError error);
  void sendOriginHead(core::ResponseHead head);
  void finish();

  PipelineContext& ctx_;
  Exchange& ex_;
  WorkerViewPtr view_;
  RequestFraming framing_;
  Phase phase_ = Phase::Route;
  conf::RouteMatch match_;
  origin::FetchPtr fetch_;
  origin::OriginClient* origin_ = nullptr;
  std::string origin_name_;
  const conf::ErrorPage* error_page_ = nullptr;
  int error_status_ = 0;
  bool forward_body_ = false;
  bool ignore_origin_ = false;  // the current fetch was superseded (error page)
  std::shared_ptr<bool> alive_;

  // For the access log and metrics.
  core::MonoTime started_;
  core::MonoTime fetch_started_;
  std::optional<double> origin_ms_;
  int status_ = 0;
  std::uint64_t body_in_ = 0;
  std::uint64_t body_out_ = 0;
  std::string kind_ = "none";
  std::string name_;
  std::string stage_;
  std::string fetch_error_;
  std::string cache_status_ = "bypass";
};

}  // namespace portico::proxy
