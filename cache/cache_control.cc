#include "cache/cache_control.h"

#include <algorithm>

#include "proxy/core/http_date.h"

namespace portico::cache {
namespace {

// One list member: `name [= arg]`, the argument unquoted.
struct Directive {
  std::string name;   // lower-case
  bool has_arg = false;
  bool arg_ok = true;  // false: an unterminated quoted-string or an empty argument
  std::string arg;
};

Directive parseDirective(std::string_view member) {
  Directive d;
  const std::size_t eq = member.find('=');
  d.name = core::toLower(core::trimOws(member.substr(0, eq)));
  if (eq == std::string_view::npos) return d;
  d.has_arg = true;
  std::string_view raw = core::trimOws(member.substr(eq + 1));
  if (raw.empty()) {
    d.arg_ok = false;
    return d;
  }
  if (raw.front() != '"') {
    d.arg = std::string(raw);
    return d;
  }
  // quoted-string with quoted-pair (RFC 9110 §5.6.4).
  bool closed = false;
  for (std::size_t i = 1; i < raw.size(); ++i) {
    const char c = raw[i];
    if (c == '\\' && i + 1 < raw.size()) {
      d.arg.push_back(raw[++i]);
    } else if (c == '"') {
      closed = (i + 1 == raw.size());  // text after the closing quote: malformed
      break;
    } else {
      d.arg.push_back(c);
    }
  }
  d.arg_ok = closed;
  return d;
}

// The field names of a qualified no-cache / private argument, lower-cased.
std::vector<std::string> fieldNames(std::string_view arg) {
  std::vector<std::string> out;
  for (std::string_view m : splitList(arg)) out.push_back(core::toLower(m));
  return out;
}

// A freshness value (max-age, s-maxage): invalid -> 0, a second different value -> 0.
void mergeFreshness(std::optional<std::int64_t>& slot, const Directive& d) {
  std::optional<std::int64_t> v = d.arg_ok ? parseDeltaSeconds(d.arg) : std::nullopt;
  const std::int64_t value = v.value_or(0);
  if (!slot) {
    slot = value;
  } else if (*slot != value) {
    slot = 0;
  }
}

// A permission window (stale-while-revalidate, stale-if-error): invalid -> ignored, several ->
// the smallest.
void mergeWindow(std::optional<std::int64_t>& slot, const Directive& d) {
  if (!d.arg_ok) return;
  std::optional<std::int64_t> v = parseDeltaSeconds(d.arg);
  if (!v) return;
  slot = slot ? std::min(*slot, *v) : *v;
}

// A request value (max-age, min-fresh): the first valid occurrence.
void firstValid(std::optional<std::int64_t>& slot, const Directive& d) {
  if (slot || !d.arg_ok) return;
  slot = parseDeltaSeconds(d.arg);
}

std::optional<std::string> cacheControlValue(const core::HeaderMap& headers) {
  return headers.getJoined("Cache-Control");
}

}  // namespace

std::optional<std::int64_t> parseDeltaSeconds(std::string_view s) {
  if (s.empty()) return std::nullopt;
  std::int64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    if (v < kDeltaSecondsMax) v = v * 10 + (c - '0');  // stops growing once past 2^31
  }
  return std::min(v, kDeltaSecondsMax);
}

std::vector<std::string_view> splitList(std::string_view value) {
  std::vector<std::string_view> out;
  auto emit = [&](std::size_t from, std::size_t to) {
    std::string_view member = core::trimOws(value.substr(from, to - from));
    if (!member.empty()) out.push_back(member);
  };
  std::size_t start = 0;
  std::size_t i = 0;
  bool quoted = false;
  while (i < value.size()) {
    const char c = value[i];
    if (quoted) {
      if (c == '\\') {
        i += 2;  // quoted-pair: the escaped octet cannot close the string
        continue;
      }
      if (c == '"') quoted = false;
    } else if (c == '"') {
      quoted = true;
    } else if (c == ',') {
      emit(start, i);
      start = i + 1;
    }
    ++i;
  }
  if (start < value.size()) emit(start, value.size());
  return out;
}

