#pragma once
// HeaderMap: an ordered, case-insensitive, multi-value list of HTTP header fields.
// Order is kept as received (RFC 9110 §5.3: order of same-named fields is significant).
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace portico::core {

// ASCII case-insensitive comparison (header names, tokens). Inline: it runs for every field
// lookup, and most calls end at the length check.
inline bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    const auto x = static_cast<unsigned char>(a[i]);
    const auto y = static_cast<unsigned char>(b[i]);
    if (x != y && (x | 0x20) != (y | 0x20)) return false;
    if (x != y && ((x | 0x20) < 'a' || (x | 0x20) > 'z')) return false;
  }
  return true;
}
// Lower-cases ASCII in place / as a copy.
void toLowerInPlace(std::string& s);
std::string toLower(std::string_view s);
// True if `s` holds one of the few bytes in `set`. One pass over `s`; std's find_first_of
// calls memchr on `set` once per byte of `s`, which showed in the per-request profile.
inline bool hasAnyOf(std::string_view s, std::string_view set) {
  for (const char c : s) {
    for (const char x : set) {
      if (c == x) return true;
    }
  }
  return false;
}
// Trims optional whitespace (SP / HTAB) from both ends.
std::string_view trimOws(std::string_view s);
// True if `list` (a comma-separated field value) holds `token`, case-insensitively.
bool listHasToken(std::string_view list, std::string_view token);

class HeaderMap {
 public:
  struct Entry {
    std::string name;
    std::string value;
  };

  void add(std::string_view name, std::string_view value);
  // Replaces every field named `name` with one field (appended where the first one was).
  void set(std::string_view name, std::string_view value);
  // Removes every field named `name`; returns how many were removed.
  std::size_t remove(std::string_view name);
  // The first value of `name`.
  std::optional<std::string_view> get(std::string_view name) const;
  std::vector<std::string_view> getAll(std::string_view name) const;
  // All values of `name` joined with ", " (RFC 9110 §5.3), or nullopt.
  std::optional<std::string> getJoined(std::string_view name) const;
  bool has(std::string_view name) const { return get(name).has_value(); }
  std::size_t count(std::string_view name) const;

  const std::vector<Entry>& entries() const { return entries_; }
  std::vector<Entry>& entries() { return entries_; }
  std::size_t size() const { return entries_.size(); }
  bool empty() const { return entries_.empty(); }
  void clear() { entries_.clear(); }
  auto begin() const { return entries_.begin(); }
  auto end() const { return entries_.end(); }
  // Bytes of name + value over all fields (for limits and metrics).
  std::size_t byteSize() const;

 private:
  static constexpr std::size_t kTypicalFields = 12;
  std::vector<Entry> entries_;
};

// Adds `token` to the Vary field (RFC 9110 §12.5.5): appended to the last Vary line, or a new
// line when there is none; unchanged when some Vary line already lists it or "*".
void addVaryToken(HeaderMap& headers, std::string_view token);

}  // namespace portico::core
