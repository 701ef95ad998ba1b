#include "proxy/stats/admin_server.h"

#include "proxy/core/uv_util.h"

namespace portico::proxy {
namespace {

class AdminHandler final : public RequestHandler {
 public:
  AdminHandler(Exchange& ex, core::MetricsRegistry& registry) {
    const core::RequestHead& req = ex.request();
    core::ResponseHead head;
    std::string body;
    std::string type = "text/plain; charset=utf-8";
    if (req.method != "GET" && req.method != "HEAD") {
      head.status = 405;
      head.headers.add("Allow", "GET, HEAD");
      body = "405 Method Not Allowed\n";
    } else if (req.path == "/healthz") {
      body = "ok\n";
    } else if (req.path == "/metrics") {
      type = "text/plain; version=0.0.4; charset=utf-8";
      body = registry.renderPrometheus();
    } else {
      head.status = 404;
      body = "404 Not Found: try /healthz or /metrics\n";
    }
    head.headers.add("Content-Type", type);
    head.headers.add("Cache-Control", "no-store");
    ex.sendHead(std::move(head), body.size());
    ex.sendBody(body);
    ex.endResponse();
  }
  void onRequestBody(std::string_view) override {}
  void onRequestComplete() override {}
};

}  // namespace

AdminServer::AdminServer(uv_loop_t* loop, core::MetricsRegistry& registry)
    : loop_(loop), registry_(registry), defer_(loop) {}

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
  return std::make_unique<AdminHandler>(exchange, registry_);
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
