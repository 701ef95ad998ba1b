#pragma once
// What API stages need at run time beyond the conf: throttle buckets, stage cache stores, API
// keys and authorizer keys, compiled per conf snapshot (ApiTables, immutable, shared by every
// worker) from process-wide state that survives reloads (ApiState: a SIGHUP neither refills
// every token bucket nor empties the stage caches whose settings did not change).
//
// Threading: ApiState::build() runs on the thread that builds snapshots (main); the tables it
// returns are read-only; TokenBucket::take() and the stores are thread-safe.
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "cache/store.h"
#include "conf/config.h"
#include "conf/config_parser.h"
#include "proxy/api/token_bucket.h"
#include "proxy/auth/jwks.h"
#include "proxy/auth/jwt.h"

namespace portico::proxy {

struct StageRuntime {
  std::shared_ptr<TokenBucket> bucket;        // null: no stage throttle
  std::shared_ptr<cache::Store> own_store;    // null: the stage caches in the shared memory tier
  std::set<std::string, std::less<>> api_keys;
};

struct AuthorizerRuntime {
  Jwks keys;
  JwtPolicy policy;
};

struct ApiTables {
  std::map<std::string, StageRuntime, std::less<>> stages;  // stageKey()
  std::map<std::string, std::shared_ptr<TokenBucket>, std::less<>> route_buckets;  // routeKey()
  std::map<std::string, AuthorizerRuntime, std::less<>> authorizers;  // authorizerKey()

  static std::string stageKey(std::string_view api, std::string_view stage);
  static std::string routeKey(std::string_view api, std::string_view stage, const conf::ApiRoute& route);
  static std::string authorizerKey(std::string_view api, std::string_view name);

  const StageRuntime* stage(std::string_view api, std::string_view stage) const;
};

class ApiState {
 public:
  // Builds the tables for `config`: keeps the buckets and stores whose settings are unchanged,
  // makes new ones for the rest, loads every authorizer's JWKS file. Null with `errors` (one
  // ConfigError per bad file, at the authorizer's line) when a key file does not load.
  std::shared_ptr<const ApiTables> build(const conf::Config& config,
                                         std::vector<conf::ConfigError>& errors);

  // The stage's own store (capacity > 0 in its conf), or null. Thread-safe.
  std::shared_ptr<cache::Store> stageStore(std::string_view api, std::string_view stage) const;

 private:
  TokenBuckets buckets_;
  mutable std::mutex mu_;
  struct OwnStore {
    std::uint64_t capacity = 0;
    std::shared_ptr<cache::Store> store;
  };
  std::map<std::string, OwnStore, std::less<>> stores_;  // stageKey()
};

// The JWKS files of every authorizer in `config`, loaded and checked (for `portico -t`).
std::vector<conf::ConfigError> validateAuthorizers(const conf::Config& config);

}  // namespace portico::proxy
