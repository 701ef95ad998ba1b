#pragma once
// TOML text -> Config, validated. Every problem found is reported, not just the first:
// unknown keys (a typo is never silently ignored), wrong types, out-of-range values, dangling
// origin references, bad patterns. Each error carries the file and line of the offending key.
#include <string>
#include <string_view>
#include <vector>

#include "conf/config.h"

namespace portico::conf {

struct ConfigError {
  std::string file;
  int line = 0;        // 1-based; 0 when unknown
  std::string key;     // dotted key path, e.g. "sites[0].behaviors[1].default_ttl_s"
  std::string reason;  // human text
  std::string toString() const;  // "file:line: key: reason"
};

struct ConfigWarning {
  std::string file;
  int line = 0;
  std::string key;
  std::string reason;
  std::string toString() const;
};

struct LoadResult {
  ConfigPtr config;                     // null if errors is not empty
  std::vector<ConfigError> errors;
  std::vector<ConfigWarning> warnings;  // valid but suspicious (printed by `portico -t`)
  bool ok() const { return errors.empty() && config != nullptr; }
};

// Parses TOML `text` as if read from `file_name` (used in error messages and to resolve relative
// paths: relative paths in the conf resolve against `base_dir`).
LoadResult parseConfig(std::string_view text, const std::string& file_name,
                       const std::string& base_dir);

// Reads and parses a file; relative paths resolve against the file's directory.
LoadResult loadConfigFile(const std::string& path);

// Parses a size: integer bytes or a string with a unit ("256MiB", "10MB", "64KiB", "1GiB", "512").
// Returns false if malformed.
bool parseSize(std::string_view s, std::uint64_t& out);

// Parses "host:port", "[v6]:port", ":port" (all interfaces). Returns false if malformed.
bool parseListenAddress(std::string_view s, ListenAddress& out);

}  // namespace portico::conf
