#include "proxy/server.h"

#include <sys/socket.h>
#include <unistd.h>

#include <thread>

#include "conf/config_parser.h"
#include "proxy/core/uv_util.h"
#include "proxy/io/listener.h"
#include "proxy/stats/log.h"

namespace portico::proxy {
namespace {

bool sameListeners(const conf::ServerConfig& a, const conf::ServerConfig& b) {
  if (a.listen.size() != b.listen.size()) return false;
  for (std::size_t i = 0; i < a.listen.size(); ++i) {
    if (a.listen[i].toString() != b.listen[i].toString()) return false;
  }
  return a.workers == b.workers;
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
  core::closeLoop(&loop_);
}

int Server::run() {
  std::string error;
  SnapshotPtr snapshot = buildSnapshot(config_, generation_, error);
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
  std::vector<std::vector<int>> fds(static_cast<std::size_t>(n));
  for (const conf::ListenAddress& addr : sc.listen) {
    conf::ListenAddress bound;
    std::vector<int> socks = bindReusePort(addr, n, bound, error);
    if (socks.empty()) {
      logEvent("error", "cannot listen", {{"addr", addr.toString()}, {"error", error}});
      return 1;
    }
    for (int i = 0; i < n; ++i) {
      // listen() now, so connections queue from the moment the address is announced; the
      // worker's uv_listen() later only starts accepting.
      if (::listen(socks[static_cast<std::size_t>(i)], 1024) != 0) {
        logEvent("error", "cannot listen", {{"addr", bound.toString()}, {"error", "listen() failed"}});
        return 1;
      }
      fds[static_cast<std::size_t>(i)].push_back(socks[static_cast<std::size_t>(i)]);
    }
    logEvent("info", "listening", {{"listener", "http"}, {"addr", bound.toString()}, {"workers", n}});
  }
  if (config_->admin.listen) {
    conf::ListenAddress bound;
    int fd = bindSingle(*config_->admin.listen, bound, error);
    admin_ = std::make_unique<AdminServer>(&loop_, registry_);
    if (fd < 0 || ::listen(fd, 128) != 0 || admin_->listen(fd) != 0) {
      logEvent("error", "cannot listen", {{"addr", config_->admin.listen->toString()}, {"error", error}});
      return 1;
    }
    logEvent("info", "listening", {{"listener", "admin"}, {"addr", bound.toString()}});
  }
  for (int i = 0; i < n; ++i) {
    workers_.push_back(std::make_unique<Worker>(i, registry_, snapshot, std::move(fds[static_cast<std::size_t>(i)])));
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
  std::string error;
  SnapshotPtr snapshot = buildSnapshot(result.config, generation_ + 1, error);
  if (!snapshot) {
    main_metrics_->counter("portico_config_reloads_total", "result=\"error\"")->add();
    logEvent("error", "reload refused", {{"error", error}});
    return;
  }
  ++generation_;
  config_ = result.config;
  for (auto& w : workers_) w->updateSnapshot(snapshot);
  main_metrics_->counter("portico_config_reloads_total", "result=\"ok\"")->add();
  logEvent("info", "reloaded", {{"conf", config_->source_path}, {"generation", generation_}});
}

void Server::shutdown(const char* signal_name) {
  if (shutting_down_) return;
  shutting_down_ = true;
  logEvent("info", "draining", {{"signal", signal_name}, {"timeout_ms", config_->server.drain_timeout_ms}});
  for (auto& w : workers_) w->drain(config_->server.drain_timeout_ms);
  if (admin_) admin_->close();
  // The signal handlers stay installed (a second SIGTERM must not kill a draining process) but
  // no longer keep the loop alive: it ends once the admin listener is closed, and run() then
  // joins the workers.
  for (uv_signal_t* s : signals_) uv_unref(reinterpret_cast<uv_handle_t*>(s));
}

}  // namespace portico::proxy
