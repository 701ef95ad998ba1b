#pragma once
// Worker: one thread, one uv_loop_t (never the default loop), its own SO_REUSEPORT listening
// sockets (plain HTTP and TLS), its connections, its CurlMulti and origin clients, its metrics
// shard. A connection never leaves its worker. Other threads talk to a worker only through post()
// (LoopPoster). A TLS connection is a TlsTransport over a TcpTransport, made with the TlsContext
// of the snapshot current at accept time (the connection keeps it, so a reload that changes
// certificates affects new connections only). With [server.tls] redirect_http, plain-listener
// requests are answered 301 to https:// here, before any routing.
//
// Lifecycle: constructed on the main thread -> start() spawns the thread, which listens and
// runs the loop -> updateSnapshot() any number of times (reload) -> drain() (stop accepting,
// let in-flight requests finish, bounded) -> the loop ends -> join().
#include <uv.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <set>
#include <thread>
#include <vector>

#include "origin/curl_multi.h"
#include "proxy/core/defer_queue.h"
#include "proxy/core/loop_poster.h"
#include "proxy/core/metrics.h"
#include "proxy/core/uv_util.h"
#include "proxy/h1/http1_connection.h"
#include "proxy/io/listener.h"
#include "proxy/io/tls_transport.h"
#include "proxy/pipeline/pipeline_context.h"
#include "proxy/pipeline/shared_tier.h"

namespace portico::proxy {

class Worker final : public ConnectionHost, public PipelineContext {
 public:
  // `https_port`: the port of the first TLS listener, for redirect_http's Location (443 is left
  // out of the URL).
  Worker(int id, core::MetricsRegistry& registry, SnapshotPtr snapshot,
         std::vector<ListenSocket> sockets, int https_port = 443);
  ~Worker() override;

  // Before start(): the shared cache tiers (owned by the Server, outliving the worker).
  void setCache(cache::Store* store, cache::Coalescer* coalescer, std::uint64_t max_object);
  // Before start(): the shared tier (L2), when cache.redis is set. The worker opens its own
  // connection on its loop when its thread starts.
  void setSharedTier(SharedTierState* state) { shared_state_ = state; }
  void start();
  // Any thread. Requests started after the swap use the new snapshot.
  void updateSnapshot(SnapshotPtr snapshot);
  // Any thread. Stops accepting; idle connections close now, busy ones after their response;
  // after timeout_ms everything left is closed and the loop ends.
  void drain(std::uint64_t timeout_ms);
  void join();

  // ConnectionHost
  uv_loop_t* loop() override { return &loop_; }
  core::DeferQueue& deferQueue() override { return *defer_; }
  ConnectionSettings connectionSettings() const override;
  std::unique_ptr<RequestHandler> makeHandler(Exchange& exchange,
                                              const RequestFraming& framing) override;
  void onProtocolError(const std::string& client_ip, int status, const std::string& reason) override;
  void onConnectionOpened(Http1Connection* conn) override;
  void onConnectionClosed(Http1Connection* conn) override;
  bool draining() const override { return draining_; }
  void countBytes(std::uint64_t in, std::uint64_t out) override;

  // PipelineContext
  WorkerViewPtr view() override { return view_; }
  core::MetricsShard& metrics() override { return *metrics_; }
  CacheRuntime* cache() override { return cache_.store != nullptr ? &cache_ : nullptr; }

 private:
  void run();
  void installSnapshot(SnapshotPtr snapshot);
  void beginDrain(std::uint64_t timeout_ms);
  void maybeStop();
  static void onConnection(uv_stream_t* server, int status);
  std::unique_ptr<Transport> makeTlsTransport(uv_tcp_t* client);

  struct ListenerHandle {
    uv_tcp_t* tcp;
    bool tls;
  };

  int id_;
  int https_port_;
  uv_loop_t loop_;
  std::vector<ListenSocket> listen_fds_;
  std::vector<ListenerHandle> listeners_;
  std::unique_ptr<core::LoopPoster> poster_;
  std::unique_ptr<core::DeferQueue> defer_;
  std::unique_ptr<origin::CurlMulti> curl_;
  std::unique_ptr<core::Timer> drain_timer_;
  core::MetricsShard* metrics_;
  SnapshotPtr pending_snapshot_;  // handed to the thread at start
  WorkerViewPtr view_;
  CacheRuntime cache_;
  SharedTierState* shared_state_ = nullptr;
  std::unique_ptr<SharedTier> shared_;  // destroyed after the connections (pipelines use it)
  BackgroundJobs jobs_;  // stale-while-revalidate refreshes in flight
  std::set<Http1Connection*> connections_;
  bool draining_ = false;
  bool stopped_ = false;
  std::thread thread_;
  core::Counter* open_connections_;
  core::Counter* connections_total_;
  core::Counter* bytes_in_;
  core::Counter* bytes_out_;
  core::Counter* redirects_;
  TlsStats tls_stats_;
};

}  // namespace portico::proxy
