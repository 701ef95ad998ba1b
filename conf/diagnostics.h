#pragma once
// Diagnostics: the error/warning sink of one config load (conf-internal). Parsing never stops at
// the first problem: every reader reports here and carries on, so the user sees all of them.
// Single-threaded; lives for one parseConfig() call.
#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "conf/config_parser.h"

namespace portico::conf {

class Diagnostics {
 public:
  explicit Diagnostics(std::string file) : file_(std::move(file)) {}

  void error(int line, std::string key, std::string reason) {
    errors_.push_back(ConfigError{file_, line, std::move(key), std::move(reason)});
  }
  void warning(int line, std::string key, std::string reason) {
    warnings_.push_back(ConfigWarning{file_, line, std::move(key), std::move(reason)});
  }
  bool hasErrors() const { return !errors_.empty(); }
  std::size_t errorCount() const { return errors_.size(); }

  // Hands the collected problems over, ordered by line (stable: same-line problems keep the
  // order they were found in), so the report reads top to bottom like the file.
  std::vector<ConfigError> takeErrors() { return sorted(std::move(errors_)); }
  std::vector<ConfigWarning> takeWarnings() { return sorted(std::move(warnings_)); }

  const std::string& file() const { return file_; }

 private:
  template <typename T>
  static std::vector<T> sorted(std::vector<T> v) {
    std::stable_sort(v.begin(), v.end(), [](const T& a, const T& b) { return a.line < b.line; });
    return v;
  }

  std::string file_;
  std::vector<ConfigError> errors_;
  std::vector<ConfigWarning> warnings_;
};

}  // namespace portico::conf
