#include "cache/cache_key.h"

#include <algorithm>
#include <tuple>

#include "cache/cache_control.h"
#include "conf/route_table.h"

namespace portico::cache {
namespace {

int hexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool isUnreserved(unsigned char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
         c == '_' || c == '~';
}

// Appends `s` to `key` with the key's separators escaped (see cache_key.h). `escape_eq` also
// escapes '=' (for names followed by "=value").
void appendEscaped(std::string& key, std::string_view s, bool escape_eq = false) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  for (char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (c == '\\' || c == '|' || (escape_eq && c == '=')) {
      key += '\\';
      key += ch;
    } else if (c < 0x20 || c == 0x7f) {
      key += "\\x";
      key += kHex[c >> 4];
      key += kHex[c & 0xf];
    } else {
      key += ch;
    }
  }
}

struct QueryParam {
  std::string_view name;
  bool has_eq = false;
  std::string_view value;
};

std::vector<QueryParam> splitQuery(std::string_view q) {
  std::vector<QueryParam> out;
  while (!q.empty()) {
    const std::size_t amp = q.find('&');
    const std::string_view item = q.substr(0, amp);
    if (!item.empty()) {
      QueryParam p;
      const std::size_t eq = item.find('=');
      p.name = item.substr(0, eq);
      if (eq != std::string_view::npos) {
        p.has_eq = true;
        p.value = item.substr(eq + 1);
      }
      out.push_back(p);
    }
    if (amp == std::string_view::npos) break;
    q.remove_prefix(amp + 1);
  }
  return out;
}

// A query parameter name as API Gateway sees it: percent-decoded ('+' left alone).
std::string decodedName(std::string_view raw) {
  std::string out;
  if (!conf::percentDecode(raw, out)) out = std::string(raw);
  return out;
}

}  // namespace

std::uint64_t stableHash(const CacheKey& key) {
  std::uint64_t h = 14695981039346656037ull;
  auto mix = [&h](std::string_view s) {
    for (char c : s) {
      h ^= static_cast<unsigned char>(c);
      h *= 1099511628211ull;
    }
  };
  mix(key.primary);
  mix(std::string_view("\0", 1));  // primary "ab"+variant "c" differs from "a"+"bc"
  mix(key.variant);
  return h;
}

std::string normalizePercentEncoding(std::string_view raw) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(raw.size());
  for (std::size_t i = 0; i < raw.size(); ++i) {
    const char c = raw[i];
    const int hi = (c == '%' && i + 2 < raw.size()) ? hexValue(raw[i + 1]) : -1;
    const int lo = hi >= 0 ? hexValue(raw[i + 2]) : -1;
    if (lo < 0) {
      out += c;
      continue;
    }
    const auto decoded = static_cast<unsigned char>(hi * 16 + lo);
    if (isUnreserved(decoded)) {
      out += static_cast<char>(decoded);
    } else {
      out += '%';
      out += kHex[hi];
      out += kHex[lo];
    }
    i += 2;
  }
  return out;
}

std::string normalizeQuery(std::string_view raw_query) {
  struct Item {
    std::string name;
    bool has_eq;
    std::string value;
  };
  std::vector<Item> items;
  for (const QueryParam& p : splitQuery(raw_query)) {
    items.push_back(Item{normalizePercentEncoding(p.name), p.has_eq, normalizePercentEncoding(p.value)});
  }
  std::sort(items.begin(), items.end(), [](const Item& a, const Item& b) {
    return std::tie(a.name, a.value, a.has_eq) < std::tie(b.name, b.value, b.has_eq);
  });
  std::string out;
  for (const Item& it : items) {
    if (!out.empty()) out += '&';
    out += it.name;
    if (it.has_eq) {
      out += '=';
      out += it.value;
    }
  }
  return out;
}

std::string sitePrefix(std::string_view site) {
  std::string key = "site|";
  appendEscaped(key, site);
  key += '|';
  return key;
}

std::string sitePrimaryKey(const conf::Site& site, const conf::Behavior& behavior, const core::RequestHead& request) {
  std::string key = sitePrefix(site.name);
  appendEscaped(key, behavior.path);
  key += '|';
  appendEscaped(key, request.authority);
  key += '|';
  appendEscaped(key, normalizePercentEncoding(request.path));
  if (behavior.query_in_key) {
    const std::string query = normalizeQuery(request.query);
    if (!query.empty()) {
      key += '?';
      appendEscaped(key, query);
    }
  }
  return key;
}

std::optional<std::string> keyedHeaderValue(const core::HeaderMap& headers, std::string_view name) {
  std::optional<std::string> value;
  for (std::string_view line : headers.getAll(name)) {
    if (!value) value.emplace();
    for (std::string_view member : splitList(line)) {
      if (!value->empty()) *value += ',';
      *value += member;
    }
  }
  return value;
}

std::string variantKey(const std::vector<std::string>& vary_names, const core::HeaderMap& request_headers) {
  std::string key;
  for (const std::string& name : vary_names) {
    if (!key.empty()) key += '|';
    appendEscaped(key, core::toLower(name), /*escape_eq=*/true);
    if (std::optional<std::string> v = keyedHeaderValue(request_headers, name)) {
      key += '=';
      appendEscaped(key, *v);
    }
  }
  return key;
}

std::string apiStagePrefix(std::string_view api, std::string_view stage) {
  std::string key = "api|";
  appendEscaped(key, api);
  key += '|';
  appendEscaped(key, stage);
  key += '|';
  return key;
}

std::string apiPrimaryKey(const conf::Api& api, const conf::Stage& stage, const conf::ApiRoute& route,
                          const std::vector<std::pair<std::string, std::string>>& path_params,
                          const core::RequestHead& request) {
  const conf::CacheKeySpec& spec = route.cache_key;
  std::string key = "api|";
  appendEscaped(key, api.name);
  key += '|';
  appendEscaped(key, stage.name);
  key += '|';
  appendEscaped(key, route.path);
  for (const std::string& name : spec.path) {
    key += "|p:";
    appendEscaped(key, name, /*escape_eq=*/true);
    for (const auto& [n, v] : path_params) {
      if (n != name) continue;
      key += '=';
      appendEscaped(key, v);
      break;
    }
  }
  if (!spec.query.empty()) {
    const std::vector<QueryParam> params = splitQuery(request.query);
    for (const std::string& name : spec.query) {
      // Every value of the parameter, in a stable order; absent -> the bare name.
      std::vector<std::string> values;
      for (const QueryParam& p : params) {
        if (decodedName(p.name) == name) {
          values.push_back(p.has_eq ? "=" + normalizePercentEncoding(p.value) : std::string());
        }
      }
      std::sort(values.begin(), values.end());
      key += "|q:";
      appendEscaped(key, name, /*escape_eq=*/true);
      for (const std::string& v : values) {
        key += '&';  // "&" bare: present without '='; "&=x": value x
        appendEscaped(key, v);
      }
    }
  }
  for (const std::string& name : spec.headers) {
    key += "|h:";
    appendEscaped(key, core::toLower(name), /*escape_eq=*/true);
    if (std::optional<std::string> v = keyedHeaderValue(request.headers, name)) {
      key += '=';
      appendEscaped(key, *v);
    }
  }
  return key;
}

}  // namespace portico::cache
