#pragma once
// The admin listener, on the main thread's loop: GET /healthz, GET /metrics (Prometheus text,
// the sum of every worker's shard). It reuses Http1Connection, so it gets the same parser
// limits and timeouts as the proxy listeners.
#include <uv.h>

#include <functional>
#include <memory>
#include <set>
#include <string>

#include "proxy/core/defer_queue.h"
#include "proxy/core/metrics.h"
#include "proxy/h1/http1_connection.h"

namespace portico::proxy {

class AdminServer final : public ConnectionHost {
 public:
  AdminServer(uv_loop_t* loop, core::MetricsRegistry& registry);
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
  core::DeferQueue defer_;
  uv_tcp_t* tcp_ = nullptr;
  std::set<Http1Connection*> connections_;
  bool closed_ = false;
};

}  // namespace portico::proxy
