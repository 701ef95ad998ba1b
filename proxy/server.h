#pragma once
// Server: the process. Owns the current snapshot, the metrics registry, the N workers and the
// main thread's loop (signals + admin listener).
//   SIGHUP  -> reload: parse and validate the file again (certificates included: they are
//              loaded anew); valid: a new snapshot is posted to every worker (in-flight requests
//              finish on the old one, TLS connections keep their certificate); invalid: logged,
//              refused, the old conf keeps serving. Session-ticket keys are kept across reloads,
//              so clients resume their sessions after one.
//   SIGTERM / SIGINT -> drain: workers stop accepting, finish in-flight requests (bounded by
//              server.drain_timeout_ms), then the process exits 0.
#include <uv.h>

#include <memory>
#include <string>
#include <vector>

#include "cache/coalescer.h"
#include "cache/memory_store.h"
#include "proxy/api/api_state.h"
#include "proxy/core/metrics.h"
#include "proxy/io/tls_context.h"
#include "proxy/io/worker.h"
#include "proxy/shared_tier_sync.h"
#include "proxy/snapshot.h"
#include "proxy/stats/admin_server.h"

namespace portico::proxy {

class Server {
 public:
  // `conf_path` empty: the embedded demo conf (reload re-reads the embedded text).
  Server(conf::ConfigPtr config, std::string conf_path);
  ~Server();
  // Binds, starts the workers, runs the main loop until drained. Returns the exit code.
  int run();

 private:
  void reload();
  PurgeHooks purgeHooks();
  // This edge's L1 part of a purge (an admin request here, or news from another edge).
  std::size_t purgeSiteLocal(const std::string& site, const std::vector<std::string>& paths);
  std::size_t purgeStageLocal(const std::string& api, const std::string& stage);
  bool startSharedTier();  // cache.redis set: false (logged) when it cannot be configured
  std::vector<std::string> sharedScopes() const;
  std::string sharedTierMetrics() const;
  std::string cacheMetrics() const;
  void shutdown(const char* signal_name);
  static void onSignal(uv_signal_t* handle, int signum);

  conf::ConfigPtr config_;
  std::string conf_path_;
  std::uint64_t generation_ = 1;
  std::shared_ptr<TicketKeyRing> tickets_;  // shared by every TLS context of the process
  bool tls_listeners_ = false;
  core::MetricsRegistry registry_;
  core::MetricsShard* main_metrics_;
  uv_loop_t loop_;
  // The HTTP cache's shared tiers: built once at start-up (cache.* changes need a restart),
  // outlive the workers (destroyed after them).
  std::unique_ptr<cache::MemoryStore> store_;
  ApiState api_state_;  // stage buckets and stores, kept across reloads
  std::unique_ptr<cache::Coalescer> coalescer_;
  std::unique_ptr<SharedTierState> shared_state_;  // L2 (cache.redis), or null
  std::unique_ptr<SharedTierSync> shared_sync_;    // on loop_; gone once draining starts
  std::vector<std::unique_ptr<Worker>> workers_;
  std::unique_ptr<AdminServer> admin_;
  std::vector<uv_signal_t*> signals_;
  bool shutting_down_ = false;
};

// The embedded default configuration (deploy/demo/portico.toml, compiled in).
extern const char* const kEmbeddedConfig;

}  // namespace portico::proxy
