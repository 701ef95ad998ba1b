#include "conf/table_reader.h"

#include <algorithm>
#include <cmath>
#include <sstream>

#include "conf/value_checks.h"

namespace portico::conf {

int tomlLine(const TomlValue& v) { return static_cast<int>(v.location().line()); }

std::string_view tomlTypeName(const TomlValue& v) {
  switch (v.type()) {
    case toml::value_t::boolean: return "a boolean";
    case toml::value_t::integer: return "an integer";
    case toml::value_t::floating: return "a float";
    case toml::value_t::string: return "a string";
    case toml::value_t::offset_datetime:
    case toml::value_t::local_datetime:
    case toml::value_t::local_date:
    case toml::value_t::local_time: return "a date/time";
    case toml::value_t::array: return "an array";
    case toml::value_t::table: return "a table";
    case toml::value_t::empty: return "nothing";
  }
  return "an unknown type";
}

namespace {

std::string rangeReason(std::int64_t min, std::int64_t max, std::int64_t got) {
  std::string r;
  if (max == TableReader::kMaxInt) {
    r = min == 1 ? "must be > 0" : "must be >= " + std::to_string(min);
  } else {
    r = "must be in [" + std::to_string(min) + ", " + std::to_string(max) + "]";
  }
  return r + " (got " + std::to_string(got) + ")";
}

std::string formatNumber(double d) {
  std::ostringstream os;
  os << d;
  return os.str();
}

std::pair<std::uint32_t, std::uint32_t> position(const TomlValue& v) {
  const auto loc = v.location();
  return {loc.line(), loc.column()};
}

}  // namespace

TableReader::TableReader(const TomlValue& table, std::string path, Diagnostics& diag)
    : table_(&table), path_(std::move(path)), diag_(&diag) {}

TableReader::TableReader(TableReader&& other) noexcept
    : table_(other.table_),
      path_(std::move(other.path_)),
      diag_(other.diag_),
      known_(std::move(other.known_)),
      accept_all_(other.accept_all_),
      finished_(other.finished_) {
  other.finished_ = true;  // the moved-from shell reports nothing
}

TableReader::~TableReader() { finish(); }

int TableReader::lineOf(std::string_view key) const {
  const auto& t = table_->as_table();
  const auto it = t.find(std::string(key));
  return it == t.end() ? line() : tomlLine(it->second);
}

std::string TableReader::keyPath(std::string_view key) const {
  if (path_.empty()) return std::string(key);
  std::string r = path_;
  r += '.';
  r += key;
  return r;
}

bool TableReader::has(std::string_view key) const {
  return table_->as_table().count(std::string(key)) != 0;
}

bool TableReader::isString(std::string_view key) const {
  const auto& t = table_->as_table();
  auto it = t.find(std::string(key));
  return it != t.end() && it->second.is_string();
}

void TableReader::error(std::string_view key, std::string reason) {
  diag_->error(lineOf(key), keyPath(key), std::move(reason));
}

void TableReader::warning(std::string_view key, std::string reason) {
  diag_->warning(lineOf(key), keyPath(key), std::move(reason));
}

bool TableReader::require(std::string_view key) {
  known_.emplace(key);
  if (has(key)) return true;
  diag_->error(line(), keyPath(key), "missing required key");
  return false;
}

const TomlValue* TableReader::find(std::string_view key) {
  known_.emplace(key);
  const auto& t = table_->as_table();
  const auto it = t.find(std::string(key));
  return it == t.end() ? nullptr : &it->second;
}

bool TableReader::typeError(std::string_view key, const TomlValue& v, std::string_view expected) {
  diag_->error(tomlLine(v), keyPath(key),
               "expected " + std::string(expected) + ", got " + std::string(tomlTypeName(v)));
  return false;
}

void TableReader::elementError(const std::string& key_path, const TomlValue& v, std::string reason) {
  diag_->error(tomlLine(v), key_path, std::move(reason));
}

bool TableReader::getString(std::string_view key, std::string& out) {
  const TomlValue* v = find(key);
  if (v == nullptr) return false;
  if (!v->is_string()) return typeError(key, *v, "a string");
  out = v->as_string().str;
  return true;
}

bool TableReader::requireString(std::string_view key, std::string& out) {
  if (!require(key)) return false;
  std::string s;
  if (!getString(key, s)) return false;
  if (s.empty()) {
    error(key, "must not be empty");
    return false;
  }
  out = std::move(s);
  return true;
}

bool TableReader::getBool(std::string_view key, bool& out) {
  const TomlValue* v = find(key);
  if (v == nullptr) return false;
  if (!v->is_boolean()) return typeError(key, *v, "a boolean (true or false)");
  out = v->as_boolean();
  return true;
}

bool TableReader::getInt(std::string_view key, std::int64_t& out, std::int64_t min, std::int64_t max) {
  const TomlValue* v = find(key);
  if (v == nullptr) return false;
  if (!v->is_integer()) return typeError(key, *v, "an integer");
  const std::int64_t n = v->as_integer();
  if (n < min || n > max) {
    diag_->error(tomlLine(*v), keyPath(key), rangeReason(min, max, n));
    return false;
  }
  out = n;
  return true;
}

bool TableReader::getInt(std::string_view key, int& out, int min, int max) {
  std::int64_t n = 0;
  if (!getInt(key, n, min, max)) return false;
  out = static_cast<int>(n);
  return true;
}

bool TableReader::getUint(std::string_view key, std::uint64_t& out, std::int64_t min, std::int64_t max) {
  std::int64_t n = 0;
  if (!getInt(key, n, std::max<std::int64_t>(min, 0), max)) return false;
  out = static_cast<std::uint64_t>(n);
  return true;
}

bool TableReader::getNumber(std::string_view key, double& out, double min) {
  const TomlValue* v = find(key);
  if (v == nullptr) return false;
  double d = 0;
  if (v->is_integer()) d = static_cast<double>(v->as_integer());
  else if (v->is_floating()) d = v->as_floating();
  else return typeError(key, *v, "a number");
  if (!std::isfinite(d) || d < min) {
    diag_->error(tomlLine(*v), keyPath(key), "must be a finite number >= " + formatNumber(min));
    return false;
  }
  out = d;
  return true;
}

bool TableReader::getSize(std::string_view key, std::uint64_t& out, std::uint64_t min, std::uint64_t max) {
  const TomlValue* v = find(key);
  if (v == nullptr) return false;
  std::uint64_t n = 0;
  if (v->is_integer()) {
    if (v->as_integer() < 0) {
      diag_->error(tomlLine(*v), keyPath(key), "a size must not be negative");
      return false;
    }
    n = static_cast<std::uint64_t>(v->as_integer());
  } else if (v->is_string()) {
    if (!parseSize(v->as_string().str, n)) {
      diag_->error(tomlLine(*v), keyPath(key),
                   "invalid size \"" + v->as_string().str +
                       "\" (integer bytes, or a string with a unit: B, KB, MB, GB, KiB, MiB, GiB)");
      return false;
    }
  } else {
    return typeError(key, *v, "a size (integer bytes or a string like \"64MiB\")");
  }
  if (n < min || n > max) {
    std::string reason = min == 1 && max == std::numeric_limits<std::uint64_t>::max()
                             ? "must be > 0"
                             : "must be in [" + std::to_string(min) + ", " + std::to_string(max) + "] bytes";
    diag_->error(tomlLine(*v), keyPath(key), reason + " (got " + std::to_string(n) + ")");
    return false;
  }
  out = n;
  return true;
}

bool TableReader::getStringList(std::string_view key, std::vector<std::string>& out) {
  const TomlValue* v = find(key);
  if (v == nullptr) return false;
  if (!v->is_array()) return typeError(key, *v, "an array of strings");
  std::vector<std::string> r;
  bool ok = true;
  std::size_t i = 0;
  for (const TomlValue& e : v->as_array()) {
    if (e.is_string()) {
      r.push_back(e.as_string().str);
    } else {
      elementError(keyPath(key) + "[" + std::to_string(i) + "]", e,
                   "expected a string, got " + std::string(tomlTypeName(e)));
      ok = false;
    }
    ++i;
  }
  if (ok) out = std::move(r);
  return ok;
}

bool TableReader::getStringPairs(std::string_view key, std::vector<std::pair<std::string, std::string>>& out) {
  const TomlValue* v = find(key);
  if (v == nullptr) return false;
  if (!v->is_table()) return typeError(key, *v, "a table of strings");
  std::vector<std::pair<const std::string*, const TomlValue*>> items;
  for (const auto& [k, e] : v->as_table()) items.emplace_back(&k, &e);
  std::sort(items.begin(), items.end(), [](const auto& a, const auto& b) { return position(*a.second) < position(*b.second); });
  std::vector<std::pair<std::string, std::string>> r;
  bool ok = true;
  for (const auto& [k, e] : items) {
    if (e->is_string()) {
      r.emplace_back(*k, e->as_string().str);
    } else {
      elementError(keyPath(key) + "." + *k, *e, "expected a string, got " + std::string(tomlTypeName(*e)));
      ok = false;
    }
  }
  if (ok) out = std::move(r);
  return ok;
}

bool TableReader::getListen(std::string_view key, ListenAddress& out) {
  std::string s;
  if (!getString(key, s)) return false;
  if (!parseListenAddress(s, out)) {
    error(key, "invalid listen address \"" + s + "\" (expected \"ip:port\", \"[ipv6]:port\" or \":port\", port 0..65535)");
    return false;
  }
  return true;
}

bool TableReader::getListenList(std::string_view key, std::vector<ListenAddress>& out) {
  std::vector<std::string> list;
  if (!getStringList(key, list)) return false;
  const TomlValue& arr = *find(key);
  std::vector<ListenAddress> r;
  bool ok = true;
  for (std::size_t i = 0; i < list.size(); ++i) {
    ListenAddress a;
    if (parseListenAddress(list[i], a)) {
      r.push_back(std::move(a));
    } else {
      elementError(keyPath(key) + "[" + std::to_string(i) + "]", arr.as_array()[i],
                   "invalid listen address \"" + list[i] +
                       "\" (expected \"ip:port\", \"[ipv6]:port\" or \":port\", port 0..65535)");
      ok = false;
    }
  }
  if (ok) out = std::move(r);
  return ok;
}

std::optional<TableReader> TableReader::table(std::string_view key) {
  const TomlValue* v = find(key);
  if (v == nullptr) return std::nullopt;
  if (!v->is_table()) {
    typeError(key, *v, "a table");
    return std::nullopt;
  }
  return TableReader(*v, keyPath(key), *diag_);
}

std::vector<TableReader> TableReader::tableArray(std::string_view key) {
  std::vector<TableReader> r;
  const TomlValue* v = find(key);
  if (v == nullptr) return r;
  if (!v->is_array()) {
    typeError(key, *v, "an array of tables");
    return r;
  }
  std::size_t i = 0;
  for (const TomlValue& e : v->as_array()) {
    const std::string p = keyPath(key) + "[" + std::to_string(i++) + "]";
    if (e.is_table()) r.emplace_back(e, p, *diag_);
    else elementError(p, e, "expected a table, got " + std::string(tomlTypeName(e)));
  }
  return r;
}

std::vector<std::pair<std::string, TableReader>> TableReader::entries() {
  std::vector<std::pair<const std::string*, const TomlValue*>> items;
  for (const auto& [k, e] : table_->as_table()) {
    known_.emplace(k);
    items.emplace_back(&k, &e);
  }
  std::sort(items.begin(), items.end(), [](const auto& a, const auto& b) { return position(*a.second) < position(*b.second); });
  std::vector<std::pair<std::string, TableReader>> r;
  for (const auto& [k, e] : items) {
    if (e->is_table()) r.emplace_back(*k, TableReader(*e, keyPath(*k), *diag_));
    else elementError(keyPath(*k), *e, "expected a table, got " + std::string(tomlTypeName(*e)));
  }
  return r;
}

void TableReader::finish() {
  if (finished_) return;
  finished_ = true;
  if (accept_all_) return;
  std::vector<std::pair<const std::string*, const TomlValue*>> unknown;
  for (const auto& [k, e] : table_->as_table()) {
    if (known_.count(k) == 0) unknown.emplace_back(&k, &e);
  }
  std::sort(unknown.begin(), unknown.end(), [](const auto& a, const auto& b) { return position(*a.second) < position(*b.second); });
  for (const auto& [k, e] : unknown) {
    std::string reason = "unknown key";
    const std::string* best = nullptr;
    std::size_t best_distance = 3;  // hint only for near misses (typos)
    for (const std::string& candidate : known_) {
      const std::size_t d = editDistance(*k, candidate);
      if (d < best_distance) {
        best_distance = d;
        best = &candidate;
      }
    }
    if (best != nullptr) reason += " (did you mean \"" + *best + "\"?)";
    diag_->error(tomlLine(*e), keyPath(*k), std::move(reason));
  }
}

}  // namespace portico::conf
