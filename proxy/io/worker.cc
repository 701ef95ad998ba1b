#include "proxy/io/worker.h"

#include <unistd.h>

#include "origin/origin_factory.h"
#include "proxy/io/tcp_transport.h"
#include "proxy/pipeline/request_pipeline.h"
#include "proxy/stats/log.h"

namespace portico::proxy {
namespace {

// redirect_http: answers every plain-listener request with 301 to the same host and target on
// https (RFC 9110 §15.4.2), without routing. The answer is complete when the constructor
// returns; a request body is not read (the connection closes after the answer).
class RedirectHandler final : public RequestHandler {
 public:
  RedirectHandler(Exchange& ex, const WorkerView& view, core::Counter* redirects, int https_port) {
    const core::RequestHead& req = ex.request();
    core::ResponseHead head;
    std::string body;
    if (req.authority.empty()) {
      head.status = 400;
      body = "400 Bad Request: a Host header is needed to redirect to https\n";
    } else {
      head.status = 301;
      std::string location = "https://" + req.authority;
      if (https_port != 443) location += ":" + std::to_string(https_port);
      location += req.path;
      if (!req.query.empty()) location += "?" + req.query;
      head.headers.add("Location", location);
      body = "301 Moved Permanently: " + location + "\n";
    }
    head.headers.add("Content-Type", "text/plain; charset=utf-8");
    ex.sendHead(std::move(head), body.size());
    ex.sendBody(body);
    ex.endResponse();
    redirects->add();
    const auto& log = view.snapshot->access_log;
    if (log && log->enabled()) {
      log->write({{"time", isoTimeNow()}, {"client", req.client_ip}, {"method", req.method},
                  {"target", req.target}, {"host", req.authority},
                  {"proto", req.http_minor == 0 ? "HTTP/1.0" : "HTTP/1.1"},
                  {"status", req.authority.empty() ? 400 : 301}, {"route", "redirect:https"},
                  {"cache", "bypass"}});
    }
  }
  void onRequestBody(std::string_view) override {}
  void onRequestComplete() override {}
};

}  // namespace

Worker::Worker(int id, core::MetricsRegistry& registry, SnapshotPtr snapshot,
               std::vector<ListenSocket> sockets, int https_port)
    : id_(id),
      https_port_(https_port),
      listen_fds_(std::move(sockets)),
      metrics_(registry.addShard()),
      pending_snapshot_(std::move(snapshot)) {
  uv_loop_init(&loop_);
  poster_ = std::make_unique<core::LoopPoster>(&loop_);
  defer_ = std::make_unique<core::DeferQueue>(&loop_);
  // Metric families exist from the start, so /metrics shows them at zero.
  open_connections_ = metrics_->gauge("portico_open_connections");
  connections_total_ = metrics_->counter("portico_connections_total");
  bytes_in_ = metrics_->counter("portico_bytes_received_total");
  bytes_out_ = metrics_->counter("portico_bytes_sent_total");
  redirects_ = metrics_->counter("portico_https_redirects_total");
  for (int v13 = 0; v13 < 2; ++v13) {
    for (int resumed = 0; resumed < 2; ++resumed) {
      std::string labels = std::string("protocol=\"") + (v13 ? "TLSv1.3" : "TLSv1.2") +
                           "\",resumed=\"" + (resumed ? "true" : "false") + "\"";
      tls_stats_.handshakes[v13][resumed] = metrics_->counter("portico_tls_handshakes_total", labels);
    }
  }
  const char* kErrors = "portico_tls_handshake_errors_total";
  tls_stats_.failed_timeout = metrics_->counter(kErrors, "reason=\"timeout\"");
  tls_stats_.failed_protocol = metrics_->counter(kErrors, "reason=\"protocol\"");
  tls_stats_.failed_plain_http = metrics_->counter(kErrors, "reason=\"plain_http\"");
  tls_stats_.failed_closed = metrics_->counter(kErrors, "reason=\"closed\"");
}

Worker::~Worker() {
  join();
  for (const ListenSocket& s : listen_fds_) ::close(s.fd);
}

void Worker::setCache(cache::Store* store, cache::Coalescer* coalescer, std::uint64_t max_object) {
  cache_.store = store;
  cache_.coalescer = coalescer;
  cache_.max_object = max_object;
  cache_.poster = poster_.get();
  cache_.jobs = &jobs_;
}

void Worker::start() {
  thread_ = std::thread([this] { run(); });
}

void Worker::join() {
  if (thread_.joinable()) thread_.join();
}

void Worker::run() {
  curl_ = std::make_unique<origin::CurlMulti>(&loop_);
  if (shared_state_ != nullptr) {
    shared_ = std::make_unique<SharedTier>(&loop_, *shared_state_);
    cache_.shared = shared_.get();
  }
  installSnapshot(std::move(pending_snapshot_));
  for (const ListenSocket& sock : listen_fds_) {
    auto* tcp = new uv_tcp_t;
    uv_tcp_init(&loop_, tcp);
    tcp->data = this;
    int rc = uv_tcp_open(tcp, sock.fd);
    if (rc == 0) rc = uv_listen(reinterpret_cast<uv_stream_t*>(tcp), 1024, &Worker::onConnection);
    if (rc != 0) {
      logEvent("error", "listen failed", {{"worker", id_}, {"error", uv_strerror(rc)}});
      core::closeAndDelete(tcp);
      continue;
    }
    listeners_.push_back({tcp, sock.tls});
  }
  listen_fds_.clear();  // owned by the uv handles now

  uv_run(&loop_, UV_RUN_DEFAULT);

  // The loop ended (drained). Release everything that holds handles on this loop.
  for (Http1Connection* c : std::set<Http1Connection*>(connections_)) c->forceClose();
  defer_->runAll();
  jobs_.clear();  // refreshes hold fetches on curl_ and tokens of the shared coalescer
  cache_.shared = nullptr;
  shared_.reset();
  view_.reset();
  curl_.reset();
  drain_timer_.reset();
  defer_.reset();
  poster_.reset();
  uv_run(&loop_, UV_RUN_DEFAULT);
  int rc = core::closeLoop(&loop_);
  if (rc != 0) logEvent("warn", "worker loop closed with handles left", {{"worker", id_}});
}

void Worker::updateSnapshot(SnapshotPtr snapshot) {
  poster_->post([this, snapshot = std::move(snapshot)]() mutable {
    installSnapshot(std::move(snapshot));
  });
}

void Worker::installSnapshot(SnapshotPtr snapshot) {
  auto view = std::make_shared<WorkerView>();
  origin::OriginContext octx{&loop_, curl_.get()};
  for (const auto& [name, cfg] : snapshot->config->origins) {
    view->origins.emplace(name, origin::makeOriginClient(cfg, octx));
  }
  view->snapshot = std::move(snapshot);
  view_ = std::move(view);  // in-flight pipelines keep the old view alive until they finish
}

ConnectionSettings Worker::connectionSettings() const {
  const conf::ServerConfig& s = view_->snapshot->config->server;
  ConnectionSettings out;
  out.limits.max_header_bytes = s.max_header_bytes;
  out.limits.max_body_bytes = s.max_body_bytes;
  out.header_timeout_ms = s.header_timeout_ms;
  out.idle_timeout_ms = s.idle_timeout_ms;
  if (s.tls) out.hsts_max_age_s = s.tls->hsts_max_age_s;
  return out;
}

std::unique_ptr<RequestHandler> Worker::makeHandler(Exchange& exchange,
                                                    const RequestFraming& framing) {
  const conf::ServerConfig& sc = view_->snapshot->config->server;
  if (sc.tls && sc.tls->redirect_http && exchange.tlsInfo() == nullptr) {
    return std::make_unique<RedirectHandler>(exchange, *view_, redirects_, https_port_);
  }
  auto pipeline = std::make_unique<RequestPipeline>(*this, exchange, framing);
  pipeline->start();
  return pipeline;
}

void Worker::onProtocolError(const std::string& client_ip, int status, const std::string& reason) {
  metrics_->counter("portico_protocol_errors_total", "code=\"" + std::to_string(status) + "\"")->add();
  metrics_
      ->counter("portico_requests_total", "kind=\"none\",name=\"\",stage=\"\",code=\"" +
                                              std::to_string(status / 100) + "xx\"")
      ->add();
  const auto& log = view_->snapshot->access_log;
  if (log && log->enabled()) {
    log->write({{"time", isoTimeNow()}, {"client", client_ip}, {"status", status},
                {"error", reason}, {"route", ""}, {"cache", "bypass"}});
  }
}

void Worker::onConnectionOpened(Http1Connection* conn) {
  connections_.insert(conn);
  open_connections_->add();
  connections_total_->add();
}

void Worker::onConnectionClosed(Http1Connection* conn) {
  connections_.erase(conn);
  open_connections_->sub();
  if (draining_) maybeStop();
}

void Worker::countBytes(std::uint64_t in, std::uint64_t out) {
  if (in) bytes_in_->add(in);
  if (out) bytes_out_->add(out);
}

void Worker::onConnection(uv_stream_t* server, int status) {
  auto* self = static_cast<Worker*>(server->data);
  if (status < 0 || self == nullptr || self->draining_) return;
  auto* client = new uv_tcp_t;
  uv_tcp_init(&self->loop_, client);
  if (uv_accept(server, reinterpret_cast<uv_stream_t*>(client)) != 0) {
    core::closeAndDelete(client);
    return;
  }
  bool tls = false;
  for (const ListenerHandle& l : self->listeners_) {
    if (reinterpret_cast<uv_stream_t*>(l.tcp) == server) tls = l.tls;
  }
  if (!tls) {
    Http1Connection::start(*self, std::make_unique<TcpTransport>(client));
    return;
  }
  if (std::unique_ptr<Transport> t = self->makeTlsTransport(client)) {
    Http1Connection::start(*self, std::move(t));
  }
}

std::unique_ptr<Transport> Worker::makeTlsTransport(uv_tcp_t* client) {
  const std::shared_ptr<const TlsContext>& ctx = view_->snapshot->tls;
  SSL* ssl = ctx ? ctx->newSsl() : nullptr;
  if (ssl == nullptr) {  // out of memory (or, impossibly, a TLS listener without a context)
    tls_stats_.failed_protocol->add();
    core::closeAndDelete(client);
    return nullptr;
  }
  return std::make_unique<TlsTransport>(&loop_, std::make_unique<TcpTransport>(client), ctx, ssl,
                                        view_->snapshot->config->server.header_timeout_ms,
                                        &tls_stats_);
}

void Worker::drain(std::uint64_t timeout_ms) {
  poster_->post([this, timeout_ms] { beginDrain(timeout_ms); });
}

void Worker::beginDrain(std::uint64_t timeout_ms) {
  if (draining_) return;
  draining_ = true;
  for (const ListenerHandle& l : listeners_) core::closeAndDelete(l.tcp);
  listeners_.clear();
  for (Http1Connection* c : std::set<Http1Connection*>(connections_)) c->closeWhenIdle();
  drain_timer_ = std::make_unique<core::Timer>(&loop_);
  drain_timer_->start(timeout_ms, [this] {
    logEvent("warn", "drain timeout: closing busy connections",
             {{"worker", id_}, {"connections", connections_.size()}});
    for (Http1Connection* c : std::set<Http1Connection*>(connections_)) c->forceClose();
  });
  maybeStop();
}

void Worker::maybeStop() {
  if (!connections_.empty() || stopped_) return;
  stopped_ = true;
  if (drain_timer_) drain_timer_->stop();
  // Let the remaining handles (poster, defer queue, curl) go so uv_run returns.
  poster_->unref();
  uv_stop(&loop_);
}

}  // namespace portico::proxy
