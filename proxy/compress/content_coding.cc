#include "proxy/compress/content_coding.h"

#include <algorithm>
#include <array>

namespace portico::proxy {
namespace {

// Weights are kept in thousandths: a qvalue has at most three decimals (RFC 9110 §12.4.2).
constexpr int kQMax = 1000;

bool isTchar(char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  switch (c) {
    case '!': case '#': case '$': case '%': case '&': case '\'': case '*': case '+':
    case '-': case '.': case '^': case '_': case '`': case '|': case '~':
      return true;
    default:
      return false;
  }
}

bool isToken(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), isTchar);
}

// qvalue = ( "0" [ "." 0*3DIGIT ] ) / ( "1" [ "." 0*3("0") ] ), in thousandths.
std::optional<int> parseQvalue(std::string_view s) {
  if (s.empty() || (s[0] != '0' && s[0] != '1')) return std::nullopt;
  int whole = s[0] - '0';
  s.remove_prefix(1);
  if (s.empty()) return whole * kQMax;
  if (s[0] != '.' || s.size() > 4) return std::nullopt;
  s.remove_prefix(1);
  int frac = 0;
  int scale = 100;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    frac += (c - '0') * scale;
    scale /= 10;
  }
  if (whole == 1 && frac != 0) return std::nullopt;  // above 1: malformed, not clamped
  return whole * kQMax + frac;
}

// One parsed list element of Accept-Encoding.
struct CodingWeight {
  std::string_view coding;  // as received; compare case-insensitively
  int q = kQMax;
};

// Parses `coding *( OWS ";" OWS name "=" value )`; nullopt when malformed (see the header).
std::optional<CodingWeight> parseElement(std::string_view element) {
  std::size_t semi = element.find(';');
  CodingWeight out;
  out.coding = core::trimOws(element.substr(0, semi));
  if (!isToken(out.coding)) return std::nullopt;
  bool seen_q = false;
  while (semi != std::string_view::npos) {
    element.remove_prefix(semi + 1);
    semi = element.find(';');
    std::string_view param = core::trimOws(element.substr(0, semi));
    if (param.empty()) continue;  // "gzip;" or "gzip;;q=1": tolerated like empty list elements
    std::size_t eq = param.find('=');
    if (eq == std::string_view::npos) return std::nullopt;
    std::string_view name = core::trimOws(param.substr(0, eq));
    std::string_view value = core::trimOws(param.substr(eq + 1));
    if (!isToken(name)) return std::nullopt;
    if (!core::iequals(name, "q")) continue;  // unknown parameter: ignored
    if (seen_q) return std::nullopt;
    seen_q = true;
    std::optional<int> q = parseQvalue(value);
    if (!q) return std::nullopt;
    out.q = *q;
  }
  return out;
}

// The weight a coding ends up with; nullopt = not listed.
struct Weights {
  std::optional<int> gzip;
  std::optional<int> br;
  std::optional<int> star;
};

void lowerInto(std::optional<int>& slot, int q) { slot = slot ? std::min(*slot, q) : q; }

