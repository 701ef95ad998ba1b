#include "proxy/server.h"

#include <algorithm>

#include "cache/cache_key.h"

#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <optional>
#include <thread>

#include "conf/config_parser.h"
#include "proxy/core/uv_util.h"
#include "proxy/io/listener.h"
#include "proxy/pipeline/cache_runtime.h"
#include "proxy/stats/log.h"
#include "cache/redis_client.h"

namespace portico::proxy {
namespace {

bool sameAddresses(const std::vector<conf::ListenAddress>& a,
                   const std::vector<conf::ListenAddress>& b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (a[i].toString() != b[i].toString()) return false;
  }
  return true;
}

bool sameListeners(const conf::ServerConfig& a, const conf::ServerConfig& b) {
  static const std::vector<conf::ListenAddress> kNone;
  return sameAddresses(a.listen, b.listen) &&
         sameAddresses(a.tls ? a.tls->listen : kNone, b.tls ? b.tls->listen : kNone) &&
         a.workers == b.workers;
}

// The "# HELP" / "# TYPE" lines of a metric family (Prometheus text format).
void appendFamily(std::string& out, const char* name, const char* type, const char* help) {
  out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " " + type + "\n";
}

// One unlabelled sample with its family lines.
void appendMetric(std::string& out, const char* name, const char* type, const char* help, std::uint64_t v) {
  appendFamily(out, name, type, help);
  out += std::string(name) + " " + std::to_string(v) + "\n";
}

int workerCount(const conf::ServerConfig& s) {
  if (s.workers > 0) return s.workers;
  unsigned n = std::thread::hardware_concurrency();
  return n == 0 ? 1 : static_cast<int>(n);
}

}  // namespace

Server::Server(conf::ConfigPtr config, std::string conf_path)
    : config_(std::move(config)), conf_path_(std::move(conf_path)) {
  main_metrics_ = registry_.addShard();
  main_metrics_->counter("portico_config_reloads_total", "result=\"ok\"");
  main_metrics_->counter("portico_config_reloads_total", "result=\"error\"");
  uv_loop_init(&loop_);
}

Server::~Server() {
  for (uv_signal_t* s : signals_) core::closeAndDelete(s);
  signals_.clear();
  workers_.clear();
  admin_.reset();
  shared_sync_.reset();
  core::closeLoop(&loop_);
}

int Server::run() {
  std::string error;
  tickets_ = std::make_shared<TicketKeyRing>();
  SnapshotPtr snapshot = buildSnapshot(config_, generation_, error, tickets_, &api_state_);
  if (!snapshot) {
    logEvent("error", "start-up failed", {{"error", error}});
    return 1;
  }
  // Signals first: once a "listening" line is out, SIGHUP and SIGTERM must already be handled.
  for (int signum : {SIGHUP, SIGTERM, SIGINT}) {
    auto* sig = new uv_signal_t;
    uv_signal_init(&loop_, sig);
    sig->data = this;
    uv_signal_start(sig, &Server::onSignal, signum);
    signals_.push_back(sig);
  }
  const conf::ServerConfig& sc = config_->server;
  int n = workerCount(sc);
  std::vector<std::vector<ListenSocket>> fds(static_cast<std::size_t>(n));
  int https_port = 443;
  auto listenAll = [&](const std::vector<conf::ListenAddress>& addrs, bool tls) {
    for (const conf::ListenAddress& addr : addrs) {
      conf::ListenAddress bound;
      std::vector<int> socks = bindReusePort(addr, n, bound, error);
      if (socks.empty()) {
        logEvent("error", "cannot listen", {{"addr", addr.toString()}, {"error", error}});
        return false;
      }
      for (int i = 0; i < n; ++i) {
        // listen() now, so connections queue from the moment the address is announced; the
        // worker's uv_listen() later only starts accepting.
        if (::listen(socks[static_cast<std::size_t>(i)], 1024) != 0) {
          logEvent("error", "cannot listen", {{"addr", bound.toString()}, {"error", "listen() failed"}});
          return false;
        }
        fds[static_cast<std::size_t>(i)].push_back({socks[static_cast<std::size_t>(i)], tls});
      }
      if (tls && !tls_listeners_) https_port = bound.port;  // redirect_http targets the first
      tls_listeners_ = tls_listeners_ || tls;
      logEvent("info", "listening", {{"listener", tls ? "https" : "http"}, {"addr", bound.toString()}, {"workers", n}});
    }
    return true;
  };
  if (!listenAll(sc.listen, false)) return 1;
  if (sc.tls && !listenAll(sc.tls->listen, true)) return 1;
  if (config_->admin.listen) {
    conf::ListenAddress bound;
    int fd = bindSingle(*config_->admin.listen, bound, error);
    admin_ = std::make_unique<AdminServer>(&loop_, registry_, purgeHooks());
    if (fd < 0 || ::listen(fd, 128) != 0 || admin_->listen(fd) != 0) {
      logEvent("error", "cannot listen", {{"addr", config_->admin.listen->toString()}, {"error", error}});
      return 1;
    }
    logEvent("info", "listening", {{"listener", "admin"}, {"addr", bound.toString()}});
  }
  cache::MemoryStoreOptions store_options;
  store_options.capacity_bytes = config_->cache.memory;
  store_options.max_object_bytes = config_->cache.max_object;
  store_options.group_of = &siteOfKey;
  store_ = std::make_unique<cache::MemoryStore>(store_options);
  coalescer_ = std::make_unique<cache::Coalescer>();
  if (!config_->cache.redis.empty() && !startSharedTier()) return 1;
  for (int i = 0; i < n; ++i) {
    workers_.push_back(std::make_unique<Worker>(i, registry_, snapshot,
                                                std::move(fds[static_cast<std::size_t>(i)]), https_port));
    workers_.back()->setCache(store_.get(), coalescer_.get(), store_->maxObjectBytes());
    workers_.back()->setSharedTier(shared_state_.get());
  }
  for (auto& w : workers_) w->start();

  logEvent("info", "started", {{"version", PORTICO_VERSION}, {"conf", config_->source_path}, {"workers", n}});
  uv_run(&loop_, UV_RUN_DEFAULT);
  for (auto& w : workers_) w->join();
  logEvent("info", "stopped");
  return 0;
}

