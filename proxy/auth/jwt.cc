#include "proxy/auth/jwt.h"

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>

namespace portico::proxy {
namespace {

using nlohmann::json;

// JOSE headers and JWT claims are shallow; the limit keeps serializing the claims (recursive in
// nlohmann::json) far from the stack's end whatever a token holds.
constexpr int kMaxJsonDepth = 32;
// NumericDates, the clock and the leeway are clamped into ±2^62 / [0, 2^61] so that every sum
// below stays inside int64_t.
constexpr std::int64_t kTimeLimit = std::int64_t{1} << 62;
constexpr std::int64_t kLeewayLimit = std::int64_t{1} << 61;

JwtResult refuse(std::string reason) {
  JwtResult r;
  r.reason = std::move(reason);
  return r;
}

bool equalsIgnoreCase(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; };
           return lower(x) == lower(y);
         });
}

// A JSON object from `text`, or nullopt (not JSON, nested deeper than kMaxJsonDepth, another
// type, a NUL byte anywhere: nlohmann's lexer would take it for the end of the input). Never
// throws on bad input: the parser runs with exceptions off. Duplicate member
// names keep the lexically last value, as RFC 7515 §4 and RFC 7519 §4 allow.
std::optional<json> parseObject(std::string_view text) {
  if (text.find('\0') != std::string_view::npos) return std::nullopt;
  bool too_deep = false;
  json::parser_callback_t limit = [&too_deep](int depth, json::parse_event_t, json&) {
    too_deep = too_deep || depth > kMaxJsonDepth;
    return !too_deep;
  };
  json value = json::parse(text.begin(), text.end(), limit, /*allow_exceptions=*/false);
  if (too_deep || value.is_discarded() || !value.is_object()) return std::nullopt;
  return value;
}

// A NumericDate (RFC 7519 §2): seconds as an integer or a decimal, clamped to ±kTimeLimit;
// nullopt when `v` is not a finite number. Decimals are rounded up: with an integer clock, every
// comparison below (now >= exp + l, now + l < nbf, iat > now + l) gives the same answer for
// ceil(t) as for the exact t.
std::optional<std::int64_t> numericDate(const json& v) {
  if (v.is_number_unsigned()) {
    const auto u = v.get<std::uint64_t>();
    return u > static_cast<std::uint64_t>(kTimeLimit) ? kTimeLimit : static_cast<std::int64_t>(u);
  }
  if (v.is_number_integer()) return std::clamp(v.get<std::int64_t>(), -kTimeLimit, kTimeLimit);
  if (v.is_number_float()) {
    const double d = v.get<double>();
    if (!std::isfinite(d)) return std::nullopt;
    if (d >= static_cast<double>(kTimeLimit)) return kTimeLimit;
    if (d <= -static_cast<double>(kTimeLimit)) return -kTimeLimit;
    return static_cast<std::int64_t>(std::ceil(d));
  }
  return std::nullopt;
}

std::string claimText(const json& v) {
  if (v.is_string()) return v.get<std::string>();
  // Numbers, true/false, null, arrays and objects: their compact JSON text.
  return v.dump(-1, ' ', false, json::error_handler_t::replace);
}

bool audienceMatches(const json& aud, const std::vector<std::string>& wanted) {
  auto wants = [&](const json& v) {
    return v.is_string() &&
           std::find(wanted.begin(), wanted.end(), v.get_ref<const std::string&>()) != wanted.end();
  };
  if (aud.is_string()) return wants(aud);
  if (aud.is_array()) return std::any_of(aud.begin(), aud.end(), wants);
  return false;
}

