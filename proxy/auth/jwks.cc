#include "proxy/auth/jwks.h"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/rsa.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <exception>
#include <fstream>
#include <nlohmann/json.hpp>
#include <vector>

namespace portico::proxy {

using nlohmann::json;

struct PkeyFree {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
using PkeyPtr = std::unique_ptr<EVP_PKEY, PkeyFree>;

// One usable key. `alg` follows from kty (RSA: RS256, EC P-256: ES256).
struct JwkKey {
  std::optional<std::string> kid;
  JwsAlg alg;
  PkeyPtr pkey;  // public key only; used read-only after construction
};

struct Jwks::KeySet {
  std::vector<JwkKey> keys;
};

namespace {

constexpr std::size_t kMaxJwksFileBytes = 1 << 20;
constexpr int kMinRsaBits = 2048;
constexpr int kMaxRsaBits = 16384;  // OpenSSL's own ceiling (OPENSSL_RSA_MAX_MODULUS_BITS)
constexpr std::size_t kP256CoordinateBytes = 32;

// -1 for characters outside the base64url alphabet.
int base64UrlValue(unsigned char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '-') return 62;
  if (c == '_') return 63;
  return -1;
}

struct BnFree {
  void operator()(BIGNUM* b) const { BN_free(b); }
};
using BnPtr = std::unique_ptr<BIGNUM, BnFree>;

// Drops what OpenSSL queued on this thread: every path out of this file leaves the queue empty.
void clearOpensslErrors() { ERR_clear_error(); }

PkeyPtr importRsa(const std::string& n, const std::string& e) {
  BnPtr bn_n(BN_bin2bn(reinterpret_cast<const unsigned char*>(n.data()), static_cast<int>(n.size()), nullptr));
  BnPtr bn_e(BN_bin2bn(reinterpret_cast<const unsigned char*>(e.data()), static_cast<int>(e.size()), nullptr));
  OSSL_PARAM_BLD* bld = OSSL_PARAM_BLD_new();
  OSSL_PARAM* params = nullptr;
  EVP_PKEY_CTX* ctx = nullptr;
  EVP_PKEY* pkey = nullptr;
  if (bn_n && bn_e && bld != nullptr &&
      OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn_n.get()) == 1 &&
      OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, bn_e.get()) == 1 &&
      (params = OSSL_PARAM_BLD_to_param(bld)) != nullptr &&
      (ctx = EVP_PKEY_CTX_new_from_name(nullptr, "RSA", nullptr)) != nullptr &&
      EVP_PKEY_fromdata_init(ctx) == 1) {
    if (EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) != 1) pkey = nullptr;
  }
  EVP_PKEY_CTX_free(ctx);
  OSSL_PARAM_free(params);
  OSSL_PARAM_BLD_free(bld);
  return PkeyPtr(pkey);
}

PkeyPtr importP256(const std::string& x, const std::string& y) {
  std::string point = "\x04" + x + y;  // SEC 1 uncompressed form
  char group[] = "prime256v1";
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, group, 0),
      OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, point.data(), point.size()),
      OSSL_PARAM_construct_end()};
  EVP_PKEY_CTX* ctx = EVP_PKEY_CTX_new_from_name(nullptr, "EC", nullptr);
  EVP_PKEY* pkey = nullptr;
  if (ctx != nullptr && EVP_PKEY_fromdata_init(ctx) == 1 &&
      EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) != 1) {
    pkey = nullptr;
  }
  EVP_PKEY_CTX_free(ctx);
  return PkeyPtr(pkey);
}

// OpenSSL's own consistency check of a public key (RSA: n odd, e sane; EC: point on the curve,
// not at infinity, right order).
bool publicKeyChecks(EVP_PKEY* pkey) {
  EVP_PKEY_CTX* ctx = EVP_PKEY_CTX_new_from_pkey(nullptr, pkey, nullptr);
  const bool ok = ctx != nullptr && EVP_PKEY_public_check(ctx) == 1;
  EVP_PKEY_CTX_free(ctx);
  return ok;
}

