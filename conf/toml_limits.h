#pragma once
// Pre-parse guard for TOML text (conf-internal; std only). toml11 parses recursively and builds
// dotted keys in quadratic time: 100k nested '[' overflow the stack, a line of 100k dotted key
// parts takes minutes. A config file has no business near these limits, so we reject such input
// up front with a clear error instead of crashing or hanging.
#include <cstddef>
#include <string>
#include <string_view>

namespace portico::conf {

struct TomlLimits {
  std::size_t max_bytes = 4u << 20;    // whole file
  int max_nesting = 32;                // open '[' / '{' outside strings and comments
  int max_dots_per_line = 64;          // '.' outside strings and comments (dotted keys, floats)
};

// Returns "" when `text` is within `limits`; else the reason, and `line` (1-based) where found.
std::string checkTomlLimits(std::string_view text, int& line, const TomlLimits& limits = {});

}  // namespace portico::conf