void Server::onSignal(uv_signal_t* handle, int signum) {
  auto* self = static_cast<Server*>(handle->data);
  if (signum == SIGHUP) {
    self->reload();
  } else {
    self->shutdown(signum == SIGTERM ? "SIGTERM" : "SIGINT");
  }
}

void Server::reload() {
  if (shutting_down_) return;
  conf::LoadResult result = conf_path_.empty()
                                ? conf::parseConfig(kEmbeddedConfig, "<embedded>", "deploy/demo")
                                : conf::loadConfigFile(conf_path_);
  if (!result.ok()) {
    std::vector<std::string> errors;
    for (const auto& e : result.errors) errors.push_back(e.toString());
    main_metrics_->counter("portico_config_reloads_total", "result=\"error\"")->add();
    logEvent("error", "reload refused: the new configuration is invalid; keeping the old one",
             {{"errors", errors}});
    return;
  }
  if (!sameListeners(result.config->server, config_->server) ||
      (result.config->admin.listen ? result.config->admin.listen->toString() : "") !=
          (config_->admin.listen ? config_->admin.listen->toString() : "")) {
    logEvent("warn", "reload: listen addresses and worker count are kept; changing them needs a restart");
  }
  if (tls_listeners_ && !result.config->server.tls) {
    main_metrics_->counter("portico_config_reloads_total", "result=\"error\"")->add();
    logEvent("error", "reload refused: [server.tls] was removed but the TLS listeners are open; "
                      "that needs a restart");
    return;
  }
  std::string error;
  SnapshotPtr snapshot = buildSnapshot(result.config, generation_ + 1, error, tickets_, &api_state_);
  if (!snapshot) {
    main_metrics_->counter("portico_config_reloads_total", "result=\"error\"")->add();
    logEvent("error", "reload refused", {{"error", error}});
    return;
  }
  ++generation_;
  config_ = result.config;
  for (auto& w : workers_) w->updateSnapshot(snapshot);
  if (shared_sync_) shared_sync_->setScopes(sharedScopes());
  main_metrics_->counter("portico_config_reloads_total", "result=\"ok\"")->add();
  logEvent("info", "reloaded", {{"conf", config_->source_path}, {"generation", generation_}});
}