// A JWK member that must be a base64url string. Returns false with `error` set when it is
// missing, not a string, or not base64url. A trailing "=" padding is tolerated here (some key
// publishers pad) though never in tokens.
bool memberBytes(const json& key, const char* name, const std::string& where, std::string& out,
                 std::string& error) {
  auto it = key.find(name);
  if (it == key.end()) {
    error = where + "." + name + ": missing";
    return false;
  }
  if (!it->is_string()) {
    error = where + "." + name + ": not a string";
    return false;
  }
  std::string_view text = it->get_ref<const std::string&>();
  for (int i = 0; i < 2 && !text.empty() && text.back() == '='; ++i) text.remove_suffix(1);
  auto bytes = base64UrlDecode(text);
  if (!bytes || bytes->empty()) {
    error = where + "." + name + ": not base64url";
    return false;
  }
  out = std::move(*bytes);
  return true;
}

std::string_view stripLeadingZeros(std::string_view s) {
  while (s.size() > 1 && s.front() == '\0') s.remove_prefix(1);
  return s;
}

int bitLength(std::string_view big_endian) {
  big_endian = stripLeadingZeros(big_endian);
  if (big_endian.empty()) return 0;
  int bits = static_cast<int>(big_endian.size() - 1) * 8;
  for (auto top = static_cast<unsigned char>(big_endian.front()); top != 0; top >>= 1) ++bits;
  return bits;
}

enum class KeyParse { Usable, Skipped, Error };

// One entry of "keys". Usable keys are appended to `out`.
KeyParse parseKey(const json& key, std::size_t index, std::vector<JwkKey>& out, std::string& error) {
  const std::string where = "keys[" + std::to_string(index) + "]";
  if (!key.is_object()) {
    error = where + ": not an object";
    return KeyParse::Error;
  }
  auto stringMember = [&](const char* name, std::optional<std::string>& value) {
    auto it = key.find(name);
    if (it == key.end()) return true;
    if (!it->is_string()) {
      error = where + "." + name + ": not a string";
      return false;
    }
    value = it->get<std::string>();
    return true;
  };
  std::optional<std::string> kty, use, alg, kid, crv;
  if (!stringMember("kty", kty) || !stringMember("use", use) || !stringMember("alg", alg) ||
      !stringMember("kid", kid) || !stringMember("crv", crv)) {
    return KeyParse::Error;
  }
  if (!kty) {
    error = where + ".kty: missing";
    return KeyParse::Error;
  }
  if (use && *use != "sig") return KeyParse::Skipped;
  if (auto ops = key.find("key_ops"); ops != key.end() && ops->is_array()) {
    bool verify = false;
    for (const auto& op : *ops) verify = verify || (op.is_string() && op.get_ref<const std::string&>() == "verify");
    if (!verify) return KeyParse::Skipped;
  }

  if (*kty == "RSA") {
    if (alg && *alg != "RS256") return KeyParse::Skipped;
    std::string n, e;
    if (!memberBytes(key, "n", where, n, error) || !memberBytes(key, "e", where, e, error)) {
      return KeyParse::Error;
    }
    n = std::string(stripLeadingZeros(n));
    e = std::string(stripLeadingZeros(e));
    const int bits = bitLength(n);
    if (bits < kMinRsaBits) {
      error = where + ".n: RSA modulus of " + std::to_string(bits) + " bits (2048 at least)";
      return KeyParse::Error;
    }
    if (bits > kMaxRsaBits) {
      error = where + ".n: RSA modulus over 16384 bits";
      return KeyParse::Error;
    }
    if (e.size() > 8 || (static_cast<unsigned char>(e.back()) & 1) == 0 || bitLength(e) < 2) {
      error = where + ".e: not a valid RSA exponent";
      return KeyParse::Error;
    }
    PkeyPtr pkey = importRsa(n, e);
    if (!pkey || !publicKeyChecks(pkey.get())) {
      clearOpensslErrors();
      error = where + ": not a valid RSA public key";
      return KeyParse::Error;
    }
    out.push_back(JwkKey{std::move(kid), JwsAlg::RS256, std::move(pkey)});
    return KeyParse::Usable;
  }
  if (*kty == "EC") {
    if (!crv) {
      error = where + ".crv: missing";
      return KeyParse::Error;
    }
    if (*crv != "P-256" || (alg && *alg != "ES256")) return KeyParse::Skipped;
    std::string x, y;
    if (!memberBytes(key, "x", where, x, error) || !memberBytes(key, "y", where, y, error)) {
      return KeyParse::Error;
    }
    if (x.size() != kP256CoordinateBytes || y.size() != kP256CoordinateBytes) {
      error = where + (x.size() != kP256CoordinateBytes ? ".x" : ".y") + ": not 32 bytes";
      return KeyParse::Error;
    }
    PkeyPtr pkey = importP256(x, y);
    if (!pkey || !publicKeyChecks(pkey.get())) {
      clearOpensslErrors();
      error = where + ": not a point on P-256";
      return KeyParse::Error;
    }
    out.push_back(JwkKey{std::move(kid), JwsAlg::ES256, std::move(pkey)});
    return KeyParse::Usable;
  }
  return KeyParse::Skipped;  // "oct", "OKP", ...: not ours
}

