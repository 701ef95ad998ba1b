#include "proxy/api/api_state.h"

#include "cache/memory_store.h"
#include "conf/config_parser.h"

namespace portico::proxy {
namespace {

std::string joinKey(std::initializer_list<std::string_view> parts) {
  std::string key;
  for (std::string_view p : parts) {
    if (!key.empty()) key += '\x1f';
    key += p;
  }
  return key;
}

// Loads every authorizer's keys; appends one error per file that does not load.
void loadAuthorizers(const conf::Config& config, ApiTables* tables,
                     std::vector<conf::ConfigError>& errors) {
  for (std::size_t i = 0; i < config.apis.size(); ++i) {
    const conf::Api& api = config.apis[i];
    for (const auto& [name, a] : api.authorizers) {
      std::string error;
      std::optional<Jwks> keys = Jwks::loadFile(a.jwks_file, error);
      if (!keys) {
        errors.push_back({config.source_path, a.line,
                          "apis[" + std::to_string(i) + "].authorizers." + name + ".jwks_file",
                          a.jwks_file + ": " + error});
        continue;
      }
      if (tables == nullptr) continue;
      AuthorizerRuntime rt{std::move(*keys), {}};
      rt.policy.issuer = a.issuer;
      rt.policy.audiences = a.audience;
      tables->authorizers.emplace(ApiTables::authorizerKey(api.name, name), std::move(rt));
    }
  }
}

}  // namespace

std::string ApiTables::stageKey(std::string_view api, std::string_view stage) {
  return joinKey({api, stage});
}

std::string ApiTables::routeKey(std::string_view api, std::string_view stage,
                                const conf::ApiRoute& route) {
  return joinKey({api, stage, route.method, route.path});
}

std::string ApiTables::authorizerKey(std::string_view api, std::string_view name) {
  return joinKey({api, name});
}

const StageRuntime* ApiTables::stage(std::string_view api, std::string_view stage) const {
  auto it = stages.find(stageKey(api, stage));
  return it == stages.end() ? nullptr : &it->second;
}

std::shared_ptr<const ApiTables> ApiState::build(const conf::Config& config,
                                                 std::vector<conf::ConfigError>& errors) {
  auto tables = std::make_shared<ApiTables>();
  const std::size_t errors_before = errors.size();
  loadAuthorizers(config, tables.get(), errors);
  if (errors.size() != errors_before) return nullptr;

  std::set<std::string> live_buckets;
  std::lock_guard<std::mutex> lock(mu_);
  std::map<std::string, OwnStore, std::less<>> stores;
  for (const conf::Api& api : config.apis) {
    for (const conf::Stage& stage : api.stages) {
      const std::string key = ApiTables::stageKey(api.name, stage.name);
      StageRuntime rt;
      if (stage.throttle) {
        rt.bucket = buckets_.get(key, stage.throttle->rate, stage.throttle->burst);
        live_buckets.insert(key);
      }
      rt.api_keys.insert(stage.api_keys.begin(), stage.api_keys.end());
      const std::uint64_t capacity = stage.cache.enabled ? stage.cache.capacity : 0;
      if (capacity > 0) {
        auto old = stores_.find(key);
        if (old != stores_.end() && old->second.capacity == capacity) {
          stores[key] = old->second;
        } else {
          cache::MemoryStoreOptions options;
          options.capacity_bytes = capacity;
          options.max_object_bytes = std::min(config.cache.max_object, capacity);
          options.shards = 4;
          stores[key] = OwnStore{capacity, std::make_shared<cache::MemoryStore>(options)};
        }
        rt.own_store = stores[key].store;
      }
      tables->stages.emplace(key, std::move(rt));
      for (const conf::ApiRoute& route : api.routes) {
        if (!route.throttle) continue;
        const std::string rkey = ApiTables::routeKey(api.name, stage.name, route);
        tables->route_buckets.emplace(rkey, buckets_.get(rkey, route.throttle->rate, route.throttle->burst));
        live_buckets.insert(rkey);
      }
    }
  }
  stores_ = std::move(stores);
  buckets_.retainOnly([&](const std::string& k) { return live_buckets.count(k) != 0; });
  return tables;
}

std::shared_ptr<cache::Store> ApiState::stageStore(std::string_view api, std::string_view stage) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = stores_.find(ApiTables::stageKey(api, stage));
  return it == stores_.end() ? nullptr : it->second.store;
}

std::vector<conf::ConfigError> validateAuthorizers(const conf::Config& config) {
  std::vector<conf::ConfigError> errors;
  loadAuthorizers(config, nullptr, errors);
  return errors;
}

}  // namespace portico::proxy