JwtResult verifyUnguarded(std::string_view token, const Jwks& keys, const JwtPolicy& policy,
                          std::int64_t now_unix_s) {
  if (token.size() > kMaxJwtBytes) return refuse("token too long");
  const std::size_t dot1 = token.find('.');
  const std::size_t dot2 = dot1 == std::string_view::npos ? dot1 : token.find('.', dot1 + 1);
  if (dot2 == std::string_view::npos || token.find('.', dot2 + 1) != std::string_view::npos ||
      dot1 == 0 || dot2 == dot1 + 1) {
    return refuse("malformed token");
  }
  const std::string_view header_b64 = token.substr(0, dot1);
  const std::string_view payload_b64 = token.substr(dot1 + 1, dot2 - dot1 - 1);
  const std::string_view signature_b64 = token.substr(dot2 + 1);

  // ---- header: which algorithm, which key ----
  auto header_text = base64UrlDecode(header_b64);
  if (!header_text) return refuse("bad header encoding");
  auto header = parseObject(*header_text);
  if (!header) return refuse("header not a JSON object");
  auto alg_it = header->find("alg");
  if (alg_it == header->end() || !alg_it->is_string()) return refuse("missing alg");
  const std::string& alg_name = alg_it->get_ref<const std::string&>();
  JwsAlg alg;
  if (alg_name == "RS256") {
    alg = JwsAlg::RS256;
  } else if (alg_name == "ES256") {
    alg = JwsAlg::ES256;
  } else if (equalsIgnoreCase(alg_name, "none")) {
    return refuse("alg none");
  } else if (alg_name == "HS256" || alg_name == "HS384" || alg_name == "HS512") {
    return refuse("alg " + alg_name + " not allowed");
  } else {
    return refuse("unsupported alg");  // not echoed: it is attacker text
  }
  if (header->contains("crit")) return refuse("crit not supported");
  std::optional<std::string_view> kid;
  if (auto kid_it = header->find("kid"); kid_it != header->end()) {
    if (!kid_it->is_string()) return refuse("bad kid");
    kid = kid_it->get_ref<const std::string&>();
  }

  // ---- signature, before anything of the payload is looked at ----
  auto signature = base64UrlDecode(signature_b64);
  if (!signature || signature->empty()) return refuse("bad signature encoding");
  const KeyVerdict verdict = keys.verify(alg, kid, token.substr(0, dot2), *signature);
  if (verdict != KeyVerdict::Valid) return refuse(toString(verdict));

  // ---- claims ----
  auto payload_text = base64UrlDecode(payload_b64);
  if (!payload_text) return refuse("bad payload encoding");
  auto payload = parseObject(*payload_text);
  if (!payload) return refuse("payload not a JSON object");

  const std::int64_t now = std::clamp(now_unix_s, -kTimeLimit, kTimeLimit);
  const std::int64_t leeway = std::clamp(policy.leeway_s, std::int64_t{0}, kLeewayLimit);
  auto exp_it = payload->find("exp");
  if (exp_it == payload->end()) return refuse("missing exp");
  const auto exp = numericDate(*exp_it);
  if (!exp) return refuse("bad exp");
  if (now >= *exp + leeway) return refuse("expired");
  if (auto nbf_it = payload->find("nbf"); nbf_it != payload->end()) {
    const auto nbf = numericDate(*nbf_it);
    if (!nbf) return refuse("bad nbf");
    if (now + leeway < *nbf) return refuse("not yet valid");
  }
  if (auto iat_it = payload->find("iat"); iat_it != payload->end()) {
    const auto iat = numericDate(*iat_it);
    if (!iat) return refuse("bad iat");
    if (*iat > now + leeway) return refuse("issued in the future");
  }
  if (!policy.issuer.empty()) {
    auto iss_it = payload->find("iss");
    if (iss_it == payload->end()) return refuse("missing iss");
    if (!iss_it->is_string() || iss_it->get_ref<const std::string&>() != policy.issuer) {
      return refuse("iss mismatch");
    }
  }
  if (!policy.audiences.empty()) {
    auto aud_it = payload->find("aud");
    if (aud_it == payload->end()) return refuse("missing aud");
    if (!audienceMatches(*aud_it, policy.audiences)) return refuse("aud mismatch");
  }

  JwtResult result;
  result.ok = true;
  result.claims_json = payload->dump(-1, ' ', false, json::error_handler_t::replace);
  for (const auto& [name, value] : payload->items()) result.claims.emplace(name, claimText(value));
  return result;
}

}  // namespace

JwtResult verifyJwt(std::string_view token, const Jwks& keys, const JwtPolicy& policy,
                    std::int64_t now_unix_s) {
  try {
    return verifyUnguarded(token, keys, policy, now_unix_s);
  } catch (...) {  // allocation failure: the token is refused, the worker goes on
    return refuse("internal error");
  }
}

std::optional<std::string_view> bearerToken(std::string_view value) {
  constexpr std::string_view kScheme = "bearer";
  if (value.size() <= kScheme.size() || !equalsIgnoreCase(value.substr(0, kScheme.size()), kScheme) ||
      value[kScheme.size()] != ' ') {
    return std::nullopt;
  }
  value.remove_prefix(kScheme.size());
  while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
  while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) value.remove_suffix(1);
  if (value.empty() || value.find_first_of(" \t") != std::string_view::npos) return std::nullopt;
  return value;
}

}  // namespace portico::proxy
