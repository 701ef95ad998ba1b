#pragma once
// TableReader: typed, path-aware access to one TOML table (conf-internal; the only header that
// exposes toml11, included by the parser sources alone).
//
// Every getter records the key as *known*; when the reader is destroyed, every key present in
// the table but never asked for is reported as "unknown key" (with a "did you mean" hint when a
// known key is close). So a section reader only states what it accepts, and typos fall out.
//
// Getter contract: key absent -> returns false, no error, `out` untouched (the caller keeps its
// default). Present but of the wrong type or out of range -> one error at the key's line, returns
// false, `out` untouched. Present and valid -> `out` assigned, returns true.
//
// Not thread-safe; the TOML tree and the Diagnostics must outlive the reader.
#include <cstdint>
#include <limits>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <toml.hpp>

#include "conf/config.h"
#include "conf/diagnostics.h"

namespace portico::conf {

using TomlValue = toml::value;

int tomlLine(const TomlValue& v);
std::string_view tomlTypeName(const TomlValue& v);  // "a string", "an integer", ...

class TableReader {
 public:
  static constexpr std::int64_t kMaxInt = std::numeric_limits<std::int64_t>::max();

  // `table` must be a TOML table. `path` is its dotted key path: "" for the root, "server.tls",
  // "sites[0]", "origins.legacy".
  TableReader(const TomlValue& table, std::string path, Diagnostics& diag);
  TableReader(TableReader&& other) noexcept;
  TableReader(const TableReader&) = delete;
  TableReader& operator=(const TableReader&) = delete;
  TableReader& operator=(TableReader&&) = delete;
  ~TableReader();  // reports unknown keys (see finish())

  const std::string& path() const { return path_; }
  Diagnostics& diag() const { return *diag_; }
  int line() const { return tomlLine(*table_); }
  // Line of `key`, or of this table when the key is absent (where the user would add it).
  int lineOf(std::string_view key) const;
  std::string keyPath(std::string_view key) const;
  bool has(std::string_view key) const;  // does not mark the key known
  bool isString(std::string_view key) const;  // present and a string; does not mark it known

  void error(std::string_view key, std::string reason);
  void warning(std::string_view key, std::string reason);
  // Marks `key` known; if absent reports "missing required key" and returns false.
  bool require(std::string_view key);

  bool getString(std::string_view key, std::string& out);
  // require() + getString() + "must not be empty".
  bool requireString(std::string_view key, std::string& out);
  bool getBool(std::string_view key, bool& out);
  bool getInt(std::string_view key, std::int64_t& out, std::int64_t min = 0,
              std::int64_t max = kMaxInt);
  bool getInt(std::string_view key, int& out, int min, int max);
  bool getUint(std::string_view key, std::uint64_t& out, std::int64_t min = 0,
               std::int64_t max = kMaxInt);
  bool getNumber(std::string_view key, double& out, double min);  // integer or float
  // Integer bytes or a string with a unit (parseSize), within [min, max].
  bool getSize(std::string_view key, std::uint64_t& out, std::uint64_t min,
               std::uint64_t max = std::numeric_limits<std::uint64_t>::max());
  bool getStringList(std::string_view key, std::vector<std::string>& out);
  // A table whose values are all strings (e.g. variables, headers), in file order.
  bool getStringPairs(std::string_view key, std::vector<std::pair<std::string, std::string>>& out);
  bool getListen(std::string_view key, ListenAddress& out);
  bool getListenList(std::string_view key, std::vector<ListenAddress>& out);

  // Sub-table (standard or inline); nullopt when absent or not a table (the latter reported).
  std::optional<TableReader> table(std::string_view key);
  // Array of tables ([[x]] or an array of inline tables); elements are "key[i]".
  // Non-table elements are reported and skipped.
  std::vector<TableReader> tableArray(std::string_view key);
  // Every entry of this table as a named sub-table ("path.name"), in file order; entries that
  // are not tables are reported and skipped. Marks all keys known.
  std::vector<std::pair<std::string, TableReader>> entries();

  // Marks every key known: used when the table's schema cannot be told (e.g. an origin with an
  // invalid `type`), so one root-cause error is not buried under derived "unknown key" noise.
  void acceptAll() { accept_all_ = true; }

  // Reports unknown keys now (idempotent; the destructor calls it).
  void finish();

 private:
  const TomlValue* find(std::string_view key);  // marks known; null when absent
  bool typeError(std::string_view key, const TomlValue& v, std::string_view expected);
  void elementError(const std::string& key_path, const TomlValue& v, std::string reason);

  const TomlValue* table_;
  std::string path_;
  Diagnostics* diag_;
  std::set<std::string, std::less<>> known_;
  bool accept_all_ = false;
  bool finished_ = false;
};

}  // namespace portico::conf
