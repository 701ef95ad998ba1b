#pragma once
// The admin listener, on the main thread's loop: GET /healthz, GET /metrics (Prometheus text,
// the sum of every worker's shard). It reuses Http1Connection, so it gets the same parser
// limits and timeouts as the proxy listeners.
#include <uv.h>

#include <functional>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "proxy/core/defer_queue.h"
#include "proxy/core/metrics.h"
#include "proxy/h1/http1_connection.h"

namespace portico::proxy {

// POST /purge support, provided by the server: the bearer token to require ("" disables purge)
// and the purge itself. `paths` empty: the whole site. Returns the number of objects removed,
// or sets `error` (e.g. an unknown site) and returns 0. Main thread.
struct PurgeHooks {
  std::function<std::string()> token;
  std::function<std::size_t(const std::string& site, const std::vector<std::string>& paths,
                            std::string& error)>
      purge;
  // Flushes an API stage's cache; `error` set (404) for an unknown api or stage.
  std::function<std::size_t(const std::string& api, const std::string& stage, std::string& error)>
      purge_stage;
  // Extra Prometheus text appended to /metrics (process-wide gauges such as the cache's).
  std::function<std::string()> extra_metrics;
};

class AdminServer final : public ConnectionHost {
 public:
  AdminServer(uv_loop_t* loop, core::MetricsRegistry& registry, PurgeHooks hooks = {});
  ~AdminServer() override;
  // Takes a bound socket; starts listening. Returns a libuv error code (0 on success).
  int listen(int fd);
  void close();

  // ConnectionHost
  uv_loop_t* loop() override { return loop_; }
  core::DeferQueue& deferQueue() override { return defer_; }
  ConnectionSettings connectionSettings() const override;
  std::unique_ptr<RequestHandler> makeHandler(Exchange& exchange,
                                              const RequestFraming& framing) override;
  void onProtocolError(const std::string&, int, const std::string&) override {}
  void onConnectionOpened(Http1Connection* conn) override { connections_.insert(conn); }
  void onConnectionClosed(Http1Connection* conn) override { connections_.erase(conn); }
  bool draining() const override { return closed_; }
  void countBytes(std::uint64_t, std::uint64_t) override {}

 private:
  static void onConnection(uv_stream_t* server, int status);
  uv_loop_t* loop_;
  core::MetricsRegistry& registry_;
  PurgeHooks hooks_;
  core::DeferQueue defer_;
  uv_tcp_t* tcp_ = nullptr;
  std::set<Http1Connection*> connections_;
  bool closed_ = false;
};

}  // namespace portico::proxy
