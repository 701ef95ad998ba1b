#include "proxy/io/worker.h"

#include <unistd.h>

#include "origin/origin_factory.h"
#include "proxy/pipeline/request_pipeline.h"
#include "proxy/stats/log.h"

namespace portico::proxy {

Worker::Worker(int id, core::MetricsRegistry& registry, SnapshotPtr snapshot,
               std::vector<int> listen_fds)
    : id_(id),
      listen_fds_(std::move(listen_fds)),
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
}

Worker::~Worker() {
  join();
  for (int fd : listen_fds_) ::close(fd);
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
  installSnapshot(std::move(pending_snapshot_));
  for (int fd : listen_fds_) {
    auto* tcp = new uv_tcp_t;
    uv_tcp_init(&loop_, tcp);
    tcp->data = this;
    int rc = uv_tcp_open(tcp, fd);
    if (rc == 0) rc = uv_listen(reinterpret_cast<uv_stream_t*>(tcp), 1024, &Worker::onConnection);
    if (rc != 0) {
      logEvent("error", "listen failed", {{"worker", id_}, {"error", uv_strerror(rc)}});
      core::closeAndDelete(tcp);
      continue;
    }
    listeners_.push_back(tcp);
  }
  listen_fds_.clear();  // owned by the uv handles now

  uv_run(&loop_, UV_RUN_DEFAULT);

  // The loop ended (drained). Release everything that holds handles on this loop.
  for (Http1Connection* c : std::set<Http1Connection*>(connections_)) c->forceClose();
  defer_->runAll();
  jobs_.clear();  // refreshes hold fetches on curl_ and tokens of the shared coalescer
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
  return out;
}

std::unique_ptr<RequestHandler> Worker::makeHandler(Exchange& exchange,
                                                    const RequestFraming& framing) {
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
  Http1Connection::start(*self, client);
}

void Worker::drain(std::uint64_t timeout_ms) {
  poster_->post([this, timeout_ms] { beginDrain(timeout_ms); });
}

void Worker::beginDrain(std::uint64_t timeout_ms) {
  if (draining_) return;
  draining_ = true;
  for (uv_tcp_t* l : listeners_) core::closeAndDelete(l);
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