ResponseCacheControl parseResponseCacheControl(const core::HeaderMap& headers) {
  ResponseCacheControl cc;
  const std::optional<std::string> value = cacheControlValue(headers);
  if (!value) return cc;
  bool unqualified_private = false;
  for (std::string_view member : splitList(*value)) {
    const Directive d = parseDirective(member);
    const std::string& n = d.name;
    if (n == "no-store") {
      cc.no_store = true;
    } else if (n == "no-cache") {
      cc.no_cache = true;
      if (d.has_arg && d.arg_ok) {
        for (std::string& f : fieldNames(d.arg)) cc.no_cache_fields.push_back(std::move(f));
      }
    } else if (n == "private") {
      std::vector<std::string> fields;
      if (d.has_arg && d.arg_ok) fields = fieldNames(d.arg);
      // An empty or malformed qualifier protects nothing we could strip: unqualified.
      if (fields.empty()) {
        unqualified_private = true;
      } else {
        for (std::string& f : fields) cc.private_fields.push_back(std::move(f));
      }
    } else if (n == "public") {
      cc.is_public = true;
    } else if (n == "must-revalidate") {
      cc.must_revalidate = true;
    } else if (n == "proxy-revalidate") {
      cc.proxy_revalidate = true;
    } else if (n == "must-understand") {
      cc.must_understand = true;
    } else if (n == "no-transform") {
      cc.no_transform = true;
    } else if (n == "immutable") {
      cc.immutable = true;
    } else if (n == "max-age") {
      mergeFreshness(cc.max_age, d);
    } else if (n == "s-maxage") {
      mergeFreshness(cc.s_maxage, d);
    } else if (n == "stale-while-revalidate") {
      mergeWindow(cc.stale_while_revalidate, d);
    } else if (n == "stale-if-error") {
      mergeWindow(cc.stale_if_error, d);
    }
  }
  if (unqualified_private) {
    cc.is_private = true;
    cc.private_fields.clear();
  }
  return cc;
}

RequestCacheControl parseRequestCacheControl(const core::HeaderMap& headers) {
  RequestCacheControl cc;
  const std::optional<std::string> value = cacheControlValue(headers);
  if (!value) {
    if (std::optional<std::string> pragma = headers.getJoined("Pragma")) {
      for (std::string_view m : splitList(*pragma)) {
        if (core::iequals(m, "no-cache")) cc.no_cache = true;
      }
    }
    return cc;
  }
  for (std::string_view member : splitList(*value)) {
    const Directive d = parseDirective(member);
    const std::string& n = d.name;
    if (n == "no-cache") {
      cc.no_cache = true;
    } else if (n == "no-store") {
      cc.no_store = true;
    } else if (n == "no-transform") {
      cc.no_transform = true;
    } else if (n == "only-if-cached") {
      cc.only_if_cached = true;
    } else if (n == "max-age") {
      firstValid(cc.max_age, d);
    } else if (n == "min-fresh") {
      firstValid(cc.min_fresh, d);
    } else if (n == "max-stale") {
      if (cc.max_stale) continue;
      if (!d.has_arg) {
        cc.max_stale = kDeltaSecondsMax;
      } else if (d.arg_ok) {
        cc.max_stale = parseDeltaSeconds(d.arg);
      }
    }
  }
  return cc;
}

ExpiresField parseExpires(const core::HeaderMap& headers) {
  ExpiresField e;
  const std::vector<std::string_view> values = headers.getAll("Expires");
  if (values.empty()) return e;
  e.present = true;
  std::optional<std::int64_t> first = core::parseHttpDate(core::trimOws(values.front()));
  for (std::size_t i = 1; first && i < values.size(); ++i) {
    if (core::parseHttpDate(core::trimOws(values[i])) != first) first.reset();  // conflicting
  }
  e.time = first;
  return e;
}

std::optional<std::int64_t> parseDate(const core::HeaderMap& headers) {
  const std::optional<std::string_view> v = headers.get("Date");
  if (!v) return std::nullopt;
  return core::parseHttpDate(core::trimOws(*v));
}

std::int64_t parseAge(const core::HeaderMap& headers) {
  const std::optional<std::string_view> v = headers.get("Age");
  if (!v) return 0;
  const std::vector<std::string_view> members = splitList(*v);
  if (members.empty()) return 0;
  return parseDeltaSeconds(members.front()).value_or(0);
}

VaryField parseVary(const core::HeaderMap& headers) {
  VaryField vary;
  for (std::string_view line : headers.getAll("Vary")) {
    for (std::string_view m : splitList(line)) {
      if (m == "*") {
        vary.star = true;
      } else {
        vary.names.push_back(core::toLower(m));
      }
    }
  }
  std::sort(vary.names.begin(), vary.names.end());
  vary.names.erase(std::unique(vary.names.begin(), vary.names.end()), vary.names.end());
  return vary;
}

}  // namespace portico::cache