PurgeHooks Server::purgeHooks() {
  PurgeHooks hooks;
  // Read at each request, so a token set in the environment of a reloaded conf's token_env
  // takes effect with the reload.
  hooks.token = [this] {
    const char* v = std::getenv(config_->admin.token_env.c_str());
    return std::string(v != nullptr ? v : "");
  };
  hooks.purge_stage = [this](const std::string& api, const std::string& stage,
                             std::string& error) -> std::size_t {
    const conf::Api* a = nullptr;
    for (const conf::Api& x : config_->apis) a = x.name == api ? &x : a;
    const bool known = a != nullptr && std::any_of(a->stages.begin(), a->stages.end(),
                                                   [&](const conf::Stage& s) { return s.name == stage; });
    if (!known) {
      error = "no stage \"" + stage + "\" in an API named \"" + api + "\"";
      return 0;
    }
    std::size_t n = purgeStageLocal(api, stage);
    if (shared_sync_) shared_sync_->publish(PurgeNews{"", {}, api, stage});
    return n;
  };
  hooks.purge = [this](const std::string& site, const std::vector<std::string>& paths,
                       std::string& error) -> std::size_t {
    bool known = false;
    for (const conf::Site& s : config_->sites) known = known || s.name == site;
    if (!known) {
      error = "no site named \"" + site + "\"";
      return 0;
    }
    std::size_t n = purgeSiteLocal(site, paths);
    if (shared_sync_) shared_sync_->publish(PurgeNews{site, paths, "", ""});
    return n;
  };
  hooks.extra_metrics = [this] { return cacheMetrics(); };
  return hooks;
}

std::size_t Server::purgeSiteLocal(const std::string& site, const std::vector<std::string>& paths) {
  if (!store_) return 0;
  std::size_t n = purgeSite(*store_, site, paths);
  main_metrics_->counter("portico_cache_purged_objects_total", "site=\"" + core::promEscape(site) + "\"")->add(n);
  logEvent("info", "purge", {{"site", site}, {"paths", paths}, {"purged", n}});
  return n;
}

std::size_t Server::purgeStageLocal(const std::string& api, const std::string& stage) {
  std::shared_ptr<cache::Store> own = api_state_.stageStore(api, stage);
  cache::Store* store = own ? own.get() : store_.get();
  if (store == nullptr) return 0;
  std::size_t n = store->purgePrefix(cache::apiStagePrefix(api, stage));
  logEvent("info", "stage flush", {{"api", api}, {"stage", stage}, {"purged", n}});
  return n;
}

bool Server::startSharedTier() {
  const conf::CacheConfig& c = config_->cache;
  std::string error;
  std::optional<cache::RedisOptions> options = cache::parseRedisUrl(c.redis, error);
  if (!options) {
    logEvent("error", "cache.redis", {{"error", error}});
    return false;
  }
  if (!c.redis_password_env.empty()) {
    const char* v = std::getenv(c.redis_password_env.c_str());
    if (v == nullptr) {
      logEvent("error", "cache.redis_password_env: environment variable not set", {{"name", c.redis_password_env}});
      return false;
    }
    options->password = v;
  }
  shared_state_ = std::make_unique<SharedTierState>(std::move(*options), c.redis_cluster, c.redis_max_object);
  shared_sync_ = std::make_unique<SharedTierSync>(&loop_, *shared_state_, [this](const PurgeNews& news) {
    if (news.site.empty()) {
      purgeStageLocal(news.api, news.stage);
    } else {
      purgeSiteLocal(news.site, news.paths);
    }
  });
  shared_sync_->setScopes(sharedScopes());
  logEvent("info", "shared tier (redis) configured", {{"node", shared_state_->nodeId()}, {"cluster", c.redis_cluster}});
  return true;
}

std::vector<std::string> Server::sharedScopes() const {
  std::vector<std::string> scopes;
  for (const conf::Site& s : config_->sites) scopes.push_back(cache::sitePrefix(s.name));
  for (const conf::Api& a : config_->apis) {
    for (const conf::Stage& st : a.stages) scopes.push_back(cache::apiStagePrefix(a.name, st.name));
  }
  return scopes;
}

