#include "proxy/pipeline/request_pipeline.h"

#include <cassert>
#include <charconv>
#include <random>

#include "cache/cache_status.h"
#include "proxy/stats/log.h"

namespace portico::proxy {
namespace {

using core::MonoTime;

double msSince(MonoTime from, MonoTime to) {
  return std::chrono::duration<double, std::milli>(to - from).count();
}

std::string requestId() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  std::uint64_t a = rng(), b = rng();
  char buf[40];
  std::snprintf(buf, sizeof buf, "%08x-%04x-4%03x-%04x-%012llx", static_cast<unsigned>(a >> 32),
                static_cast<unsigned>((a >> 16) & 0xffff), static_cast<unsigned>(a & 0xfff),
                static_cast<unsigned>((b >> 48) & 0x3fff) | 0x8000,
                static_cast<unsigned long long>(b & 0xffffffffffffull));
  return buf;
}

std::optional<std::uint64_t> contentLength(const core::HeaderMap& h) {
  auto v = h.get("content-length");
  if (!v) return std::nullopt;
  std::uint64_t n = 0;
  auto [ptr, ec] = std::from_chars(v->data(), v->data() + v->size(), n);
  if (ec != std::errc() || ptr != v->data() + v->size()) return std::nullopt;
  return n;
}

std::string statusClass(int status) { return std::to_string(status / 100) + "xx"; }

// The raw (still percent-encoded) path after the first segment: "/prod/a/b" -> "/a/b".
std::string stripFirstSegment(std::string_view path) {
  std::size_t slash = path.find('/', 1);
  if (slash == std::string_view::npos) return "/";
  return std::string(path.substr(slash));
}

}  // namespace

RequestPipeline::RequestPipeline(PipelineContext& ctx, Exchange& exchange,
                                 const RequestFraming& framing)
    : ctx_(ctx),
      ex_(exchange),
      view_(ctx.view()),
      framing_(framing),
      alive_(std::make_shared<bool>(true)),
      started_(core::SystemClock::instance().monoNow()) {}

RequestPipeline::~RequestPipeline() {
  *alive_ = false;
  fetch_.reset();  // cancels; no sink call after this
  finish();
}

std::string_view RequestPipeline::toString(Phase p) {
  switch (p) {
    case Phase::Route: return "Route";
    case Phase::Fetch: return "Fetch";
    case Phase::ErrorPage: return "ErrorPage";
    case Phase::Respond: return "Respond";
    case Phase::Done: return "Done";
  }
  return "?";
}

void RequestPipeline::transition(Phase from, Phase to) {
  if (phase_ != from) {
    logEvent("error", "pipeline: wrong phase",
             {{"expected", toString(from)}, {"actual", toString(phase_)}, {"to", toString(to)}});
    assert(false && "RequestPipeline: wrong phase");
  }
  phase_ = to;
}

// ---- routing ----------------------------------------------------------------------------------

void RequestPipeline::start() {
  const core::RequestHead& req = ex_.request();
  std::string decoded;
  if (!conf::percentDecode(req.path, decoded)) {
    respond(400, "text/plain; charset=utf-8", "400 Bad Request: malformed path\n");
    return;
  }
  match_ = view_->snapshot->routes->match(req.authority, req.method, decoded);
  switch (match_.kind) {
    case conf::RouteKind::NoHost:
      respond(404, "text/plain; charset=utf-8",
              "404 Not Found: no site or API is configured for this host\n");
      return;
    case conf::RouteKind::Site:
      kind_ = "site";
      name_ = match_.site->name;
      routeSite(decoded);
      return;
    case conf::RouteKind::ApiNoStage:
    case conf::RouteKind::ApiNoRoute:
    case conf::RouteKind::Api:
      kind_ = "api";
      name_ = match_.api->name;
      if (match_.stage) stage_ = match_.stage->name;
      routeApi();
      return;
  }
}

void RequestPipeline::routeSite(const std::string& decoded_path) {
  const core::RequestHead& req = ex_.request();
  origin::OriginRequest o;
  o.head = req;
  o.path = req.path;
  // Index document: "/" and "/dir/" ask the origin for ".../index.html" (CloudFront's default
  // root object, S3 website index document).
  if (!decoded_path.empty() && decoded_path.back() == '/' && !match_.site->index.empty()) {
    o.path += match_.site->index;
  }
  o.has_body = framing_.has_body;
  o.body_length_hint = framing_.chunked ? 0 : framing_.content_length;
  startFetch(match_.behavior->origin, std::move(o));
}