Weights collectWeights(std::string_view list) {
  Weights w;
  while (true) {
    std::size_t comma = list.find(',');
    std::string_view element = core::trimOws(list.substr(0, comma));
    if (!element.empty()) {
      if (std::optional<CodingWeight> cw = parseElement(element)) {
        if (core::iequals(cw->coding, "gzip") || core::iequals(cw->coding, "x-gzip")) {
          lowerInto(w.gzip, cw->q);
        } else if (core::iequals(cw->coding, "br")) {
          lowerInto(w.br, cw->q);
        } else if (cw->coding == "*") {
          lowerInto(w.star, cw->q);
        }
        // identity, deflate, zstd, ...: listed, but nothing we produce.
      }
    }
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
  return w;
}

// The media type's essence, lower-cased, without parameters: "Text/HTML; charset=x" -> "text/html".
std::string mediaEssence(std::string_view content_type) {
  return core::toLower(core::trimOws(content_type.substr(0, content_type.find(';'))));
}

bool endsWith(std::string_view s, std::string_view suffix) {
  return s.size() > suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

// Exact essences beyond text/* and application/*+json|+xml (CloudFront's list, plus icons).
constexpr std::array<std::string_view, 32> kCompressibleExact = {
    "application/javascript",      "application/x-javascript",
    "application/ecmascript",      "application/json",
    "application/xml",             "application/wasm",
    "application/dash+xml",        "application/x-mpegurl",
    "application/vnd.apple.mpegurl", "application/x-httpd-cgi",
    "application/x-perl",          "application/vnd.ms-fontobject",
    "application/eot",             "application/font",
    "application/font-sfnt",       "application/opentype",
    "application/otf",             "application/truetype",
    "application/ttf",             "application/x-font-opentype",
    "application/x-font-truetype", "application/x-font-ttf",
    "application/x-opentype",      "application/x-otf",
    "application/x-ttf",           "font/ttf",
    "font/otf",                    "font/eot",
    "font/opentype",               "image/svg+xml",
    "image/x-icon",                "image/vnd.microsoft.icon",
};

}  // namespace

std::string_view codingToken(ContentCoding c) {
  switch (c) {
    case ContentCoding::Gzip:
      return "gzip";
    case ContentCoding::Brotli:
      return "br";
    case ContentCoding::Identity:
      break;
  }
  return "identity";
}

ContentCoding negotiateCoding(std::optional<std::string_view> accept_encoding) {
  if (!accept_encoding) return ContentCoding::Identity;
  Weights w = collectWeights(*accept_encoding);
  int gzip_q = w.gzip.value_or(w.star.value_or(0));
  int br_q = w.br.value_or(w.star.value_or(0));
  if (gzip_q == 0 && br_q == 0) return ContentCoding::Identity;
  return br_q >= gzip_q ? ContentCoding::Brotli : ContentCoding::Gzip;
}

bool isCompressibleType(std::string_view content_type) {
  std::string essence = mediaEssence(content_type);
  std::size_t slash = essence.find('/');
  if (slash == std::string::npos) return false;
  std::string_view type = std::string_view(essence).substr(0, slash);
  std::string_view subtype = std::string_view(essence).substr(slash + 1);
  if (!isToken(type) || !isToken(subtype)) return false;
  if (type == "text") return subtype != "event-stream";
  if (type == "application" && (endsWith(subtype, "+json") || endsWith(subtype, "+xml"))) {
    return true;
  }
  return std::find(kCompressibleExact.begin(), kCompressibleExact.end(), essence) !=
         kCompressibleExact.end();
}

bool compressionApplies(const core::ResponseHead& head, std::uint64_t body_size) {
  if (head.status != 200) return false;
  if (body_size < kCompressMinBytes || body_size > kCompressMaxBytes) return false;
  std::optional<std::string_view> type = head.headers.get("Content-Type");
  if (!type || !isCompressibleType(*type)) return false;
  if (head.headers.has("Content-Range")) return false;
  for (std::string_view line : head.headers.getAll("Content-Encoding")) {
    while (true) {
      std::size_t comma = line.find(',');
      std::string_view coding = core::trimOws(line.substr(0, comma));
      if (!coding.empty() && !core::iequals(coding, "identity")) return false;
      if (comma == std::string_view::npos) break;
      line.remove_prefix(comma + 1);
    }
  }
  for (std::string_view line : head.headers.getAll("Cache-Control")) {
    if (core::listHasToken(line, "no-transform")) return false;
  }
  return true;
}

void addVaryAcceptEncoding(core::HeaderMap& headers) { core::addVaryToken(headers, "Accept-Encoding"); }

std::string weakenEtag(std::string_view etag) {
  etag = core::trimOws(etag);
  bool weak = etag.size() >= 2 && etag[0] == 'W' && etag[1] == '/';
  std::string_view opaque = weak ? etag.substr(2) : etag;
  // opaque-tag = DQUOTE *etagc DQUOTE; etagc = %x21 / %x23-7E / obs-text
  if (opaque.size() < 2 || opaque.front() != '"' || opaque.back() != '"') return "";
  for (char c : opaque.substr(1, opaque.size() - 2)) {
    auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u == '"' || u == 0x7F) return "";
  }
  if (weak) return std::string(etag);
  std::string out;
  out.reserve(etag.size() + 2);
  out += "W/";
  out += etag;
  return out;
}

}  // namespace portico::proxy
