#include "proxy/pipeline/cache_runtime.h"

#include "cache/cache_key.h"

namespace portico::proxy {

BackgroundJob* BackgroundJobs::adopt(std::unique_ptr<BackgroundJob> job) {
  BackgroundJob* raw = job.get();
  jobs_.emplace(raw, std::move(job));
  return raw;
}

void BackgroundJobs::done(BackgroundJob* job) {
  auto node = jobs_.extract(job);  // destroyed here, after leaving the map
}

bool isVaryMarker(const cache::CachedObject& object) {
  return object.head.status == 0 && !object.meta.vary.empty();
}

cache::CachedObjectPtr makeVaryMarker(const std::vector<std::string>& vary, core::WallTime since) {
  auto marker = std::make_shared<cache::CachedObject>();
  marker->meta.response_time = since;
  marker->head.status = 0;
  marker->body = std::make_shared<const std::string>();
  marker->meta.vary = vary;
  return marker;
}

namespace {

// Reads one '|'-terminated field of a key (cache_key.cc escapes '|' as "\|" and '\' as "\\").
// Returns false at the end of the key (no terminator).
bool nextField(std::string_view& key, std::string& field) {
  field.clear();
  for (std::size_t i = 0; i < key.size(); ++i) {
    char c = key[i];
    if (c == '\\' && i + 1 < key.size()) {
      field.push_back(key[i + 1]);
      ++i;
    } else if (c == '|') {
      key.remove_prefix(i + 1);
      return true;
    } else {
      field.push_back(c);
    }
  }
  return false;
}

}  // namespace

std::size_t fieldsPrefixLength(std::string_view key, int fields) {
  for (std::size_t i = 0; i < key.size(); ++i) {
    if (key[i] == '\\') {
      ++i;  // an escaped character, never a separator
    } else if (key[i] == '|' && --fields == 0) {
      return i + 1;
    }
  }
  return std::string_view::npos;
}

std::string_view siteOfKey(std::string_view key) {
  constexpr std::string_view kPrefix = "site|";
  if (!key.starts_with(kPrefix)) return {};
  std::size_t n = fieldsPrefixLength(key, 2);
  if (n == std::string_view::npos) return {};
  return key.substr(kPrefix.size(), n - 1 - kPrefix.size());
}

bool splitSiteKey(std::string_view key, std::string& site, std::string& path_and_query) {
  std::string field;
  if (!nextField(key, field) || field != "site") return false;
  if (!nextField(key, site)) return false;
  if (!nextField(key, field)) return false;  // behavior pattern
  if (!nextField(key, field)) return false;  // host
  std::size_t variant = key.find(kVariantSeparator);
  if (variant != std::string_view::npos) key = key.substr(0, variant);
  // The rest is the (escaped) path and query; unescape it.
  path_and_query.clear();
  for (std::size_t i = 0; i < key.size(); ++i) {
    if (key[i] == '\\' && i + 1 < key.size()) ++i;
    path_and_query.push_back(key[i]);
  }
  return true;
}

std::size_t purgeSite(cache::Store& store, std::string_view site,
                      const std::vector<std::string>& paths) {
  struct Pattern {
    std::string text;
    bool prefix;
  };
  std::vector<Pattern> patterns;
  for (const std::string& p : paths) {
    bool prefix = !p.empty() && p.back() == '*';
    std::string base = prefix ? p.substr(0, p.size() - 1) : p;
    patterns.push_back({cache::normalizePercentEncoding(base), prefix});
  }
  std::string key_site, path_and_query;
  return store.removeIf([&](std::string_view key, const cache::CachedObject&) {
    if (!splitSiteKey(key, key_site, path_and_query) || key_site != site) return false;
    if (patterns.empty()) return true;
    for (const Pattern& p : patterns) {
      if (p.prefix ? path_and_query.compare(0, p.text.size(), p.text) == 0
                   : path_and_query == p.text) {
        return true;
      }
    }
    return false;
  });
}

}  // namespace portico::proxy