// RFC 7518 §3.4: the JWS carries R||S (32 bytes each); OpenSSL wants the DER ECDSA-Sig-Value
// SEQUENCE { INTEGER r, INTEGER s }. Each INTEGER is minimal, with a 0x00 when the top bit is
// set, so the whole is at most 2 + 2 * (2 + 33) = 72 bytes (short-form lengths throughout).
// Fixed buffer: nothing on the verification path allocates or throws.
constexpr std::size_t kMaxP256Der = 72;
std::size_t p256SignatureToDer(std::string_view raw, unsigned char (&der)[kMaxP256Der]) {
  std::size_t len = 2;
  for (std::string_view half : {raw.substr(0, 32), raw.substr(32, 32)}) {
    half = stripLeadingZeros(half);
    const bool pad = (static_cast<unsigned char>(half.front()) & 0x80) != 0;
    der[len++] = 0x02;
    der[len++] = static_cast<unsigned char>(half.size() + (pad ? 1 : 0));
    if (pad) der[len++] = 0x00;
    std::memcpy(der + len, half.data(), half.size());
    len += half.size();
  }
  der[0] = 0x30;
  der[1] = static_cast<unsigned char>(len - 2);
  return len;
}

bool verifyWith(const JwkKey& key, std::string_view signing_input, std::string_view signature) {
  unsigned char der[kMaxP256Der];
  const unsigned char* sig = reinterpret_cast<const unsigned char*>(signature.data());
  std::size_t sig_len = signature.size();
  if (key.alg == JwsAlg::RS256) {
    // RFC 7518 §3.3 / RFC 8017 §8.2.2: exactly the modulus length (OpenSSL would accept a
    // shorter one as if zero-padded).
    if (signature.size() != static_cast<std::size_t>(EVP_PKEY_get_size(key.pkey.get()))) return false;
  } else {
    if (signature.size() != 2 * kP256CoordinateBytes) return false;
    sig_len = p256SignatureToDer(signature, der);
    sig = der;
  }
  EVP_MD_CTX* md = EVP_MD_CTX_new();
  EVP_PKEY_CTX* pctx = nullptr;  // owned by md
  bool ok = md != nullptr &&
            EVP_DigestVerifyInit_ex(md, &pctx, "SHA256", nullptr, nullptr, key.pkey.get(), nullptr) == 1;
  if (ok && key.alg == JwsAlg::RS256) ok = EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING) == 1;
  if (ok) {
    ok = EVP_DigestVerify(md, sig, sig_len,
                          reinterpret_cast<const unsigned char*>(signing_input.data()),
                          signing_input.size()) == 1;
  }
  EVP_MD_CTX_free(md);
  clearOpensslErrors();
  return ok;
}

}  // namespace

std::optional<std::string> base64UrlDecode(std::string_view text) {
  if (text.size() % 4 == 1) return std::nullopt;  // 6 bits cannot make a byte
  std::string out;
  out.reserve(text.size() / 4 * 3 + 2);
  std::uint32_t acc = 0;
  int bits = 0;
  for (char ch : text) {
    const int v = base64UrlValue(static_cast<unsigned char>(ch));
    if (v < 0) return std::nullopt;
    acc = (acc << 6) | static_cast<std::uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xFF));
    }
  }
  if ((acc & ((1u << bits) - 1)) != 0) return std::nullopt;  // non-canonical tail
  return out;
}

