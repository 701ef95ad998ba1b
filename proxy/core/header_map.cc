#include "proxy/core/header_map.h"

#include <algorithm>

namespace portico::core {
namespace {
inline char lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c; }
}  // namespace

void toLowerInPlace(std::string& s) {
  for (char& c : s) c = lower(c);
}

std::string toLower(std::string_view s) {
  std::string out(s);
  toLowerInPlace(out);
  return out;
}

std::string_view trimOws(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool listHasToken(std::string_view list, std::string_view token) {
  while (!list.empty()) {
    std::size_t comma = list.find(',');
    std::string_view item = trimOws(list.substr(0, comma));
    if (iequals(item, token)) return true;
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
  return false;
}

void HeaderMap::add(std::string_view name, std::string_view value) {
  // Typical heads carry 5-15 fields: one allocation up front instead of five doublings.
  if (entries_.capacity() == 0) entries_.reserve(kTypicalFields);
  entries_.push_back(Entry{std::string(name), std::string(value)});
}

void HeaderMap::set(std::string_view name, std::string_view value) {
  auto first = std::find_if(entries_.begin(), entries_.end(),
                            [&](const Entry& e) { return iequals(e.name, name); });
  if (first == entries_.end()) {
    add(name, value);
    return;
  }
  first->value.assign(value);
  auto rest = std::remove_if(first + 1, entries_.end(),
                             [&](const Entry& e) { return iequals(e.name, name); });
  entries_.erase(rest, entries_.end());
}

std::size_t HeaderMap::remove(std::string_view name) {
  auto it = std::remove_if(entries_.begin(), entries_.end(),
                           [&](const Entry& e) { return iequals(e.name, name); });
  std::size_t n = static_cast<std::size_t>(entries_.end() - it);
  entries_.erase(it, entries_.end());
  return n;
}

std::optional<std::string_view> HeaderMap::get(std::string_view name) const {
  for (const Entry& e : entries_) {
    if (iequals(e.name, name)) return std::string_view(e.value);
  }
  return std::nullopt;
}

std::vector<std::string_view> HeaderMap::getAll(std::string_view name) const {
  std::vector<std::string_view> out;
  for (const Entry& e : entries_) {
    if (iequals(e.name, name)) out.emplace_back(e.value);
  }
  return out;
}

std::optional<std::string> HeaderMap::getJoined(std::string_view name) const {
  std::optional<std::string> out;
  for (const Entry& e : entries_) {
    if (!iequals(e.name, name)) continue;
    if (out) {
      out->append(", ");
      out->append(e.value);
    } else {
      out = e.value;
    }
  }
  return out;
}

std::size_t HeaderMap::count(std::string_view name) const {
  return static_cast<std::size_t>(std::count_if(
      entries_.begin(), entries_.end(), [&](const Entry& e) { return iequals(e.name, name); }));
}

std::size_t HeaderMap::byteSize() const {
  std::size_t n = 0;
  for (const Entry& e : entries_) n += e.name.size() + e.value.size();
  return n;
}

void addVaryToken(HeaderMap& headers, std::string_view token) {
  HeaderMap::Entry* last = nullptr;
  for (HeaderMap::Entry& e : headers.entries()) {
    if (!iequals(e.name, "Vary")) continue;
    if (listHasToken(e.value, "*") || listHasToken(e.value, token)) return;
    last = &e;
  }
  if (last == nullptr) {
    headers.add("Vary", token);
  } else if (trimOws(last->value).empty()) {
    last->value = std::string(token);
  } else {
    last->value += ", ";
    last->value += token;
  }
}

}  // namespace portico::core