std::string Server::sharedTierMetrics() const {
  if (!shared_state_) return "";
  const SharedTierState::Counters& c = shared_state_->counters;
  std::string out;
  auto metric = [&out](auto... args) { appendMetric(out, args...); };
  auto load = [](const std::atomic<std::uint64_t>& a) { return a.load(std::memory_order_relaxed); };
  metric("portico_l2_hits_total", "counter", "Shared tier (Redis) lookups that found an object.", load(c.hits));
  metric("portico_l2_misses_total", "counter", "Shared tier lookups that did not (failures included).", load(c.misses));
  metric("portico_l2_errors_total", "counter", "Redis commands that failed (error reply or no connection).", load(c.errors));
  metric("portico_l2_timeouts_total", "counter", "Redis commands without a reply in time.", load(c.timeouts));
  metric("portico_l2_writes_total", "counter", "Objects written to the shared tier.", load(c.writes));
  metric("portico_l2_too_large_total", "counter", "Objects kept in L1 only (above cache.redis_max_object).", load(c.too_large));
  metric("portico_l2_skipped_lookups_total", "counter", "L1 misses that did not consult the shared tier: it was unusable (this worker's connection down, or Redis unreachable).", load(c.skipped_lookups));
  metric("portico_l2_skipped_writes_total", "counter", "Writes skipped while the shared tier was unusable.", load(c.skipped));
  metric("portico_l2_ready", "gauge", "1 while the shared tier is in use.", shared_state_->ready() ? 1 : 0);
  std::uint64_t reconnects = shared_state_->reconnects.load(std::memory_order_relaxed);
  if (shared_sync_) {
    reconnects += shared_sync_->redisStats().reconnects;
    metric("portico_l2_purges_published_total", "counter", "Purges this edge announced to the others.", shared_sync_->counters().published);
    metric("portico_l2_purges_received_total", "counter", "Purges of other edges applied to this edge's L1.", shared_sync_->counters().received);
  }
  metric("portico_l2_reconnects_total", "counter", "Connections to Redis established again after a loss.", reconnects);
  return out;
}

std::string Server::cacheMetrics() const {
  if (!store_) return "";
  cache::StoreStats st = store_->stats();
  cache::CoalescerStats co = coalescer_->stats();
  std::string out;
  auto metric = [&out](auto... args) { appendMetric(out, args...); };
  metric("portico_cache_objects", "gauge", "Objects in the memory tier (Vary markers included).", st.objects);
  metric("portico_cache_bytes", "gauge", "Bytes charged in the memory tier.", st.bytes);
  metric("portico_cache_capacity_bytes", "gauge", "The memory tier's byte budget (cache.memory).", st.capacity);
  metric("portico_cache_inserts_total", "counter", "Objects admitted to the memory tier.", st.inserts);
  metric("portico_cache_rejections_total", "counter", "Inserts refused (too big or not admitted).", st.rejections);
  metric("portico_cache_evictions_total", "counter", "Objects evicted to make room.", st.evictions);
  metric("portico_cache_removals_total", "counter", "Objects removed by purge or invalidation.", st.removals);
  const auto by_site = store_->groupStats();
  auto per_site = [&](const char* name, const char* type, const char* help, auto field) {
    appendFamily(out, name, type, help);
    for (const auto& [site, g] : by_site) {
      out += std::string(name) + "{site=\"" + core::promEscape(site) + "\"} " +
             std::to_string(g.*field) + "\n";
    }
  };
  per_site("portico_cache_site_objects", "gauge", "Objects in the memory tier, by site.", &cache::GroupStats::objects);
  per_site("portico_cache_site_bytes", "gauge", "Bytes charged in the memory tier, by site.", &cache::GroupStats::bytes);
  per_site("portico_cache_site_evictions_total", "counter", "Objects of the site evicted to make room.", &cache::GroupStats::evictions);
  metric("portico_coalesce_leaders_total", "counter", "Cache misses that fetched for their key.", co.leaders);
  metric("portico_coalesce_followers_total", "counter", "Cache misses that waited for another fetch of their key.", co.followers);
  metric("portico_coalesce_passes_total", "counter", "Misses that skipped coalescing (hit-for-miss).", co.passes);
  metric("portico_coalesce_in_flight", "gauge", "Keys being fetched now.", co.in_flight);
  return out + sharedTierMetrics();
}

void Server::shutdown(const char* signal_name) {
  if (shutting_down_) return;
  shutting_down_ = true;
  logEvent("info", "draining", {{"signal", signal_name}, {"timeout_ms", config_->server.drain_timeout_ms}});
  for (auto& w : workers_) w->drain(config_->server.drain_timeout_ms);
  if (admin_) admin_->close();
  shared_sync_.reset();  // its timer and connections would keep the main loop alive
  // The signal handlers stay installed (a second SIGTERM must not kill a draining process) but
  // no longer keep the loop alive: it ends once the admin listener is closed, and run() then
  // joins the workers.
  for (uv_signal_t* s : signals_) uv_unref(reinterpret_cast<uv_handle_t*>(s));
}

}  // namespace portico::proxy
