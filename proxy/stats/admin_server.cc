#include "proxy/stats/admin_server.h"

#include <nlohmann/json.hpp>

#include "proxy/core/uv_util.h"

namespace portico::proxy {
namespace {

void answer(Exchange& ex, int status, std::string_view type, const std::string& body,
            const core::HeaderMap* extra = nullptr) {
  core::ResponseHead head;
  head.status = status;
  if (extra) {
    for (const auto& e : *extra) head.headers.add(e.name, e.value);
  }
  head.headers.add("Content-Type", type);
  head.headers.add("Cache-Control", "no-store");
  ex.sendHead(std::move(head), body.size());
  ex.sendBody(body);
  ex.endResponse();
}

void answerJson(Exchange& ex, int status, const nlohmann::json& body,
                const core::HeaderMap* extra = nullptr) {
  answer(ex, status, "application/json", body.dump() + "\n", extra);
}

// Constant-time comparison: the token check must not leak how many leading bytes matched.
bool sameToken(std::string_view a, std::string_view b) {
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  for (std::size_t i = 0; i < a.size(); ++i) {
    diff |= static_cast<unsigned char>(a[i] ^ (i < b.size() ? b[i] : 0));
  }
  return diff == 0;
}

// GET /healthz, GET /metrics: answered at once.
class AdminHandler final : public RequestHandler {
 public:
  AdminHandler(Exchange& ex, core::MetricsRegistry& registry, const PurgeHooks& hooks) {
    const core::RequestHead& req = ex.request();
    if (req.path == "/purge") {
      core::HeaderMap allow;
      allow.add("Allow", "POST");
      answer(ex, 405, "text/plain; charset=utf-8", "405 Method Not Allowed: POST /purge\n", &allow);
    } else if (req.method != "GET" && req.method != "HEAD") {
      core::HeaderMap allow;
      allow.add("Allow", "GET, HEAD");
      answer(ex, 405, "text/plain; charset=utf-8", "405 Method Not Allowed\n", &allow);
    } else if (req.path == "/healthz") {
      answer(ex, 200, "text/plain; charset=utf-8", "ok\n");
    } else if (req.path == "/metrics") {
      std::string body = registry.renderPrometheus();
      if (hooks.extra_metrics) body += hooks.extra_metrics();
      answer(ex, 200, "text/plain; version=0.0.4; charset=utf-8", body);
    } else {
      answer(ex, 404, "text/plain; charset=utf-8", "404 Not Found: try /healthz, /metrics or POST /purge\n");
    }
  }
  void onRequestBody(std::string_view) override {}
  void onRequestComplete() override {}
};

// POST /purge {"site": "www", "paths": ["/a.html", "/images/*"]}: reads the body (bounded by
// the admin listener's max_body_bytes), then answers {"site": ..., "purged": N}.
class PurgeHandler final : public RequestHandler {
 public:
  PurgeHandler(Exchange& ex, const PurgeHooks& hooks) : ex_(ex), hooks_(hooks) {
    const std::string token = hooks_.token ? hooks_.token() : std::string();
    if (token.empty() || !hooks_.purge) {
      done_ = true;
      ex_.closeAfterResponse();
      answerJson(ex_, 403, {{"message", "purge is disabled: no admin token is set (admin.token_env)"}});
      return;
    }
    auto auth = ex_.request().headers.get("authorization");
    constexpr std::string_view kBearer = "Bearer ";
    if (!auth || auth->size() <= kBearer.size() || !core::iequals(auth->substr(0, kBearer.size()), kBearer) ||
        !sameToken(core::trimOws(auth->substr(kBearer.size())), token)) {
      done_ = true;
      ex_.closeAfterResponse();
      core::HeaderMap extra;
      extra.add("WWW-Authenticate", "Bearer realm=\"portico-admin\"");
      answerJson(ex_, 401, {{"message", "missing or wrong bearer token"}}, &extra);
    }
  }
  void onRequestBody(std::string_view chunk) override {
    if (!done_) body_.append(chunk);
  }
  void onRequestComplete() override {
    if (done_) return;
    done_ = true;
    nlohmann::json doc = nlohmann::json::parse(body_, nullptr, /*allow_exceptions=*/false);
    if (!doc.is_object()) return bad("the body must be a JSON object");
    if (doc.contains("api")) return purgeStage(doc);
    auto site = doc.find("site");
    if (site == doc.end() || !site->is_string() || site->get<std::string>().empty()) {
      return bad("\"site\" must be a non-empty string");
    }
    std::vector<std::string> paths;
    if (auto p = doc.find("paths"); p != doc.end()) {
      if (!p->is_array() || p->empty()) return bad("\"paths\" must be a non-empty array of strings");
      for (const auto& v : *p) {
        if (!v.is_string() || v.get<std::string>().empty() || v.get<std::string>().front() != '/') {
          return bad("every path must be a string starting with '/'");
        }
        paths.push_back(v.get<std::string>());
      }
    }
    for (const auto& [k, v] : doc.items()) {
      if (k != "site" && k != "paths") return bad("unknown key \"" + k + "\"");
    }
    std::string error;
    std::size_t n = hooks_.purge(site->get<std::string>(), paths, error);
    if (!error.empty()) {
      answerJson(ex_, 404, {{"message", error}});
      return;
    }
    answerJson(ex_, 200, {{"site", site->get<std::string>()}, {"purged", n}});
  }

