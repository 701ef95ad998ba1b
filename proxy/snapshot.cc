#include "proxy/snapshot.h"

#include "conf/config_parser.h"

namespace portico::proxy {

SnapshotPtr buildSnapshot(conf::ConfigPtr config, std::uint64_t generation, std::string& error,
                          std::shared_ptr<TicketKeyRing> tickets, ApiState* api_state) {
  auto snap = std::make_shared<Snapshot>();
  {
    ApiState fresh;
    std::vector<conf::ConfigError> errors;
    snap->api = (api_state != nullptr ? api_state : &fresh)->build(*config, errors);
    if (!snap->api) {
      for (const conf::ConfigError& e : errors) error += (error.empty() ? "" : "\n") + e.toString();
      if (error.empty()) error = "cannot set up the API stages";
      return nullptr;
    }
  }
  if (config->server.tls) {
    if (!tickets) tickets = std::make_shared<TicketKeyRing>();
    std::vector<conf::ConfigError> errors;
    snap->tls = TlsContext::create(*config, std::move(tickets), errors);
    if (!snap->tls) {
      for (const conf::ConfigError& e : errors) error += (error.empty() ? "" : "\n") + e.toString();
      if (error.empty()) error = "cannot set up TLS";
      return nullptr;
    }
  }
  snap->access_log = AccessLog::open(config->server.access_log, error);
  if (!snap->access_log) return nullptr;
  snap->routes = std::make_unique<conf::RouteTable>(*config);
  snap->config = std::move(config);
  snap->generation = generation;
  return snap;
}

}  // namespace portico::proxy
