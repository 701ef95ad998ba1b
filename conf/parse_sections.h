#pragma once
// The section readers of parseConfig (conf-internal). Each reads one part of the TOML tree into
// ParseContext::config, reporting every problem to the Diagnostics and carrying on. They run in
// file-independent order: server, admin, cache, origins (so references can be checked), sites,
// apis, then the cross-section warnings.
#include <cstdint>
#include <map>
#include <set>
#include <string>

#include "conf/config.h"
#include "conf/diagnostics.h"
#include "conf/table_reader.h"

namespace portico::conf {

// TTLs are seconds added to timestamps downstream: cap them far from overflow (100 years).
inline constexpr std::int64_t kMaxTtlSeconds = 3153600000;
// API Gateway's stage cache TTL ceiling.
inline constexpr std::int64_t kMaxStageCacheTtlSeconds = 3600;

struct ParseContext {
  Diagnostics& diag;
  std::string base_dir;  // absolute
  Config& config;
  // Every origin name defined, including ones whose definition had errors (so a broken origin
  // yields one error, not one more per reference).
  std::set<std::string> origin_names;
  std::set<std::string> used_origins;
  std::map<std::string, int> origin_lines;
  std::map<std::string, std::string> host_owner;  // host -> "sites[0]" / "apis[1]"
  std::map<std::string, std::string> name_owner;  // site/api name -> "sites[0]" / "apis[1]"

  // Reports `t.key` if `name` is not a defined origin; records the use otherwise.
  void checkOriginRef(TableReader& t, std::string_view key, const std::string& name);
  // Validates, lower-cases and claims `hosts` (t.key) for `owner`.
  void claimHosts(TableReader& t, std::string_view key, std::vector<std::string>& hosts);
  // Claims a site/api name (t.key) for `owner` ("name" must be unique across sites and apis).
  void claimName(TableReader& t, std::string_view key, const std::string& name);
};

void readServer(TableReader& root, ParseContext& ctx);
void readAdmin(TableReader& root, ParseContext& ctx);
void readCache(TableReader& root, ParseContext& ctx);
void readOrigins(TableReader& root, ParseContext& ctx);
void readSites(TableReader& root, ParseContext& ctx);
void readApis(TableReader& root, ParseContext& ctx);

}  // namespace portico::conf
