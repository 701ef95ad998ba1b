#pragma once
// A configuration snapshot: the frozen Config, its compiled RouteTable, the access log it
// names and its TLS contexts (certificates are loaded per snapshot, so SIGHUP reloads them). Built once per load/reload on the main thread, then shared read-only by every worker
// (style.md G12). Requests keep the snapshot they started with until they finish, so a reload
// never changes a request mid-flight.
#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include "conf/config.h"
#include "conf/route_table.h"
#include "origin/origin_client.h"
#include "proxy/api/api_state.h"
#include "proxy/io/tls_context.h"
#include "proxy/stats/log.h"

namespace portico::proxy {

struct Snapshot {
  conf::ConfigPtr config;
  std::unique_ptr<conf::RouteTable> routes;
  std::shared_ptr<AccessLog> access_log;
  // Null when the conf has no [server.tls]. Connections keep the context they started with.
  std::shared_ptr<const TlsContext> tls;
  // API stages: buckets, stage stores, API keys, authorizer keys (never null).
  std::shared_ptr<const ApiTables> api;
  std::uint64_t generation = 0;
};
using SnapshotPtr = std::shared_ptr<const Snapshot>;

// Returns null and sets `error` if the snapshot cannot be built (e.g. the access log file, a
// certificate that does not load). `tickets`: the process's session-ticket keys (kept across
// reloads); null makes a new ring.
// `api_state`: the process's API state (kept across reloads); null makes a fresh one.
SnapshotPtr buildSnapshot(conf::ConfigPtr config, std::uint64_t generation, std::string& error,
                          std::shared_ptr<TicketKeyRing> tickets = nullptr,
                          ApiState* api_state = nullptr);

// One worker's view of a snapshot: the snapshot plus this worker's origin clients for it.
// Created, used and destroyed on the worker's thread.
struct WorkerView {
  SnapshotPtr snapshot;
  std::map<std::string, origin::OriginClientPtr, std::less<>> origins;
};
using WorkerViewPtr = std::shared_ptr<WorkerView>;

}  // namespace portico::proxy