const char* toString(KeyVerdict v) {
  switch (v) {
    case KeyVerdict::Valid: return "valid";
    case KeyVerdict::BadSignature: return "bad signature";
    case KeyVerdict::UnknownKid: return "unknown kid";
    case KeyVerdict::NoKidNoKey: return "no kid and no default key";
    case KeyVerdict::AlgKeyMismatch: return "alg does not match key";
  }
  return "?";
}

Jwks::Jwks() : keys_(std::make_shared<const KeySet>()) {}
Jwks::Jwks(std::shared_ptr<const KeySet> keys) : keys_(std::move(keys)) {}

std::size_t Jwks::size() const { return keys_->keys.size(); }

std::optional<Jwks> Jwks::parse(std::string_view text, std::string& error) {
  try {
    json doc;
    if (text.find('\0') != std::string_view::npos) {  // nlohmann would stop reading there
      error = "not JSON: contains a NUL byte";
      return std::nullopt;
    }
    try {
      doc = json::parse(text.begin(), text.end());
    } catch (const json::parse_error& e) {
      std::string what = e.what();
      // "[json.exception.parse_error.101] parse error at line 1, ..." -> "parse error at ..."
      if (auto close = what.find("] "); what.starts_with("[json.exception") && close != std::string::npos) {
        what.erase(0, close + 2);
      }
      error = "not JSON: " + what;
      return std::nullopt;
    }
    if (!doc.is_object()) {
      error = "not a JSON object";
      return std::nullopt;
    }
    auto keys = doc.find("keys");
    if (keys == doc.end()) {
      error = "no \"keys\" member";
      return std::nullopt;
    }
    if (!keys->is_array()) {
      error = "\"keys\" is not an array";
      return std::nullopt;
    }
    auto set = std::make_shared<KeySet>();
    for (std::size_t i = 0; i < keys->size(); ++i) {
      if (parseKey((*keys)[i], i, set->keys, error) == KeyParse::Error) return std::nullopt;
    }
    if (set->keys.empty()) {
      error = "no usable key";
      return std::nullopt;
    }
    return Jwks(std::move(set));
  } catch (const std::exception& e) {  // allocation failure; keeps the contract of no throw
    clearOpensslErrors();
    error = std::string("cannot load: ") + e.what();
    return std::nullopt;
  }
}

std::optional<Jwks> Jwks::loadFile(const std::string& path, std::string& error) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    error = "cannot open " + path + ": " + std::strerror(errno);
    return std::nullopt;
  }
  std::string text(kMaxJwksFileBytes + 1, '\0');
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  if (in.bad()) {
    error = "cannot read " + path;
    return std::nullopt;
  }
  text.resize(static_cast<std::size_t>(in.gcount()));
  if (text.size() > kMaxJwksFileBytes) {
    error = path + ": larger than 1 MiB";
    return std::nullopt;
  }
  return parse(text, error);
}

KeyVerdict Jwks::verify(JwsAlg alg, std::optional<std::string_view> kid,
                        std::string_view signing_input, std::string_view signature) const {
  const auto& keys = keys_->keys;
  auto byKid = [&](const JwkKey& key) { return kid ? (key.kid && *key.kid == *kid) : !key.kid; };
  bool any = false;
  for (const auto& key : keys) any = any || byKid(key);
  // A set of one key serves every token, unless the token names a kid the key contradicts.
  const bool only_key = !any && keys.size() == 1 && (!kid || !keys.front().kid);
  if (!any && !only_key) return kid ? KeyVerdict::UnknownKid : KeyVerdict::NoKidNoKey;
  bool typed = false;
  for (const auto& key : keys) {
    if (!(only_key || byKid(key))) continue;
    if (key.alg != alg) continue;  // never use a key with an algorithm it was not made for
    typed = true;
    if (verifyWith(key, signing_input, signature)) return KeyVerdict::Valid;
  }
  return typed ? KeyVerdict::BadSignature : KeyVerdict::AlgKeyMismatch;
}

}  // namespace portico::proxy