 private:
  // {"api": "billing", "stage": "prod"}: API Gateway's "flush stage cache".
  void purgeStage(const nlohmann::json& doc) {
    auto api = doc.find("api");
    auto stage = doc.find("stage");
    if (!api->is_string() || api->get<std::string>().empty()) return bad("\"api\" must be a non-empty string");
    if (stage == doc.end() || !stage->is_string() || stage->get<std::string>().empty()) {
      return bad("\"stage\" must be a non-empty string");
    }
    for (const auto& [k, v] : doc.items()) {
      if (k != "api" && k != "stage") return bad("unknown key \"" + k + "\"");
    }
    if (!hooks_.purge_stage) return bad("stage purge is not available");
    std::string error;
    std::size_t n = hooks_.purge_stage(api->get<std::string>(), stage->get<std::string>(), error);
    if (!error.empty()) {
      answerJson(ex_, 404, {{"message", error}});
      return;
    }
    answerJson(ex_, 200, {{"api", api->get<std::string>()}, {"stage", stage->get<std::string>()}, {"purged", n}});
  }
  void bad(const std::string& why) { answerJson(ex_, 400, {{"message", why}}); }
  Exchange& ex_;
  const PurgeHooks& hooks_;
  std::string body_;
  bool done_ = false;
};

}  // namespace

AdminServer::AdminServer(uv_loop_t* loop, core::MetricsRegistry& registry, PurgeHooks hooks)
    : loop_(loop), registry_(registry), hooks_(std::move(hooks)), defer_(loop) {}

AdminServer::~AdminServer() { close(); }

int AdminServer::listen(int fd) {
  tcp_ = new uv_tcp_t;
  uv_tcp_init(loop_, tcp_);
  tcp_->data = this;
  int rc = uv_tcp_open(tcp_, fd);
  if (rc == 0) rc = uv_listen(reinterpret_cast<uv_stream_t*>(tcp_), 128, &AdminServer::onConnection);
  return rc;
}

void AdminServer::close() {
  if (closed_) return;
  closed_ = true;
  core::closeAndDelete(tcp_);
  tcp_ = nullptr;
  for (Http1Connection* c : std::set<Http1Connection*>(connections_)) c->forceClose();
}

ConnectionSettings AdminServer::connectionSettings() const {
  ConnectionSettings s;
  s.limits.max_header_bytes = 16 * 1024;
  s.limits.max_body_bytes = 1024 * 1024;
  s.header_timeout_ms = 10000;
  s.idle_timeout_ms = 30000;
  return s;
}

std::unique_ptr<RequestHandler> AdminServer::makeHandler(Exchange& exchange,
                                                         const RequestFraming&) {
  if (exchange.request().path == "/purge" && exchange.request().method == "POST") {
    return std::make_unique<PurgeHandler>(exchange, hooks_);
  }
  return std::make_unique<AdminHandler>(exchange, registry_, hooks_);
}

void AdminServer::onConnection(uv_stream_t* server, int status) {
  auto* self = static_cast<AdminServer*>(server->data);
  if (status < 0 || self == nullptr || self->closed_) return;
  auto* client = new uv_tcp_t;
  uv_tcp_init(self->loop_, client);
  if (uv_accept(server, reinterpret_cast<uv_stream_t*>(client)) != 0) {
    core::closeAndDelete(client);
    return;
  }
  Http1Connection::start(*self, client);
}

}  // namespace portico::proxy
