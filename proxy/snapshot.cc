#include "proxy/snapshot.h"

namespace portico::proxy {

SnapshotPtr buildSnapshot(conf::ConfigPtr config, std::uint64_t generation, std::string& error) {
  auto snap = std::make_shared<Snapshot>();
  snap->access_log = AccessLog::open(config->server.access_log, error);
  if (!snap->access_log) return nullptr;
  snap->routes = std::make_unique<conf::RouteTable>(*config);
  snap->config = std::move(config);
  snap->generation = generation;
  return snap;
}

}  // namespace portico::proxy