void RequestPipeline::routeApi() {
  if (match_.kind != conf::RouteKind::Api) {
    respondApiError(403, "Missing Authentication Token", "MissingAuthenticationTokenException");
    return;
  }
  const conf::ApiRoute& route = *match_.route;
  if (route.mock) {
    core::HeaderMap headers;
    for (const auto& [k, v] : route.mock->headers) headers.add(k, v);
    std::string type = headers.get("content-type") ? std::string(*headers.get("content-type"))
                                                   : "application/json";
    headers.remove("content-type");
    respond(route.mock->status, type, route.mock->body, &headers);
    return;
  }
  const core::RequestHead& req = ex_.request();
  origin::OriginRequest o;
  o.head = req;
  o.path = stripFirstSegment(req.path);
  origin::ApiInvocation api;
  api.resource = route.path;
  api.path = match_.resource_path;
  api.stage = match_.stage->name;
  api.path_params = match_.path_params;
  api.stage_variables = match_.stage->variables;
  api.request_id = requestId();
  api.request_time_ms = core::toUnixMillis(core::SystemClock::instance().wallNow());
  o.api = std::move(api);
  o.has_body = framing_.has_body;
  o.body_length_hint = framing_.chunked ? 0 : framing_.content_length;
  startFetch(route.origin, std::move(o));
}

// ---- fetching ---------------------------------------------------------------------------------

void RequestPipeline::startFetch(std::string_view origin_name, origin::OriginRequest request) {
  auto it = view_->origins.find(origin_name);
  if (it == view_->origins.end() || !it->second) {
    origin_name_ = origin_name;
    fetch_error_ = "origin type not available";
    respondOriginError(origin::FetchError::Internal);
    return;
  }
  transition(Phase::Route, Phase::Fetch);
  origin_ = it->second.get();
  origin_name_ = origin_name;
  cache_status_ = "miss";
  forward_body_ = request.has_body;
  fetch_started_ = core::SystemClock::instance().monoNow();
  fetch_ = origin_->fetch(std::move(request), *this);
  if (forward_body_) ex_.sendContinue();
}

void RequestPipeline::onRequestBody(std::string_view chunk) {
  body_in_ += chunk.size();
  if (!forward_body_ || !fetch_ || ignore_origin_) return;
  fetch_->sendBody(chunk);
  // Request-body backpressure: stop reading the client while the origin lags behind.
  if (fetch_->pendingBodyBytes() > 1024 * 1024) ex_.pauseRequestBody();
}

void RequestPipeline::onRequestComplete() {
  if (forward_body_ && fetch_ && !ignore_origin_) fetch_->endBody();
}

void RequestPipeline::onRequestBodyDrained() { ex_.resumeRequestBody(); }

void RequestPipeline::onWritable() {
  if (fetch_ && (phase_ == Phase::Respond)) fetch_->resume();
}

void RequestPipeline::onOriginHead(core::ResponseHead head) {
  if (ignore_origin_) return;
  if (!origin_ms_) origin_ms_ = msSince(fetch_started_, core::SystemClock::instance().monoNow());
  ctx_.metrics()
      .histogram("portico_origin_duration_seconds",
                 "origin=\"" + core::promEscape(origin_name_) + "\"")
      ->observe(*origin_ms_ / 1000.0);
  if (phase_ == Phase::Fetch && match_.kind == conf::RouteKind::Site &&
      (ex_.request().method == "GET" || ex_.request().method == "HEAD")) {
    for (const auto& page : match_.site->error_pages) {
      if (page.status == head.status && page.path != ex_.request().path) {
        error_page_ = &page;
        error_status_ = head.status;
        transition(Phase::Fetch, Phase::ErrorPage);
        startErrorPage();
        return;
      }
    }
  }
  if (phase_ == Phase::ErrorPage) {
    if (head.status != 200) {
      // The error page itself is missing: answer the original status plainly.
      ignore_origin_ = true;
      phase_ = Phase::Route;  // respond() expects Route
      respond(error_status_, "text/plain; charset=utf-8",
              std::to_string(error_status_) + " " +
                  std::string(core::reasonPhrase(error_status_)) + "\n");
      return;
    }
    head.status = error_status_;
    head.reason.clear();
    head.headers.remove("etag");
    head.headers.remove("last-modified");
    head.headers.remove("accept-ranges");
    transition(Phase::ErrorPage, Phase::Respond);
  } else {
    transition(Phase::Fetch, Phase::Respond);
  }
  sendOriginHead(std::move(head));
}

void RequestPipeline::sendOriginHead(core::ResponseHead head) {
  status_ = head.status;
  auto length = contentLength(head.headers);
  head.headers.set("X-Cache", cache::xCacheValue(cache::CacheStatus::Miss));
  if (auto via = head.headers.getJoined("via")) {
    head.headers.set("Via", *via + ", 1.1 portico");
  } else {
    head.headers.add("Via", "1.1 portico");
  }
  ex_.sendHead(std::move(head), length);
}

void RequestPipeline::startErrorPage() {
  // Superseded fetch: ignore its remaining callbacks, destroy it from a fresh stack (we are
  // inside its own callback now), then fetch the error page from the same origin.
  ignore_origin_ = true;
  std::weak_ptr<bool> alive = alive_;
  ctx_.deferQueue().defer([this, alive] {
    auto a = alive.lock();
    if (!a || !*a) return;
    fetch_.reset();
    ignore_origin_ = false;
    origin::OriginRequest o;
    o.head = ex_.request();
    o.head.method = ex_.request().method == "HEAD" ? "HEAD" : "GET";
    o.head.headers.remove("if-none-match");
    o.head.headers.remove("if-modified-since");
    o.head.headers.remove("range");
    o.path = error_page_->path;
    forward_body_ = false;
    fetch_ = origin_->fetch(std::move(o), *this);
  });
}

