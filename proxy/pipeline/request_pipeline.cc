#include "proxy/pipeline/request_pipeline.h"

#include <algorithm>
#include <cassert>
#include <charconv>
#include <cstdlib>
#include <variant>
#include <random>

#include "cache/cache_key.h"
#include "cache/cache_status.h"
#include "cache/validation.h"
#include "proxy/api/cors.h"
#include "proxy/api/stage_vars.h"
#include "proxy/auth/jwt.h"
#include "proxy/pipeline/cached_response.h"
#include "proxy/stats/log.h"

namespace portico::proxy {
namespace {

using core::MonoTime;

double msSince(MonoTime from, MonoTime to) {
  return std::chrono::duration<double, std::milli>(to - from).count();
}

std::string requestId() {
  // A UUID v4 (RFC 9562), as API Gateway's requestId: 128 random bits, version and variant
  // set, in hex digits by hand (snprintf cost more than the rest of the function call setup).
  thread_local std::mt19937_64 rng{std::random_device{}()};
  const std::uint64_t a = (rng() & 0xFFFFFFFFFFFF0FFFull) | 0x4000ull;
  const std::uint64_t b = (rng() & 0x3FFFFFFFFFFFFFFFull) | 0x8000000000000000ull;
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out(36, '-');
  std::size_t at = 0;
  for (int nibble = 0; nibble < 32; ++nibble) {
    if (at == 8 || at == 13 || at == 18 || at == 23) ++at;
    const std::uint64_t word = nibble < 16 ? a : b;
    out[at++] = kHex[(word >> (60 - 4 * (nibble % 16))) & 0xF];
  }
  return out;
}

using core::contentLength;

core::WallTime wallNow() { return core::SystemClock::instance().wallNow(); }

// How long a follower waits for the leader of its key before fetching on its own.
constexpr std::uint64_t kFollowerWaitMs = 30000;
// Lookups per request: the first, plus re-lookups after a leader finished.
constexpr int kMaxLookups = 3;

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
  waiter_ = cache::WaiterHandle();  // no flight callback after this
  releaseSharedLock(false);         // the fetch was abandoned: other edges may try
  // An unfinished leader_ token is destroyed with us: Dangling, a follower takes over.
  finish();
}

std::string_view RequestPipeline::toString(Phase p) {
  switch (p) {
    case Phase::Route: return "Route";
    case Phase::Lookup: return "Lookup";
    case Phase::AwaitLeader: return "AwaitLeader";
    case Phase::Shared: return "Shared";
    case Phase::Fetch: return "Fetch";
    case Phase::Fill: return "Fill";
    case Phase::ErrorPage: return "ErrorPage";
    case Phase::Compress: return "Compress";
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
  // dir and s3 origins are buckets: they answer GET and HEAD (S3 website endpoints too).
  const auto& origins = view_->snapshot->config->origins;
  auto oc = origins.find(match_.behavior->origin);
  const bool bucket = oc != origins.end() &&
                      (oc->second.typeName() == "dir" || oc->second.typeName() == "s3");
  if (bucket && req.method != "GET" && req.method != "HEAD") {
    core::HeaderMap extra;
    extra.add("Allow", "GET, HEAD, OPTIONS");
    if (req.method == "OPTIONS") {
      respond(200, "text/plain; charset=utf-8", "", &extra);
    } else {
      respond(405, "text/plain; charset=utf-8",
              "405 Method Not Allowed: this site's origin serves GET, HEAD and OPTIONS\n", &extra);
    }
    return;
  }
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
  if (beginCache(o)) return;
  startFetch(match_.behavior->origin, std::move(o));
}

void RequestPipeline::routeApi() {
  const core::RequestHead& req = ex_.request();
  const conf::Api& api = *match_.api;
  // CORS preflights are the edge's to answer, before routing (a route for OPTIONS is optional)
  // and before any key or token check (browsers send neither on a preflight).
  if (api.cors && match_.stage && isPreflight(req)) {
    core::HeaderMap extra;
    if (std::optional<CorsHeaders> grant = preflight(*api.cors, req)) {
      for (const auto& [name, value] : grant->fields) extra.add(name, value);
    } else {
      extra.add("Vary", "Origin");  // no grant: the browser refuses the actual request
    }
    respondNoContent(&extra);
    return;
  }
  if (api.cors) decorateActual(*api.cors, req, api_headers_);
  if (match_.kind != conf::RouteKind::Api) {
    respondApiError(403, "Missing Authentication Token", "MissingAuthenticationTokenException");
    return;
  }
  const conf::ApiRoute& route = *match_.route;
  const conf::Stage& stage = *match_.stage;
  if (route.mock) {
    core::HeaderMap headers;
    std::optional<std::string_view> type;
    for (const auto& [k, v] : route.mock->headers) {
      if (core::iequals(k, "content-type")) {
        if (!type) type = v;
      } else {
        headers.add(k, v);
      }
    }
    respond(route.mock->status, type.value_or("application/json"), route.mock->body, &headers);
    return;
  }
  const ApiTables& tables = *view_->snapshot->api;
  const StageRuntime* runtime = tables.stage(api.name, stage.name);
  // Access control comes before the cache: a stored answer is never served to a caller who may
  // not have it. API key (403), then authorizer (401), then throttling (429).
  if (route.api_key_required) {
    auto key = req.headers.get("x-api-key");
    if (!key || runtime == nullptr || runtime->api_keys.find(*key) == runtime->api_keys.end()) {
      respondApiError(403, "Forbidden", "ForbiddenException");
      return;
    }
  }
  std::optional<std::map<std::string, std::string>> claims;
  if (!route.authorizer.empty()) {
    auto it = tables.authorizers.find(ApiTables::authorizerKey(api.name, route.authorizer));
    std::optional<std::string_view> token;
    if (auto auth = req.headers.get("authorization")) token = bearerToken(*auth);
    JwtResult verdict;
    if (it != tables.authorizers.end() && token) {
      verdict = verifyJwt(*token, it->second.keys, it->second.policy,
                          core::toUnixSeconds(core::SystemClock::instance().wallNow()));
    } else {
      verdict.reason = token ? "no such authorizer" : "no bearer token";
    }
    if (!verdict.ok) {
      fetch_error_ = "unauthorized: " + verdict.reason;
      respondApiError(401, "Unauthorized", "UnauthorizedException");
      return;
    }
    claims = std::move(verdict.claims);
  }
  const std::int64_t now_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                                  core::SystemClock::instance().monoNow().time_since_epoch())
                                  .count();
  std::shared_ptr<TokenBucket> route_bucket;
  if (auto rb = tables.route_buckets.find(ApiTables::routeKey(api.name, stage.name, route));
      rb != tables.route_buckets.end()) {
    route_bucket = rb->second;
  }
  TokenBucket* taken = nullptr;  // the route's bucket, once it gave a token
  for (TokenBucket* bucket : {route_bucket.get(), runtime ? runtime->bucket.get() : nullptr}) {
    if (bucket == nullptr) continue;
    TokenBucket::Decision d = bucket->take(now_ns);
    if (d.allowed) {
      taken = bucket;
    } else {
      // Refused by the stage: the request is not served, so it costs the route nothing.
      if (taken != nullptr) taken->giveBack();
      ctx_.metrics().counter("portico_api_throttled_total", apiLabels())->add();
      core::HeaderMap extra;
      extra.add("Retry-After", std::to_string(d.retry_after_s));
      extra.add("x-amzn-ErrorType", "TooManyRequestsException");
      nlohmann::json body = {{"message", "Too Many Requests"}};
      respond(429, "application/json", body.dump(), &extra);
      return;
    }
  }
  api_claims_ = std::move(claims);
  // The origin request (event fields, stage variables) is built only when the origin is asked:
  // a stage-cache hit needs none of it.
  if (beginApiCache()) return;
  if (!prepareApiRequest()) {
    respondApiError(500, "Internal server error", "");
    return;
  }
  startFetch(route.origin, std::move(cache_request_));
}

bool RequestPipeline::prepareApiRequest() {
  const core::RequestHead& req = ex_.request();
  const conf::ApiRoute& route = *match_.route;
  const conf::Stage& stage = *match_.stage;
  origin::OriginRequest o;
  o.head = req;
  o.path = stripFirstSegment(req.path);
  origin::ApiInvocation inv;
  inv.resource = route.path;
  inv.path = match_.resource_path;
  inv.stage = stage.name;
  inv.path_params = match_.path_params;
  inv.stage_variables = stage.variables;
  inv.request_id = requestId();
  inv.request_time_ms = core::toUnixMillis(core::SystemClock::instance().wallNow());
  inv.authorizer_claims = api_claims_;
  // ${stageVariables.x} in the origin's endpoint or function: this stage's values.
  const auto& origins = view_->snapshot->config->origins;
  if (auto oc = origins.find(route.origin); oc != origins.end()) {
    std::string endpoint, function;
    if (const auto* l = std::get_if<conf::LambdaOrigin>(&oc->second.spec)) {
      endpoint = l->endpoint;
      function = l->function;
    } else if (const auto* h = std::get_if<conf::HttpOrigin>(&oc->second.spec)) {
      endpoint = h->endpoint;
    }
    for (auto [text, out] : {std::pair{&endpoint, &inv.endpoint}, std::pair{&function, &inv.function}}) {
      if (!hasStageVariables(*text)) continue;
      std::string error;
      std::optional<std::string> value = substituteStageVariables(*text, stage.variables, error, stage.name);
      if (!value) {
        fetch_error_ = error;
        return false;
      }
      *out = std::move(*value);
    }
  }
  o.api = std::move(inv);
  if (primary_key_.empty()) {
    o.has_body = framing_.has_body;
    o.body_length_hint = framing_.chunked ? 0 : framing_.content_length;
  }
  cache_request_ = std::move(o);
  api_request_ready_ = true;
  return true;
}

const std::string& RequestPipeline::apiLabels() const {
  // Made once per request (name_ and stage_ are set by then): two or three metrics use it.
  if (api_labels_.empty()) {
    api_labels_ = "api=\"" + core::promEscape(name_) + "\",stage=\"" + core::promEscape(stage_) + "\"";
  }
  return api_labels_;
}

// API Gateway's stage cache: the key is method + stage + resource + the route's cache_key
// parameters; Cache-Control: max-age=0 asks for the entry to be replaced, if allowed.
bool RequestPipeline::beginApiCache() {
  cache_ = ctx_.cache();
  const core::RequestHead& req = ex_.request();
  const conf::Stage& stage = *match_.stage;
  if (cache_ == nullptr || !stage.cache.enabled) return false;
  api_behavior_ = cache::apiStageBehavior(stage, *match_.route);
  const cache::RequestDecision decision = cache::requestCacheability(req, api_behavior_);
  if (decision.kind == cache::RequestCacheability::Bypass) return false;
  behavior_ = &api_behavior_;
  const StageRuntime* runtime = view_->snapshot->api->stage(match_.api->name, stage.name);
  store_ = runtime && runtime->own_store ? runtime->own_store.get() : cache_->store;
  may_store_ = decision.kind == cache::RequestCacheability::Cacheable;
  primary_key_ = cache::apiPrimaryKey(*match_.api, stage, *match_.route, match_.path_params, req);
  primary_key_ += "|m:";
  primary_key_ += req.method;

  bool replace = false;
  const cache::RequestCacheControl rcc = cache::parseRequestCacheControl(req.headers);
  if (rcc.max_age && *rcc.max_age == 0) {
    bool authorized = !stage.cache.require_authorization_to_invalidate;
    if (!authorized) {
      const char* admin = std::getenv(view_->snapshot->config->admin.token_env.c_str());
      auto auth = req.headers.get("authorization");
      std::optional<std::string_view> token = auth ? bearerToken(*auth) : std::nullopt;
      authorized = admin != nullptr && *admin != '\0' && token && *token == admin;
    }
    if (authorized) {
      replace = true;
      countCache("invalidated");
    } else if (stage.cache.unauthorized_invalidation == "fail") {
      respondApiError(403, "Not authorized to invalidate the cache", "AccessDeniedException");
      return true;
    } else {
      countCache("invalidation_ignored");
      if (stage.cache.unauthorized_invalidation == "ignore_with_warning") {
        api_headers_.add("Warning", "199 portico \"Cache invalidation ignored: not authorized\"");
      }
    }
  }
  serve_after_fill_ = false;
  api_request_ready_ = false;  // prepareApiRequest() when the origin is asked
  origin_name_ = match_.route->origin;
  transition(Phase::Route, Phase::Lookup);
  if (replace) {
    ++lookups_;
    flight_key_ = primary_key_;
    joinFlight();
  } else {
    lookup();
  }
  return true;
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
  if (serving_ && phase_ == Phase::Respond) {
    if (continueObject(ex_, *serving_, serve_offset_, serve_end_, body_out_)) {
      serving_.reset();
      transition(Phase::Respond, Phase::Done);
      ex_.endResponse();
    }
    return;
  }
  if (fetch_ && (phase_ == Phase::Respond)) fetch_->resume();
}

void RequestPipeline::onOriginHead(core::ResponseHead head) {
  if (ignore_origin_) return;
  // Timed here; recorded in finish(), once the answer is on its way (off the latency path).
  if (!origin_ms_) origin_ms_ = msSince(fetch_started_, core::SystemClock::instance().monoNow());
  if (phase_ == Phase::Fetch) invalidateAfterUnsafe(head);
  if (phase_ == Phase::Fetch && match_.kind == conf::RouteKind::Site &&
      (ex_.request().method == "GET" || ex_.request().method == "HEAD")) {
    for (const auto& page : match_.site->error_pages) {
      if (page.status == head.status && page.path != ex_.request().path) {
        error_page_ = &page;
        error_status_ = head.status;
        fill_.abandon();
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
    if (!primary_key_.empty() && may_store_) {
      // CloudFront's error caching: the error page is stored for the URL that failed, for the
      // page's ttl_s, whatever the page's own freshness says.
      head.headers.remove("cache-control");
      head.headers.remove("expires");
      fill_.begin(cache_request_.head, head, *behavior_, staleDefaults(), request_time_,
                  wallNow(), primary_key_, cache_->max_object, error_page_->ttl_s);
    }
    if (!fill_.collecting() && leader_) leader_.giveUp(kHitForMiss);
    transition(Phase::ErrorPage, Phase::Respond);
  } else {
    if (!primary_key_.empty() && !cacheOriginHead(head)) return;
    transition(Phase::Fetch, Phase::Respond);
    // A stored compression candidate, streamed as identity to a client that wants no coding:
    // say so, as its later hits will (edge_compression.h).
    if (fill_.collecting() && behavior_->compress) {
      if (auto length = contentLength(head.headers); length && compressionApplies(head, *length)) {
        addVaryAcceptEncoding(head.headers);
      }
    }
  }
  sendOriginHead(std::move(head));
  if (ex_.request().isHead() && !primary_key_.empty() && !fill_.collecting() &&
      phase_ == Phase::Respond) {
    // The origin was asked for a GET (the cache wanted the body), nothing is stored: the head
    // is the whole answer, and the rest of the transfer is dropped.
    ignore_origin_ = true;
    transition(Phase::Respond, Phase::Done);
    ex_.endResponse();
    std::weak_ptr<bool> alive = alive_;
    ctx_.deferQueue().defer([this, alive] {
      auto a = alive.lock();
      if (a && *a) fetch_.reset();
    });
  }
}

void RequestPipeline::respondNoContent(const core::HeaderMap* extra) {
  phase_ = Phase::Respond;
  status_ = 204;
  core::ResponseHead head;
  head.status = 204;
  if (extra) {
    for (const auto& e : *extra) head.headers.add(e.name, e.value);
  }
  ex_.sendHead(std::move(head), 0);
  transition(Phase::Respond, Phase::Done);
  ex_.endResponse();
}

void RequestPipeline::sendOriginHead(core::ResponseHead head) {
  status_ = head.status;
  // The edge's CORS grant replaces the backend's (none when the origin is not allowed).
  if (match_.api && match_.api->cors) head.headers.remove("access-control-allow-origin");
  addExtra(head.headers, api_headers_);
  auto length = contentLength(head.headers);
  head.headers.set("X-Cache", cache::xCacheValue(cache::CacheStatus::Miss));
  addVia(head.headers);
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
    // Filling the cache needs the page's body even for a HEAD client (the stored answer must
    // serve later GETs); HEAD stays HEAD where nothing is stored.
    const bool filling = !primary_key_.empty() && may_store_;
    o.head.method = ex_.request().method == "HEAD" && !filling ? "HEAD" : "GET";
    o.head.headers.remove("if-none-match");
    o.head.headers.remove("if-modified-since");
    o.head.headers.remove("range");
    o.path = error_page_->path;
    forward_body_ = false;
    fetch_ = origin_->fetch(std::move(o), *this);
  });
}

bool RequestPipeline::onOriginBody(std::string_view chunk) {
  if (ignore_origin_) return true;
  if (phase_ == Phase::Fill) {
    fill_.append(chunk);  // within the declared Content-Length, checked at the head
    return true;
  }
  if (phase_ != Phase::Respond) return true;
  if (fill_.collecting() && !fill_.append(chunk) && leader_) {
    leader_.giveUp(std::chrono::milliseconds(0));  // too big to store after all
  }
  body_out_ += chunk.size();
  return ex_.sendBody(chunk);
}

void RequestPipeline::onOriginDone(origin::FetchError error) {
  if (ignore_origin_) return;
  if (error != origin::FetchError::None) fetch_error_ = origin::toString(error);
  if (!primary_key_.empty() && finishFlight(error)) return;
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
    ctx_.metrics()
        .counter("portico_api_function_errors_total",
                 apiLabels() + ",error=\"" + std::string(origin::toString(error)) + "\"")
        ->add();
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

void RequestPipeline::respond(int status, std::string_view content_type, std::string_view body,
                              core::HeaderMap* extra) {
  if (phase_ != Phase::Route) {
    transition(Phase::Route, Phase::Respond);  // asserts: reports the wrong phase
  }
  phase_ = Phase::Respond;
  status_ = status;
  core::ResponseHead head;
  head.status = status;
  if (extra) head.headers = std::move(*extra);
  for (const auto& e : api_headers_) head.headers.add(e.name, e.value);
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

// ---- cache ------------------------------------------------------------------------------------

bool RequestPipeline::beginCache(origin::OriginRequest& o) {
  cache_ = ctx_.cache();
  const core::RequestHead& req = ex_.request();
  if (cache_ == nullptr || match_.kind != conf::RouteKind::Site) return false;
  if (req.method != "GET" && req.method != "HEAD") return false;
  // Preconditions meant for the origin (RFC 9111 §4.3.2): not answered from the cache.
  if (req.headers.has("if-match") || req.headers.has("if-unmodified-since")) return false;
  const cache::RequestDecision decision = cache::requestCacheability(req, *match_.behavior);
  if (decision.kind == cache::RequestCacheability::Bypass) return false;
  behavior_ = match_.behavior;
  store_ = cache_->store;
  may_store_ = decision.kind == cache::RequestCacheability::Cacheable;
  primary_key_ = cache::sitePrimaryKey(*match_.site, *match_.behavior, req);
  // The origin is asked for the whole representation with GET, so that HEAD is answered from
  // the stored GET (nginx's proxy_cache_convert_head); the client's own conditions and range
  // are the cache's to answer. (A behavior with max_ttl_s = 0 bypasses all this: see
  // requestCacheability.)
  serve_after_fill_ = req.headers.has("range") || req.headers.has("if-none-match") ||
                      req.headers.has("if-modified-since");
  o.head.method = "GET";
  for (const char* name : {"range", "if-range", "if-none-match", "if-modified-since"}) {
    o.head.headers.remove(name);
  }
  o.has_body = false;
  o.body_length_hint = 0;
  cache_request_ = std::move(o);
  origin_name_ = match_.behavior->origin;
  transition(Phase::Route, Phase::Lookup);
  lookup();
  return true;
}

void RequestPipeline::lookup() {
  ++lookups_;
  const core::RequestHead& req = ex_.request();
  cache::CachedObjectPtr object = store_->lookup(primary_key_);
  flight_key_ = primary_key_;
  if (object && isVaryMarker(*object)) {
    const core::WallTime marker_since = object->meta.response_time;
    flight_key_ = variantStoreKey(primary_key_, object->meta.vary, req.headers);
    object = store_->lookup(flight_key_);
    // A variant from before the marker outlived an invalidation of the URL: not served.
    if (object && object->meta.request_time < marker_since) object.reset();
  }
  if (object) {
    switch (cache::entryUsability(wallNow(), object->meta).usability) {
      case cache::EntryUsability::Fresh:
        countCache("hit");
        serveStored(object, cache::CacheStatus::Hit);
        return;
      case cache::EntryUsability::StaleWhileRevalidate:
        countCache("stale_while_revalidate");
        startBackgroundRefresh(object);
        serveStored(object, cache::CacheStatus::Hit);
        return;
      case cache::EntryUsability::RevalidateOrStaleOnError:
      case cache::EntryUsability::Revalidate:
        stale_ = object;
        break;
    }
  }
  joinFlight();
}

void RequestPipeline::joinFlight() {
  if (!may_store_) {
    // Request no-store: this answer will not be stored, so it must not lead (its followers
    // would all be sent back to the origin) nor wait for one.
    fetchForCache();
    return;
  }
  // The callback runs on this loop, later, and never after waiter_ is destroyed.
  cache::JoinResult joined = cache_->coalescer->join(
      flight_key_, *cache_->poster, [this](cache::WaitResult r) { onFlightResult(std::move(r)); });
  switch (joined.role) {
    case cache::Role::Leader:
      leader_ = std::move(joined.leader);
      if (cache_->shared != nullptr) {
        if (cache_->shared->usable()) {
          transition(Phase::Lookup, Phase::Shared);
          sharedLookup();
          return;
        }
        cache_->shared->countSkippedLookup();
      }
      fetchForCache();
      return;
    case cache::Role::Pass:
      // Known not to be stored lately: a range or a HEAD goes to the origin as asked.
      if (serve_after_fill_ || ex_.request().isHead()) {
        fetchUncached();
      } else {
        fetchForCache();
      }
      return;
    case cache::Role::Follower:
      waiter_ = std::move(joined.waiter);
      transition(Phase::Lookup, Phase::AwaitLeader);
      countCache("coalesced_wait");
      wait_timer_ = std::make_unique<core::Timer>(ctx_.loop());
      wait_timer_->start(kFollowerWaitMs, [this] {
        // The leader hangs: leave the flight and fetch on our own.
        waiter_ = cache::WaiterHandle();
        fetchForCache();
      });
      return;
  }
}

void RequestPipeline::onFlightResult(cache::WaitResult result) {
  if (wait_timer_) wait_timer_->stop();
  waiter_ = cache::WaiterHandle();
  switch (result.outcome) {
    case cache::WaitOutcome::Done:
      if (result.object && result.object->meta.vary.empty() && !isVaryMarker(*result.object)) {
        countCache("hit");
        serveStored(result.object, cache::CacheStatus::Hit);
        return;
      }
      if (lookups_ < kMaxLookups) {
        transition(Phase::AwaitLeader, Phase::Lookup);
        stale_.reset();
        lookup();
        return;
      }
      break;
    case cache::WaitOutcome::Promoted:
      leader_ = std::move(result.leader);
      break;
    case cache::WaitOutcome::GiveUp:
    case cache::WaitOutcome::TransientError:
    case cache::WaitOutcome::WaitTimeout:
      break;
  }
  fetchForCache();
}

void RequestPipeline::fetchForCache() {
  if (phase_ == Phase::Lookup) {
    transition(Phase::Lookup, Phase::Fetch);
  } else if (phase_ == Phase::Shared) {
    transition(Phase::Shared, Phase::Fetch);
  } else {
    transition(Phase::AwaitLeader, Phase::Fetch);
  }
  auto it = view_->origins.find(origin_name_);
  if (it == view_->origins.end() || !it->second) {
    fetch_error_ = "origin type not available";
    if (leader_) leader_.fail();
    phase_ = Phase::Route;
    respondOriginError(origin::FetchError::Internal);
    return;
  }
  if (!api_request_ready_ && !prepareApiRequest()) {
    if (leader_) leader_.fail();
    phase_ = Phase::Route;
    respondApiError(500, "Internal server error", "");
    return;
  }
  origin::OriginRequest o = cache_request_;
  if (stale_) cache::setRevalidationHeaders(o.head.headers, stale_->meta);
  origin_ = it->second.get();
  cache_status_ = "miss";
  request_time_ = wallNow();
  fetch_started_ = core::SystemClock::instance().monoNow();
  fetch_ = origin_->fetch(std::move(o), *this);
}

void RequestPipeline::sharedLookup() {
  std::weak_ptr<bool> alive = alive_;
  cache_->shared->lookup(primary_key_, ex_.request().headers, [this, alive](SharedTier::Found found) {
    auto a = alive.lock();
    if (a && *a) onSharedFound(std::move(found));
  });
}

void RequestPipeline::onSharedFound(SharedTier::Found found) {
  if (found.object) {
    const cache::EntryUsability usability = cache::entryUsability(wallNow(), found.object->meta).usability;
    if (usability == cache::EntryUsability::Fresh ||
        usability == cache::EntryUsability::StaleWhileRevalidate) {
      // Into L1 as CacheFill::commit would store it (an L1 marker for the same names stays).
      if (found.marker) {
        cache::CachedObjectPtr existing = store_->lookup(primary_key_);
        if (!existing || !isVaryMarker(*existing) || existing->meta.vary != found.marker->meta.vary) {
          store_->insert(primary_key_, found.marker);
        }
      }
      store_->insert(found.store_key, found.object);
      if (leader_) leader_.complete(found.object);
      if (usability == cache::EntryUsability::Fresh) {
        countCache("l2_hit");
      } else {
        // Served stale at once, refreshed in the background, as from L1 (RFC 5861).
        countCache("l2_stale_while_revalidate");
        flight_key_ = found.store_key;
        startBackgroundRefresh(found.object);
      }
      serveStored(found.object, cache::CacheStatus::Hit);
      return;
    }
    // A stale copy of the very entry we lead: revalidate it rather than fetch it whole.
    if (!stale_ && found.store_key == flight_key_) stale_ = found.object;
  }
  std::weak_ptr<bool> alive = alive_;
  cache_->shared->lock(primary_key_, [this, alive](SharedTier::Lock lock) {
    auto a = alive.lock();
    if (a && *a) onSharedLock(lock);
  });
}

void RequestPipeline::onSharedLock(SharedTier::Lock lock) {
  const core::MonoTime now = core::SystemClock::instance().monoNow();
  switch (lock) {
    case SharedTier::Lock::Acquired:
      shared_lock_held_ = true;
      break;
    case SharedTier::Lock::Busy:
      // Another edge is fetching it: look again shortly, for a bounded time.
      if (shared_wait_until_ == core::MonoTime{}) {
        shared_wait_until_ = now + std::chrono::milliseconds(kLockWaitMs);
        countCache("l2_lock_wait");
      }
      if (now < shared_wait_until_) {
        if (!wait_timer_) wait_timer_ = std::make_unique<core::Timer>(ctx_.loop());
        wait_timer_->start(kLockPollMs, [this] { sharedLookup(); });
        return;
      }
      countCache("l2_lock_timeout");
      break;
    case SharedTier::Lock::Pass:
    case SharedTier::Lock::Unavailable:
      break;
  }
  fetchForCache();
}

void RequestPipeline::shareStored(const cache::CachedObjectPtr& object, const std::string& store_key) {
  if (cache_ == nullptr || primary_key_.empty()) return;
  // Not written (e.g. above redis_max_object): other edges fetch it themselves, without waiting.
  const bool written = shareStoredObject(cache_->shared, *store_, primary_key_, store_key, object);
  releaseSharedLock(!written);
}

void RequestPipeline::releaseSharedLock(bool pass) {
  if (!shared_lock_held_) return;
  shared_lock_held_ = false;
  // The worker drops its tier after closing its connections; a pipeline destroyed later
  // leaves the lock to expire on its own.
  if (cache_->shared == nullptr) return;
  if (pass) {
    cache_->shared->pass(primary_key_, static_cast<std::uint64_t>(kHitForMiss.count()));
  } else {
    cache_->shared->unlock(primary_key_);
  }
}

void RequestPipeline::fetchUncached() {
  if (phase_ == Phase::Lookup) {
    transition(Phase::Lookup, Phase::Fetch);
  } else if (phase_ == Phase::AwaitLeader) {
    transition(Phase::AwaitLeader, Phase::Fetch);
  }
  refetched_uncached_ = true;
  releaseSharedLock(false);
  primary_key_.clear();  // from here on the cache is out of this request
  fetch_.reset();
  ignore_origin_ = false;
  auto it = view_->origins.find(origin_name_);
  if (it == view_->origins.end() || !it->second) {
    fetch_error_ = "origin type not available";
    phase_ = Phase::Route;
    respondOriginError(origin::FetchError::Internal);
    return;
  }
  if (!api_request_ready_ && !prepareApiRequest()) {
    phase_ = Phase::Route;
    respondApiError(500, "Internal server error", "");
    return;
  }
  origin::OriginRequest o = cache_request_;
  o.head = ex_.request();
  origin_ = it->second.get();
  cache_status_ = "miss";
  fetch_started_ = core::SystemClock::instance().monoNow();
  fetch_ = origin_->fetch(std::move(o), *this);
}

bool RequestPipeline::cacheOriginHead(core::ResponseHead& head) {
  const core::WallTime now = wallNow();
  if (stale_ && head.status == 304) {
    // Our revalidation was answered: refresh the entry and serve it.
    ignore_origin_ = true;
    auto fresh = refreshNotModified(stale_, head, cache_request_.head, *behavior_,
                                    staleDefaults(), request_time_, now, *store_,
                                    flight_key_);
    if (leader_) leader_.complete(fresh ? fresh : stale_);
    if (fresh) shareStored(fresh, flight_key_);
    countCache("refresh_hit");
    serveStored(fresh ? fresh : stale_, cache::CacheStatus::RefreshHit);
    return false;
  }
  if (stale_ && head.status >= 500 && cache::staleIfErrorAllows(now, stale_->meta)) {
    ignore_origin_ = true;
    releaseSharedLock(false);
    if (leader_) leader_.complete(stale_);  // followers get the stale copy too
    countCache("stale_if_error");
    serveStored(stale_, cache::CacheStatus::Hit);
    return false;
  }
  const bool storing = may_store_ && head.status != 304 &&
                       fill_.begin(cache_request_.head, head, *behavior_, staleDefaults(),
                                   request_time_, now, primary_key_, cache_->max_object);
  countCache("miss");
  if (!storing) {
    releaseSharedLock(head.status < 500);
    if (leader_) {
      if (head.status >= 500) {
        leader_.fail();
      } else {
        leader_.giveUp(fill_.tooLarge() ? kTooLargeMemo : kHitForMiss);
      }
    }
    if (stale_) store_->remove(flight_key_);  // superseded by an uncacheable answer
    if (fill_.tooLarge() && head.status == 200 && ex_.request().headers.has("range") &&
        !refetched_uncached_) {
      // A range of an object too large to store: ask the origin for just that range (this
      // whole-object fetch is dropped from a fresh stack: we are inside its callback).
      ignore_origin_ = true;
      std::weak_ptr<bool> alive = alive_;
      ctx_.deferQueue().defer([this, alive] {
        auto a = alive.lock();
        if (a && *a) fetchUncached();
      });
      return false;
    }
    return true;
  }
  if ((serve_after_fill_ || compressAfterFill(*behavior_, ex_.request(), head)) &&
      contentLength(head.headers)) {
    transition(Phase::Fetch, Phase::Fill);  // stored whole first, then served from the store
    return false;
  }
  return true;
}

bool RequestPipeline::finishFlight(origin::FetchError error) {
  const bool ok = error == origin::FetchError::None;
  switch (phase_) {
    case Phase::Respond:
      if (ok && fill_.collecting()) {
        auto object = fill_.commit(*store_);
        if (leader_) leader_.complete(object);
        shareStored(object, fill_.storeKey());
      } else {
        fill_.abandon();
        if (leader_) leader_.fail();
      }
      releaseSharedLock(false);
      return false;  // the caller ends the streamed response
    case Phase::Fill:
      if (ok) {
        auto object = fill_.commit(*store_);
        if (leader_) leader_.complete(object);
        shareStored(object, fill_.storeKey());
        serveStored(object, cache::CacheStatus::Miss);
        return true;
      }
      releaseSharedLock(false);
      fill_.abandon();
      if (leader_) leader_.fail();
      phase_ = Phase::Route;
      respondOriginError(error);
      return true;
    case Phase::Fetch:  // no head came
      releaseSharedLock(false);
      if (stale_ && cache::staleIfErrorAllows(wallNow(), stale_->meta)) {
        if (leader_) leader_.complete(stale_);
        countCache("stale_if_error");
        serveStored(stale_, cache::CacheStatus::Hit);
        return true;
      }
      if (leader_) leader_.fail();
      return false;  // the caller maps the error to a status
    default:
      releaseSharedLock(false);
      if (leader_) leader_.fail();
      return false;
  }
}

void RequestPipeline::serveStored(const cache::CachedObjectPtr& object, cache::CacheStatus status) {
  if (phase_ == Phase::Respond || phase_ == Phase::Done) {
    logEvent("error", "pipeline: wrong phase", {{"expected", "not Respond"}, {"actual", toString(phase_)}});
    assert(false && "serveStored after the response started");
    return;
  }
  bool vary_accept_encoding = false;
  if (behavior_->compress) {
    const std::string key = object->meta.vary.empty()
                                ? primary_key_
                                : variantStoreKey(primary_key_, object->meta.vary, ex_.request().headers);
    CompressionPlan plan = planCompression(*behavior_, ex_.request(), *object, key);
    if (plan.coding != ContentCoding::Identity) {
      if (cache::CachedObjectPtr variant = findCompressed(*store_, plan, *object)) {
        sendStored(variant, status, false);
      } else {
        beginCompression(object, status, std::move(plan));
      }
      return;
    }
    vary_accept_encoding = plan.applies;
  }
  sendStored(object, status, vary_accept_encoding);
}

void RequestPipeline::sendStored(const cache::CachedObjectPtr& object, cache::CacheStatus status,
                                 bool vary_accept_encoding) {
  phase_ = Phase::Respond;
  cache_status_ = status == cache::CacheStatus::Hit          ? "hit"
                  : status == cache::CacheStatus::RefreshHit ? "refresh_hit"
                                                             : "miss";
  serving_ = object;
  ServedObject served = serveObject(ex_, *object, status, wallNow(), serve_offset_, serve_end_,
                                    vary_accept_encoding, api_headers_.empty() ? nullptr : &api_headers_);
  status_ = served.status;
  body_out_ += served.body_bytes;
  if (served.complete) {
    serving_.reset();
    transition(Phase::Respond, Phase::Done);
    ex_.endResponse();
  }
}

void RequestPipeline::beginCompression(const cache::CachedObjectPtr& identity,
                                       cache::CacheStatus status, CompressionPlan plan) {
  phase_ = Phase::Compress;
  compress_identity_ = identity;
  compress_status_ = status;
  compress_plan_ = std::move(plan);
  // Concurrent requests for the same variant wait for the one making it. The callback runs on
  // this loop, later, and never after waiter_ is destroyed.
  cache::JoinResult joined =
      cache_->coalescer->join(compress_plan_.variant_key, *cache_->poster,
                              [this](cache::WaitResult r) { onCompressFlight(std::move(r)); });
  switch (joined.role) {
    case cache::Role::Leader:
      runCompression(std::move(joined.leader));
      return;
    case cache::Role::Follower:
      waiter_ = std::move(joined.waiter);
      return;
    case cache::Role::Pass:
      onCompressed(nullptr);
      return;
  }
}

void RequestPipeline::runCompression(cache::LeaderToken token) {
  countCache("compress");
  startCompression(ctx_.loop(), *cache_, compress_identity_, compress_plan_, std::move(token),
                   alive_, [this](cache::CachedObjectPtr v) { onCompressed(v); });
}

void RequestPipeline::onCompressFlight(cache::WaitResult result) {
  waiter_ = cache::WaiterHandle();
  switch (result.outcome) {
    case cache::WaitOutcome::Done:
      onCompressed(result.object);
      return;
    case cache::WaitOutcome::Promoted:
      runCompression(std::move(result.leader));
      return;
    default:
      onCompressed(nullptr);
      return;
  }
}

void RequestPipeline::onCompressed(const cache::CachedObjectPtr& variant) {
  if (phase_ != Phase::Compress) return;
  cache::CachedObjectPtr identity = std::move(compress_identity_);
  if (variant) {
    sendStored(variant, compress_status_, false);
  } else {
    sendStored(identity, compress_status_, true);  // could not compress: identity, still Vary
  }
}

void RequestPipeline::startBackgroundRefresh(const cache::CachedObjectPtr& stale) {
  auto it = view_->origins.find(origin_name_);
  if (it == view_->origins.end() || !it->second) return;
  if (!api_request_ready_ && !prepareApiRequest()) return;
  cache::JoinResult joined =
      cache_->coalescer->join(flight_key_, *cache_->poster, [](cache::WaitResult) {});
  if (joined.role != cache::Role::Leader) return;  // already being fetched (or uncacheable)
  BackgroundRefresh::Params p;
  p.runtime = cache_;
  p.store = store_;
  p.defer = &ctx_.deferQueue();
  p.origin = it->second.get();
  p.request = cache_request_;
  cache::setRevalidationHeaders(p.request.head.headers, stale->meta);
  p.client_head = cache_request_.head;
  p.stale = stale;
  p.primary_key = primary_key_;
  p.store_key = flight_key_;
  p.behavior = *behavior_;
  p.defaults = staleDefaults();
  p.token = std::move(joined.leader);
  p.keep_alive = view_;  // the origin client lives in this view
  auto job = std::make_unique<BackgroundRefresh>(std::move(p));
  BackgroundRefresh* raw = job.get();
  cache_->jobs->adopt(std::move(job));
  raw->start();
}

void RequestPipeline::invalidateAfterUnsafe(const core::ResponseHead& head) {
  const core::RequestHead& req = ex_.request();
  CacheRuntime* runtime = ctx_.cache();
  if (runtime == nullptr || match_.kind != conf::RouteKind::Site || cache::isSafeMethod(req.method)) {
    return;
  }
  for (const cache::InvalidationTarget& t : cache::invalidationTargets(req, head)) {
    std::string decoded;
    if (!conf::percentDecode(t.path, decoded)) continue;
    conf::RouteMatch m = view_->snapshot->routes->match(t.host, "GET", decoded);
    if (m.kind != conf::RouteKind::Site || m.site != match_.site) continue;
    core::RequestHead target;
    target.method = "GET";
    target.authority = t.host;
    target.path = t.path;
    target.query = t.query;
    // Dropping the primary key drops the object, or the Vary marker and so every variant.
    const std::string key = cache::sitePrimaryKey(*m.site, *m.behavior, target);
    if (runtime->store->remove(key)) countCache("invalidated");
    if (runtime->shared != nullptr) runtime->shared->remove(key);
  }
}

cache::StaleDefaults RequestPipeline::staleDefaults() const {
  cache::StaleDefaults d;
  if (match_.site) {
    d.stale_while_revalidate_s = match_.site->stale_while_revalidate_s;
    d.stale_if_error_s = match_.site->stale_if_error_s;
  }
  return d;
}

void RequestPipeline::countCache(std::string_view what) {
  if (kind_ == "api") {
    std::string labels = apiLabels() + ",result=\"";
    labels += what;
    labels += '"';
    ctx_.metrics().counter("portico_api_cache_requests_total", labels)->add();
    return;
  }
  std::string labels = "site=\"" + core::promEscape(name_) + "\",result=\"";
  labels += what;
  labels += '"';
  ctx_.metrics().counter("portico_cache_requests_total", labels)->add();
}

// ---- bookkeeping ------------------------------------------------------------------------------

void RequestPipeline::finish() {
  const core::RequestHead& req = ex_.request();
  double duration = msSince(started_, core::SystemClock::instance().monoNow());
  int status = status_ ? status_ : 499;  // 499: the client went away before an answer (nginx)
  std::string labels;
  labels.reserve(48 + kind_.size() + name_.size() + stage_.size());
  labels += "kind=\"";
  labels += kind_;
  labels += "\",name=\"";
  labels += core::promEscape(name_);
  labels += "\",stage=\"";
  labels += core::promEscape(stage_);
  labels += "\",code=\"";
  labels += static_cast<char>('0' + std::clamp(status / 100, 0, 9));
  labels += "xx\"";
  ctx_.metrics().counter("portico_requests_total", labels)->add();
  if (origin_ms_) {
    ctx_.metrics()
        .histogram("portico_origin_duration_seconds",
                   "origin=\"" + core::promEscape(origin_name_) + "\"")
        ->observe(*origin_ms_ / 1000.0);
    if (kind_ == "api") {
      ctx_.metrics()
          .histogram("portico_api_function_duration_seconds", apiLabels())
          ->observe(*origin_ms_ / 1000.0);
    }
  }
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
  if (const TlsInfo* tls = ex_.tlsInfo()) {
    line["tls"] = std::string(tls->protocol);
    line["tls_resumed"] = tls->resumed;
  }
  log->write(line);
}

}  // namespace portico::proxy