bool RequestPipeline::onOriginBody(std::string_view chunk) {
  if (ignore_origin_ || phase_ != Phase::Respond) return true;
  body_out_ += chunk.size();
  return ex_.sendBody(chunk);
}

void RequestPipeline::onOriginDone(origin::FetchError error) {
  if (ignore_origin_) return;
  if (error != origin::FetchError::None) fetch_error_ = origin::toString(error);
  if (phase_ == Phase::Respond) {
    transition(Phase::Respond, Phase::Done);
    if (error == origin::FetchError::None) {
      ex_.endResponse();
    } else {
      ex_.abort();  // the body was cut short: the client must see a broken response
    }
    return;
  }
  // No head came: map the failure to a status.
  if (phase_ == Phase::ErrorPage) {
    phase_ = Phase::Route;
    respond(error_status_, "text/plain; charset=utf-8",
            std::to_string(error_status_) + " " + std::string(core::reasonPhrase(error_status_)) +
                "\n");
    return;
  }
  phase_ = Phase::Route;
  respondOriginError(error == origin::FetchError::None ? origin::FetchError::BadResponse : error);
}

void RequestPipeline::respondOriginError(origin::FetchError error) {
  bool timeout = error == origin::FetchError::Timeout;
  ctx_.metrics()
      .counter("portico_origin_errors_total", "origin=\"" + core::promEscape(origin_name_) +
                                                  "\",error=\"" +
                                                  std::string(origin::toString(error)) + "\"")
      ->add();
  if (kind_ == "api") {
    // API Gateway's answers for integration failures.
    if (timeout) {
      respondApiError(504, "Endpoint request timed out", "");
    } else {
      respondApiError(502, "Internal server error", "");
    }
    return;
  }
  if (timeout) {
    respond(504, "text/plain; charset=utf-8", "504 Gateway Timeout: the origin did not answer in time\n");
  } else {
    respond(502, "text/plain; charset=utf-8", "502 Bad Gateway: the origin could not be reached or answered badly\n");
  }
}

// ---- local answers ----------------------------------------------------------------------------

void RequestPipeline::respond(int status, std::string_view content_type, std::string body,
                              const core::HeaderMap* extra) {
  if (phase_ != Phase::Route) {
    transition(Phase::Route, Phase::Respond);  // asserts: reports the wrong phase
  }
  phase_ = Phase::Respond;
  status_ = status;
  core::ResponseHead head;
  head.status = status;
  if (extra) {
    for (const auto& e : *extra) head.headers.add(e.name, e.value);
  }
  head.headers.add("Content-Type", content_type);
  body_out_ += body.size();
  ex_.sendHead(std::move(head), body.size());
  ex_.sendBody(body);
  transition(Phase::Respond, Phase::Done);
  ex_.endResponse();
}

void RequestPipeline::respondApiError(int status, std::string_view message,
                                      std::string_view error_type) {
  core::HeaderMap extra;
  if (!error_type.empty()) extra.add("x-amzn-ErrorType", error_type);
  nlohmann::json body = {{"message", message}};
  respond(status, "application/json", body.dump(), &extra);
}

// ---- bookkeeping ------------------------------------------------------------------------------

void RequestPipeline::finish() {
  const core::RequestHead& req = ex_.request();
  double duration = msSince(started_, core::SystemClock::instance().monoNow());
  int status = status_ ? status_ : 499;  // 499: the client went away before an answer (nginx)
  std::string labels = "kind=\"" + kind_ + "\",name=\"" + core::promEscape(name_) +
                       "\",stage=\"" + core::promEscape(stage_) + "\",code=\"" +
                       statusClass(status) + "\"";
  ctx_.metrics().counter("portico_requests_total", labels)->add();
  const auto& log = view_->snapshot->access_log;
  if (!log || !log->enabled()) return;
  std::string route = kind_ == "none" ? "" : kind_ + ":" + name_;
  if (!stage_.empty()) route += "/" + stage_;
  nlohmann::json line = {
      {"time", isoTimeNow()},
      {"client", req.client_ip},
      {"method", req.method},
      {"target", req.target},
      {"host", req.authority},
      {"proto", req.http_minor == 0 ? "HTTP/1.0" : "HTTP/1.1"},
      {"status", status},
      {"bytes_in", body_in_},
      {"bytes_out", body_out_},
      {"duration_ms", duration},
      {"origin_ms", origin_ms_ ? nlohmann::json(*origin_ms_) : nlohmann::json(nullptr)},
      {"route", route},
      {"origin", origin_name_.empty() ? nlohmann::json(nullptr) : nlohmann::json(origin_name_)},
      {"cache", cache_status_},
  };
  if (match_.kind == conf::RouteKind::Api && match_.route) {
    line["resource"] = match_.route->method + " " + match_.route->path;
  }
  if (!fetch_error_.empty()) line["error"] = fetch_error_;
  log->write(line);
}

}  // namespace portico::proxy
