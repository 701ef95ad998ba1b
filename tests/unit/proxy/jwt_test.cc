// The JWT authorizer (proxy/auth): JWKS loading, RS256/ES256 verification, the refusals that
// matter (alg none, HS256 key confusion, tampering, wrong/unknown key), the time and policy
// claims with their leeway boundaries, hostile inputs, the claims map, and bearer parsing.
// Keys are generated at run time and tokens are signed here with EVP_DigestSign, so the
// verifier is checked against OpenSSL's signer, not against itself.
#include <gtest/gtest.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <limits>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "proxy/auth/jwks.h"
#include "proxy/auth/jwt.h"

namespace portico::proxy {
namespace {

using nlohmann::json;

constexpr std::int64_t kNow = 1'700'000'000;

struct PkeyFree {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
using Pkey = std::unique_ptr<EVP_PKEY, PkeyFree>;

std::string b64url(std::string_view bytes) {
  static constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string out;
  std::uint32_t acc = 0;
  int bits = 0;
  for (unsigned char c : bytes) {
    acc = (acc << 8) | c;
    bits += 8;
    while (bits >= 6) {
      bits -= 6;
      out.push_back(kAlphabet[(acc >> bits) & 63]);
    }
  }
  if (bits > 0) out.push_back(kAlphabet[(acc << (6 - bits)) & 63]);
  return out;
}

std::string bnParam(EVP_PKEY* pkey, const char* name, int pad_to = 0) {
  BIGNUM* bn = nullptr;
  EXPECT_EQ(EVP_PKEY_get_bn_param(pkey, name, &bn), 1) << name;
  std::string out(pad_to > 0 ? pad_to : BN_num_bytes(bn), '\0');
  BN_bn2binpad(bn, reinterpret_cast<unsigned char*>(out.data()), static_cast<int>(out.size()));
  BN_free(bn);
  return out;
}

// The public JWK of `pkey` (RSA or P-256), with `kid` unless empty.
json jwkOf(EVP_PKEY* pkey, const std::string& kid) {
  json k;
  if (EVP_PKEY_is_a(pkey, "RSA")) {
    k = {{"kty", "RSA"}, {"n", b64url(bnParam(pkey, OSSL_PKEY_PARAM_RSA_N))},
         {"e", b64url(bnParam(pkey, OSSL_PKEY_PARAM_RSA_E))}};
  } else {
    k = {{"kty", "EC"}, {"crv", "P-256"}, {"x", b64url(bnParam(pkey, OSSL_PKEY_PARAM_EC_PUB_X, 32))},
         {"y", b64url(bnParam(pkey, OSSL_PKEY_PARAM_EC_PUB_Y, 32))}};
  }
  if (!kid.empty()) k["kid"] = kid;
  return k;
}

Jwks jwksOf(const json& keys) {
  std::string error;
  auto set = Jwks::parse(json{{"keys", keys}}.dump(), error);
  EXPECT_TRUE(set) << error;
  return set ? *set : Jwks();
}

// SHA-256 signature of `input` in JWS form: RSA PKCS#1 v1.5 as is; ECDSA converted from DER to
// the 64-byte R||S.
std::string sign(EVP_PKEY* pkey, std::string_view input) {
  EVP_MD_CTX* md = EVP_MD_CTX_new();
  EXPECT_EQ(EVP_DigestSignInit_ex(md, nullptr, "SHA256", nullptr, nullptr, pkey, nullptr), 1);
  std::size_t len = 0;
  const auto* data = reinterpret_cast<const unsigned char*>(input.data());
  EXPECT_EQ(EVP_DigestSign(md, nullptr, &len, data, input.size()), 1);
  std::string sig(len, '\0');
  EXPECT_EQ(EVP_DigestSign(md, reinterpret_cast<unsigned char*>(sig.data()), &len, data, input.size()), 1);
  sig.resize(len);
  EVP_MD_CTX_free(md);
  if (EVP_PKEY_is_a(pkey, "RSA")) return sig;
  const auto* p = reinterpret_cast<const unsigned char*>(sig.data());
  ECDSA_SIG* ecdsa = d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(sig.size()));
  std::string raw(64, '\0');
  BN_bn2binpad(ECDSA_SIG_get0_r(ecdsa), reinterpret_cast<unsigned char*>(raw.data()), 32);
  BN_bn2binpad(ECDSA_SIG_get0_s(ecdsa), reinterpret_cast<unsigned char*>(raw.data()) + 32, 32);
  ECDSA_SIG_free(ecdsa);
  return raw;
}

std::string signingInput(const json& header, const json& payload) {
  return b64url(header.dump()) + "." + b64url(payload.dump());
}

std::string token(const json& header, const json& payload, EVP_PKEY* pkey) {
  const std::string input = signingInput(header, payload);
  return input + "." + b64url(sign(pkey, input));
}

std::string token(const json& header, const std::string& payload_text, EVP_PKEY* pkey) {
  const std::string input = b64url(header.dump()) + "." + b64url(payload_text);
  return input + "." + b64url(sign(pkey, input));
}

class JwtTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    rsa1_.reset(EVP_RSA_gen(2048));
    rsa2_.reset(EVP_RSA_gen(2048));
    ec1_.reset(EVP_EC_gen("P-256"));
    ec2_.reset(EVP_EC_gen("P-256"));
    ASSERT_TRUE(rsa1_ && rsa2_ && ec1_ && ec2_);
  }
  static void TearDownTestSuite() {
    rsa1_.reset();
    rsa2_.reset();
    ec1_.reset();
    ec2_.reset();
  }

  static json rs(const std::string& kid) { return {{"alg", "RS256"}, {"typ", "JWT"}, {"kid", kid}}; }
  static json es(const std::string& kid) { return {{"alg", "ES256"}, {"typ", "JWT"}, {"kid", kid}}; }
  static json claims() {
    return {{"sub", "user-1"}, {"iss", "https://issuer.test"}, {"aud", "api"}, {"exp", kNow + 300},
            {"iat", kNow - 10}};
  }
  // Keys r1, r2 (RSA) and e1, e2 (P-256).
  Jwks all() const {
    return jwksOf(json::array({jwkOf(rsa1_.get(), "r1"), jwkOf(rsa2_.get(), "r2"),
                               jwkOf(ec1_.get(), "e1"), jwkOf(ec2_.get(), "e2")}));
  }
  JwtResult check(const std::string& t, const JwtPolicy& policy = {}) const {
    return verifyJwt(t, keys_, policy, kNow);
  }

  static Pkey rsa1_, rsa2_, ec1_, ec2_;
  Jwks keys_ = all();
};

Pkey JwtTest::rsa1_, JwtTest::rsa2_, JwtTest::ec1_, JwtTest::ec2_;

// ---- valid tokens -----------------------------------------------------------------------------

TEST_F(JwtTest, ValidRs256) {
  JwtPolicy policy{"https://issuer.test", {"api"}, 60};
  auto r = check(token(rs("r1"), claims(), rsa1_.get()), policy);
  ASSERT_TRUE(r.ok) << r.reason;
  EXPECT_EQ(r.reason, "");
  EXPECT_EQ(json::parse(r.claims_json), claims());
  EXPECT_EQ(r.claims_json.find(' '), std::string::npos);  // compact
  EXPECT_EQ(r.claims.at("sub"), "user-1");
}

TEST_F(JwtTest, ValidEs256) {
  for (int i = 0; i < 8; ++i) {  // R or S with a leading zero / top bit set: DER edge cases
    json payload = claims();
    payload["n"] = i;
    auto r = check(token(es("e2"), payload, ec2_.get()));
    ASSERT_TRUE(r.ok) << r.reason;
  }
}

// ---- signatures and keys ----------------------------------------------------------------------

TEST_F(JwtTest, WrongKeyIsBadSignature) {
  EXPECT_EQ(check(token(rs("r1"), claims(), rsa2_.get())).reason, "bad signature");
  EXPECT_EQ(check(token(es("e1"), claims(), ec2_.get())).reason, "bad signature");
}

TEST_F(JwtTest, TamperedPayloadOrHeaderOrSignatureIsBadSignature) {
  for (EVP_PKEY* key : {rsa1_.get(), ec1_.get()}) {
    const json header = key == rsa1_.get() ? rs("r1") : es("e1");
    const std::string good = token(header, claims(), key);
    const std::string sig = good.substr(good.rfind('.'));
    json more = claims();
    more["sub"] = "admin";
    EXPECT_EQ(check(signingInput(header, more) + sig).reason, "bad signature");
    json header2 = header;
    header2["typ"] = "at+jwt";
    EXPECT_EQ(check(signingInput(header2, claims()) + sig).reason, "bad signature");
    std::string flipped = good;
    flipped[flipped.size() - 5] = flipped[flipped.size() - 5] == 'A' ? 'B' : 'A';
    EXPECT_EQ(check(flipped).reason, "bad signature");
  }
}

TEST_F(JwtTest, SignatureLengthAndFormMustBeExact) {
  const std::string input = signingInput(es("e1"), claims());
  const std::string raw = sign(ec1_.get(), input);
  // The DER form OpenSSL produces is not the JWS form.
  EVP_MD_CTX* md = EVP_MD_CTX_new();
  ASSERT_EQ(EVP_DigestSignInit_ex(md, nullptr, "SHA256", nullptr, nullptr, ec1_.get(), nullptr), 1);
  unsigned char der[80];
  std::size_t der_len = sizeof der;
  ASSERT_EQ(EVP_DigestSign(md, der, &der_len, reinterpret_cast<const unsigned char*>(input.data()),
                           input.size()), 1);
  EVP_MD_CTX_free(md);
  EXPECT_EQ(check(input + "." + b64url({reinterpret_cast<char*>(der), der_len})).reason, "bad signature");
  EXPECT_EQ(check(input + "." + b64url(std::string(64, '\0'))).reason, "bad signature");  // r = s = 0
  EXPECT_EQ(check(input + "." + b64url(raw + "x")).reason, "bad signature");
  EXPECT_TRUE(check(input + "." + b64url(raw)).ok);

  const std::string rinput = signingInput(rs("r1"), claims());
  const std::string rsig = sign(rsa1_.get(), rinput);
  EXPECT_EQ(check(rinput + "." + b64url(std::string(1, '\0') + rsig)).reason, "bad signature");
  EXPECT_EQ(check(rinput + "." + b64url(rsig.substr(0, 255))).reason, "bad signature");
}

TEST_F(JwtTest, AlgNoneIsRefused) {
  for (const char* alg : {"none", "None", "NONE"}) {
    const std::string input = signingInput({{"alg", alg}, {"kid", "r1"}}, claims());
    EXPECT_EQ(check(input + ".").reason, "alg none") << alg;
    EXPECT_EQ(check(input + "." + b64url(sign(rsa1_.get(), input))).reason, "alg none") << alg;
  }
}

TEST_F(JwtTest, Hs256WithThePublicKeyAsSecretIsRefused) {
  // The classic confusion: an attacker MACs a token with the (public) RSA key as HMAC secret,
  // hoping the verifier feeds its RSA key to HMAC. Try the forms a library might use as secret.
  BIO* bio = BIO_new(BIO_s_mem());
  ASSERT_EQ(PEM_write_bio_PUBKEY(bio, rsa1_.get()), 1);
  char* pem_data = nullptr;
  const long pem_len = BIO_get_mem_data(bio, &pem_data);
  const std::string pem(pem_data, static_cast<std::size_t>(pem_len));
  BIO_free(bio);
  const std::string jwk_text = jwkOf(rsa1_.get(), "r1").dump();
  for (const char* alg : {"HS256", "HS384", "HS512"}) {
    for (const std::string& secret : {pem, jwk_text}) {
      const std::string input = signingInput({{"alg", alg}, {"kid", "r1"}}, claims());
      unsigned char mac[EVP_MAX_MD_SIZE];
      unsigned int mac_len = 0;
      ASSERT_NE(HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
                     reinterpret_cast<const unsigned char*>(input.data()), input.size(), mac, &mac_len),
                nullptr);
      auto r = check(input + "." + b64url({reinterpret_cast<char*>(mac), mac_len}));
      EXPECT_FALSE(r.ok);
      EXPECT_EQ(r.reason, std::string("alg ") + alg + " not allowed");
    }
  }
}

TEST_F(JwtTest, OtherAlgsAndCritAreRefused) {
  for (const char* alg : {"RS512", "PS256", "ES384", "EdDSA", "rs256", ""}) {
    EXPECT_EQ(check(token({{"alg", alg}, {"kid", "r1"}}, claims(), rsa1_.get())).reason, "unsupported alg");
  }
  EXPECT_EQ(check(token({{"kid", "r1"}}, claims(), rsa1_.get())).reason, "missing alg");
  EXPECT_EQ(check(token({{"alg", 256}, {"kid", "r1"}}, claims(), rsa1_.get())).reason, "missing alg");
  json crit = rs("r1");
  crit["crit"] = {"exp"};
  EXPECT_EQ(check(token(crit, claims(), rsa1_.get())).reason, "crit not supported");
}

TEST_F(JwtTest, AlgMustMatchTheKeyType) {
  // An ES256 token naming an RSA key, and the reverse, even when signed by that key.
  EXPECT_EQ(check(token(es("r1"), claims(), ec1_.get())).reason, "alg does not match key");
  EXPECT_EQ(check(token(rs("e1"), claims(), rsa1_.get())).reason, "alg does not match key");
  // A JWK with "alg" for the other key type is skipped, never used with the wrong algorithm.
  json k = jwkOf(rsa1_.get(), "r1");
  k["alg"] = "ES256";
  json good = jwkOf(ec1_.get(), "e1");
  EXPECT_EQ(jwksOf(json::array({k, good})).size(), 1u);
}

TEST_F(JwtTest, KidSelectsTheKey) {
  Jwks two = jwksOf(json::array({jwkOf(rsa1_.get(), "r1"), jwkOf(rsa2_.get(), "r2")}));
  EXPECT_TRUE(verifyJwt(token(rs("r1"), claims(), rsa1_.get()), two, {}, kNow).ok);
  EXPECT_TRUE(verifyJwt(token(rs("r2"), claims(), rsa2_.get()), two, {}, kNow).ok);
  EXPECT_EQ(verifyJwt(token(rs("r1"), claims(), rsa2_.get()), two, {}, kNow).reason, "bad signature");
  EXPECT_EQ(verifyJwt(token(rs("r3"), claims(), rsa1_.get()), two, {}, kNow).reason, "unknown kid");
  EXPECT_EQ(verifyJwt(token({{"alg", "RS256"}}, claims(), rsa1_.get()), two, {}, kNow).reason,
            "no kid and no default key");
  EXPECT_EQ(verifyJwt(token({{"alg", "RS256"}, {"kid", 1}}, claims(), rsa1_.get()), two, {}, kNow).reason,
            "bad kid");
}

TEST_F(JwtTest, KeysWithoutKid) {
  // The only key, without kid: serves tokens with or without kid.
  Jwks lone = jwksOf(json::array({jwkOf(ec1_.get(), "")}));
  EXPECT_TRUE(verifyJwt(token(es("anything"), claims(), ec1_.get()), lone, {}, kNow).ok);
  EXPECT_TRUE(verifyJwt(token({{"alg", "ES256"}}, claims(), ec1_.get()), lone, {}, kNow).ok);
  // The only key, with a kid: serves kid-less tokens, refuses another kid.
  Jwks named = jwksOf(json::array({jwkOf(ec1_.get(), "e1")}));
  EXPECT_TRUE(verifyJwt(token({{"alg", "ES256"}}, claims(), ec1_.get()), named, {}, kNow).ok);
  EXPECT_EQ(verifyJwt(token(es("e9"), claims(), ec1_.get()), named, {}, kNow).reason, "unknown kid");
  // Among several keys, a kid-less token is matched against the kid-less ones only.
  Jwks mixed = jwksOf(json::array({jwkOf(rsa1_.get(), "r1"), jwkOf(rsa2_.get(), "")}));
  EXPECT_TRUE(verifyJwt(token({{"alg", "RS256"}}, claims(), rsa2_.get()), mixed, {}, kNow).ok);
  EXPECT_EQ(verifyJwt(token({{"alg", "RS256"}}, claims(), rsa1_.get()), mixed, {}, kNow).reason,
            "bad signature");
  EXPECT_EQ(verifyJwt(token(rs("r2"), claims(), rsa2_.get()), mixed, {}, kNow).reason, "unknown kid");
}

TEST_F(JwtTest, EmbeddedKeysInTheHeaderAreIgnored) {
  // The attacker signs with its own key and ships it in "jwk" (CVE-2018-0114 style).
  json header = rs("attacker");
  header["jwk"] = jwkOf(rsa2_.get(), "attacker");
  header["jku"] = "https://evil.test/jwks.json";
  EXPECT_EQ(check(token(header, claims(), rsa2_.get())).reason, "unknown kid");
}

TEST_F(JwtTest, AnEmptyKeySetRefusesEverything) {
  EXPECT_EQ(Jwks().size(), 0u);
  EXPECT_EQ(verifyJwt(token(rs("r1"), claims(), rsa1_.get()), Jwks(), {}, kNow).reason, "unknown kid");
}

// ---- time claims ------------------------------------------------------------------------------

TEST_F(JwtTest, ExpiryWithLeewayBoundaries) {
  auto at = [&](json exp, std::int64_t leeway) {
    json p = claims();
    p["exp"] = exp;
    p.erase("iat");
    return verifyJwt(token(rs("r1"), p, rsa1_.get()), keys_, JwtPolicy{"", {}, leeway}, kNow);
  };
  EXPECT_TRUE(at(kNow - 59, 60).ok);
  EXPECT_EQ(at(kNow - 60, 60).reason, "expired");
  EXPECT_TRUE(at(kNow + 1, 0).ok);
  EXPECT_EQ(at(kNow, 0).reason, "expired");
  EXPECT_EQ(at(kNow, -100).reason, "expired");  // a negative leeway counts as 0
  EXPECT_TRUE(at(kNow + 0.5, 0).ok);            // NumericDate may be a decimal
  EXPECT_EQ(at(kNow - 0.5, 0).reason, "expired");
  EXPECT_TRUE(at(1e300, 60).ok);  // huge values saturate, never overflow
  EXPECT_TRUE(at(json(std::uint64_t{18446744073709551615u}), 60).ok);
  EXPECT_TRUE(at(json(std::numeric_limits<std::int64_t>::max()), std::numeric_limits<std::int64_t>::max()).ok);
  EXPECT_EQ(at(-1e300, std::numeric_limits<std::int64_t>::max()).reason, "expired");
  EXPECT_EQ(at(json(std::numeric_limits<std::int64_t>::min()), 60).reason, "expired");
  EXPECT_EQ(at("1900000000", 60).reason, "bad exp");
  EXPECT_EQ(at(nullptr, 60).reason, "bad exp");
  EXPECT_EQ(at(true, 60).reason, "bad exp");
}

TEST_F(JwtTest, ExpIsRequired) {
  json p = claims();
  p.erase("exp");
  EXPECT_EQ(check(token(rs("r1"), p, rsa1_.get())).reason, "missing exp");
}

TEST_F(JwtTest, NotBeforeAndIssuedAtWithLeeway) {
  auto with = [&](const char* name, json value) {
    json p = claims();
    p[name] = value;
    return check(token(rs("r1"), p, rsa1_.get()), JwtPolicy{"", {}, 60});
  };
  EXPECT_TRUE(with("nbf", kNow + 60).ok);
  EXPECT_EQ(with("nbf", kNow + 61).reason, "not yet valid");
  EXPECT_EQ(with("nbf", kNow + 60.5).reason, "not yet valid");
  EXPECT_TRUE(with("nbf", kNow + 59.5).ok);
  EXPECT_EQ(with("nbf", 1e300).reason, "not yet valid");
  EXPECT_EQ(with("nbf", "soon").reason, "bad nbf");
  EXPECT_TRUE(with("iat", kNow + 60).ok);
  EXPECT_EQ(with("iat", kNow + 61).reason, "issued in the future");
  EXPECT_EQ(with("iat", kNow + 60.25).reason, "issued in the future");
  EXPECT_EQ(with("iat", json::array()).reason, "bad iat");
  EXPECT_TRUE(with("iat", -1e300).ok);
}

// ---- issuer and audience ----------------------------------------------------------------------

TEST_F(JwtTest, IssuerMustMatchWhenConfigured) {
  JwtPolicy policy{"https://issuer.test", {}, 60};
  json p = claims();
  EXPECT_TRUE(check(token(rs("r1"), p, rsa1_.get()), policy).ok);
  p["iss"] = "https://issuer.test/";
  EXPECT_EQ(check(token(rs("r1"), p, rsa1_.get()), policy).reason, "iss mismatch");
  p["iss"] = json::array({"https://issuer.test"});
  EXPECT_EQ(check(token(rs("r1"), p, rsa1_.get()), policy).reason, "iss mismatch");
  p.erase("iss");
  EXPECT_EQ(check(token(rs("r1"), p, rsa1_.get()), policy).reason, "missing iss");
  EXPECT_TRUE(check(token(rs("r1"), p, rsa1_.get()), JwtPolicy{}).ok);  // not configured
}

TEST_F(JwtTest, AudienceStringOrArray) {
  JwtPolicy policy{"", {"api", "admin"}, 60};
  auto with = [&](json aud) {
    json p = claims();
    p["aud"] = aud;
    return check(token(es("e1"), p, ec1_.get()), policy);
  };
  EXPECT_TRUE(with("api").ok);
  EXPECT_TRUE(with("admin").ok);
  EXPECT_TRUE(with(json::array({"other", "admin"})).ok);
  EXPECT_EQ(with("API").reason, "aud mismatch");
  EXPECT_EQ(with(json::array({"other", "x"})).reason, "aud mismatch");
  EXPECT_EQ(with(json::array()).reason, "aud mismatch");
  EXPECT_EQ(with(json::array({1, json::object({{"aud", "api"}}), json::array({"api"})})).reason,
            "aud mismatch");
  EXPECT_EQ(with(json::object({{"api", true}})).reason, "aud mismatch");
  json p = claims();
  p.erase("aud");
  EXPECT_EQ(check(token(es("e1"), p, ec1_.get()), policy).reason, "missing aud");
}

// ---- claims -----------------------------------------------------------------------------------

TEST_F(JwtTest, ClaimsAreHandedOnAsStrings) {
  json p = claims();
  p["scope"] = "read write";
  p["n"] = 42;
  p["neg"] = -7;
  p["ratio"] = 1.5;
  p["admin"] = true;
  p["off"] = false;
  p["none"] = nullptr;
  p["groups"] = json::array({"a", "b"});
  p["addr"] = json::object({{"city", "Zürich"}});
  auto r = check(token(rs("r2"), p, rsa2_.get()));
  ASSERT_TRUE(r.ok) << r.reason;
  EXPECT_EQ(r.claims.at("scope"), "read write");
  EXPECT_EQ(r.claims.at("n"), "42");
  EXPECT_EQ(r.claims.at("neg"), "-7");
  EXPECT_EQ(r.claims.at("ratio"), "1.5");
  EXPECT_EQ(r.claims.at("admin"), "true");
  EXPECT_EQ(r.claims.at("off"), "false");
  EXPECT_EQ(r.claims.at("none"), "null");
  EXPECT_EQ(r.claims.at("groups"), R"(["a","b"])");
  EXPECT_EQ(r.claims.at("addr"), R"({"city":"Zürich"})");
  EXPECT_EQ(r.claims.at("exp"), std::to_string(kNow + 300));
  EXPECT_EQ(r.claims.size(), p.size());
  EXPECT_EQ(json::parse(r.claims_json), p);
}

TEST_F(JwtTest, DuplicateClaimsKeepTheLastValue) {
  const std::string payload =
      R"({"exp":1,"sub":"a","exp":)" + std::to_string(kNow + 100) + R"(,"sub":"b"})";
  auto r = check(token(rs("r1"), payload, rsa1_.get()));
  ASSERT_TRUE(r.ok) << r.reason;
  EXPECT_EQ(r.claims.at("sub"), "b");
}

// ---- hostile input ----------------------------------------------------------------------------

TEST_F(JwtTest, MalformedInputsAreRefusedWithAReason) {
  const std::string good = token(rs("r1"), claims(), rsa1_.get());
  const std::string deep(2000, '[');
  struct Case {
    std::string name, token, reason;  // reason "" = any reason
  };
  const std::vector<Case> cases = {
      {"empty", "", "malformed token"},
      {"one dot", "a.b", "malformed token"},
      {"three dots", "a.b.c.d", "malformed token"},
      {"four parts of a good token", good + ".x", "malformed token"},
      {"only dots", "..", "malformed token"},
      {"empty header", ".b.c", "malformed token"},
      {"empty payload", "a..c", "malformed token"},
      {"not base64url", "!!!.b.c", "bad header encoding"},
      {"standard base64 alphabet", "a+/b.b.c", "bad header encoding"},
      {"padded header", b64url(rs("r1").dump()) + "=.b.c", "bad header encoding"},
      {"impossible length", "abcde.b.c", "bad header encoding"},
      {"header not JSON", b64url("{alg:RS256}") + ".b.c", "header not a JSON object"},
      {"header an array", b64url(R"(["RS256"])") + ".b.c", "header not a JSON object"},
      {"header a string", b64url(R"("RS256")") + ".b.c", "header not a JSON object"},
      {"header nested deep", b64url(R"({"alg":"RS256","x":)" + deep) + ".b.c", "header not a JSON object"},
      {"header with NUL", b64url(std::string("{\"alg\":\"RS256\"}\0", 16)) + ".b.c", "header not a JSON object"},
      {"empty signature", good.substr(0, good.rfind('.') + 1), "bad signature encoding"},
      {"bad signature encoding", good.substr(0, good.rfind('.') + 1) + "*", "bad signature encoding"},
      {"whitespace inside", good.substr(0, 10) + " " + good.substr(10), ""},
      {"huge", std::string(1 << 20, 'a'), "token too long"},
      {"huge with dots", std::string(1 << 20, '.'), "token too long"},
      {"just over the limit", good + std::string(kMaxJwtBytes + 1 - good.size(), 'A'), "token too long"},
      {"payload an array", token(rs("r1"), std::string(R"([{"exp":1900000000}])"), rsa1_.get()),
       "payload not a JSON object"},
      {"payload not JSON", token(rs("r1"), std::string("exp=1900000000"), rsa1_.get()),
       "payload not a JSON object"},
      {"payload empty", token(rs("r1"), std::string(), rsa1_.get()), "malformed token"},
      {"payload nested deep",
       token(rs("r1"), R"({"exp":1900000000,"x":)" + deep + std::string(2000, ']') + "}", rsa1_.get()),
       "payload not a JSON object"},
      {"payload with a number overflow", token(rs("r1"), std::string(R"({"exp":1e999})"), rsa1_.get()),
       "payload not a JSON object"},
      {"payload invalid UTF-8", token(rs("r1"), std::string("{\"exp\":1900000000,\"s\":\"\xff\"}"), rsa1_.get()),
       "payload not a JSON object"},
  };
  for (const auto& c : cases) {
    JwtResult r;
    ASSERT_NO_THROW(r = check(c.token)) << c.name;
    EXPECT_FALSE(r.ok) << c.name;
    EXPECT_FALSE(r.reason.empty()) << c.name;
    if (!c.reason.empty()) {
      EXPECT_EQ(r.reason, c.reason) << c.name;
    }
    EXPECT_TRUE(r.claims.empty() && r.claims_json.empty()) << c.name;
  }
}

TEST_F(JwtTest, EveryTruncationOrOneCharacterChangeOfAGoodTokenIsRefused) {
  for (const std::string& good : {token(es("e1"), claims(), ec1_.get()), token(rs("r1"), claims(), rsa1_.get())}) {
    ASSERT_TRUE(check(good).ok);
    for (std::size_t n = 0; n < good.size(); ++n) {
      EXPECT_FALSE(check(good.substr(0, n)).ok) << n;
      for (char c : {'.', 'A', 'f', '_', '=', '\0', '\xff'}) {
        if (good[n] == c) continue;
        std::string changed = good;
        changed[n] = c;
        EXPECT_FALSE(check(changed).ok) << n << " " << c;
      }
    }
  }
}

TEST_F(JwtTest, ConcurrentVerificationWithOneSharedKeySet) {
  const std::string rs_token = token(rs("r1"), claims(), rsa1_.get());
  const std::string es_token = token(es("e2"), claims(), ec2_.get());
  const std::string bad = token(es("e2"), claims(), ec1_.get());
  const Jwks shared = keys_;  // copies share the keys
  std::vector<std::thread> threads;
  std::vector<int> passed(4, 0);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 25; ++i) {
        passed[t] += verifyJwt(rs_token, shared, {}, kNow).ok;
        passed[t] += verifyJwt(es_token, shared, {}, kNow).ok;
        passed[t] += !verifyJwt(bad, shared, {}, kNow).ok;
      }
    });
  }
  for (auto& th : threads) th.join();
  for (int t = 0; t < 4; ++t) EXPECT_EQ(passed[t], 75) << t;
}

// ---- bearerToken ------------------------------------------------------------------------------

TEST(JwtBearerTokenTest, ExtractsTheToken) {
  EXPECT_EQ(bearerToken("Bearer abc.def.ghi"), "abc.def.ghi");
  EXPECT_EQ(bearerToken("bearer abc"), "abc");
  EXPECT_EQ(bearerToken("BEARER    abc  "), "abc");
  EXPECT_EQ(bearerToken("BeArEr abc\t"), "abc");
  EXPECT_FALSE(bearerToken(""));
  EXPECT_FALSE(bearerToken("Bearer"));
  EXPECT_FALSE(bearerToken("Bearer "));
  EXPECT_FALSE(bearerToken("Bearer    "));
  EXPECT_FALSE(bearerToken("Bearerabc"));
  EXPECT_FALSE(bearerToken("Bearer\tabc"));
  EXPECT_FALSE(bearerToken("Basic dXNlcjpwYXNz"));
  EXPECT_FALSE(bearerToken("Bearer abc def"));
  EXPECT_FALSE(bearerToken(" Bearer abc"));
  EXPECT_FALSE(bearerToken("abc.def.ghi"));
}

// ---- Jwks -------------------------------------------------------------------------------------

TEST(JwksBase64UrlTest, StrictDecoding) {
  EXPECT_EQ(base64UrlDecode(""), "");
  EXPECT_EQ(base64UrlDecode("Zg"), "f");
  EXPECT_EQ(base64UrlDecode("Zm8"), "fo");
  EXPECT_EQ(base64UrlDecode("Zm9v"), "foo");
  EXPECT_EQ(base64UrlDecode("Zm9vYmFy"), "foobar");
  EXPECT_EQ(base64UrlDecode("-_8"), "\xfb\xff");
  EXPECT_FALSE(base64UrlDecode("Zg=="));
  EXPECT_FALSE(base64UrlDecode("+/8"));
  EXPECT_FALSE(base64UrlDecode("Zm 9v"));
  EXPECT_FALSE(base64UrlDecode("Z"));
  EXPECT_FALSE(base64UrlDecode("Zh"));  // non-zero unused bits: not the canonical text of "f"
}

class JwksTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    rsa_.reset(EVP_RSA_gen(2048));
    ec_.reset(EVP_EC_gen("P-256"));
    ASSERT_TRUE(rsa_ && ec_);
  }
  static void TearDownTestSuite() {
    rsa_.reset();
    ec_.reset();
  }
  static std::string parseError(const std::string& text) {
    std::string error;
    auto set = Jwks::parse(text, error);
    EXPECT_FALSE(set) << text;
    return error;
  }
  static std::string withKeys(const std::vector<json>& keys) { return json{{"keys", keys}}.dump(); }

  static Pkey rsa_, ec_;
};

Pkey JwksTest::rsa_, JwksTest::ec_;

TEST_F(JwksTest, ParsesRsaAndEcKeys) {
  json rsa = jwkOf(rsa_.get(), "r");
  rsa["use"] = "sig";
  rsa["alg"] = "RS256";
  json ec = jwkOf(ec_.get(), "e");
  ec["key_ops"] = {"verify"};
  ec["alg"] = "ES256";
  std::string error;
  auto set = Jwks::parse(withKeys({rsa, ec}), error);
  ASSERT_TRUE(set) << error;
  EXPECT_EQ(set->size(), 2u);
  const Jwks copy = *set;  // cheap: shares the keys
  EXPECT_EQ(copy.size(), 2u);
}

TEST_F(JwksTest, SkipsKeysForOtherUses) {
  auto with = [](json k, const char* member, json value) {
    k[member] = value;
    return k;
  };
  const json rsa = jwkOf(rsa_.get(), "r");
  const json ec = jwkOf(ec_.get(), "e");
  std::vector<json> keys = {with(rsa, "use", "enc"),
               with(rsa, "alg", "RS512"),
               with(rsa, "alg", "PS256"),
               with(rsa, "key_ops", {"encrypt"}),
               with(ec, "crv", "P-384"),
               with(ec, "alg", "ES384"),
               json{{"kty", "oct"}, {"k", "c2VjcmV0"}},
               json{{"kty", "OKP"}, {"crv", "Ed25519"}, {"x", "AAAA"}},
               ec};
  std::string error;
  auto set = Jwks::parse(withKeys(keys), error);
  ASSERT_TRUE(set) << error;
  EXPECT_EQ(set->size(), 1u);
  keys.pop_back();
  EXPECT_EQ(parseError(withKeys(keys)), "no usable key");
}

TEST_F(JwksTest, ErrorsAreShortAndPrecise) {
  const json rsa = jwkOf(rsa_.get(), "r");
  const json ec = jwkOf(ec_.get(), "e");
  EXPECT_TRUE(parseError("{\"keys\": [").starts_with("not JSON: parse error")) << parseError("{\"keys\": [");
  EXPECT_TRUE(parseError("").starts_with("not JSON: "));
  EXPECT_EQ(parseError(std::string("{\"keys\":[]}\0{", 13)), "not JSON: contains a NUL byte");
  EXPECT_EQ(parseError("[]"), "not a JSON object");
  EXPECT_EQ(parseError("{}"), "no \"keys\" member");
  EXPECT_EQ(parseError(R"({"keys":{}})"), "\"keys\" is not an array");
  EXPECT_EQ(parseError(R"({"keys":[]})"), "no usable key");

  json bad_n = rsa;
  bad_n["n"] = "not*base64";
  EXPECT_EQ(parseError(withKeys({ec, rsa, bad_n})), "keys[2].n: not base64url");
  json no_e = rsa;
  no_e.erase("e");
  EXPECT_EQ(parseError(withKeys({no_e})), "keys[0].e: missing");
  json even_e = rsa;
  even_e["e"] = b64url(std::string_view("\x01\x00\x00", 3));
  EXPECT_EQ(parseError(withKeys({even_e})), "keys[0].e: not a valid RSA exponent");
  json n_number = rsa;
  n_number["n"] = 12345;
  EXPECT_EQ(parseError(withKeys({n_number})), "keys[0].n: not a string");
  json short_x = ec;
  short_x["x"] = b64url(std::string(31, '\x01'));
  EXPECT_EQ(parseError(withKeys({short_x})), "keys[0].x: not 32 bytes");
  json off_curve = ec;
  off_curve["y"] = b64url(std::string(32, '\x01'));
  EXPECT_EQ(parseError(withKeys({off_curve})), "keys[0]: not a point on P-256");
  json no_crv = ec;
  no_crv.erase("crv");
  EXPECT_EQ(parseError(withKeys({no_crv})), "keys[0].crv: missing");
  json kid_number = ec;
  kid_number["kid"] = 7;
  EXPECT_EQ(parseError(withKeys({kid_number})), "keys[0].kid: not a string");
  EXPECT_EQ(parseError(withKeys({rsa, "key"})), "keys[1]: not an object");
  EXPECT_EQ(parseError(withKeys({json{{"n", "AQAB"}}})), "keys[0].kty: missing");

  Pkey small(EVP_RSA_gen(1024));
  ASSERT_TRUE(small);
  EXPECT_EQ(parseError(withKeys({jwkOf(small.get(), "s")})),
            "keys[0].n: RSA modulus of 1024 bits (2048 at least)");
}

TEST_F(JwksTest, ToleratesPaddedKeyMembers) {
  json rsa = jwkOf(rsa_.get(), "r");
  rsa["e"] = "AQAB";
  std::string error;
  ASSERT_TRUE(Jwks::parse(withKeys({rsa}), error)) << error;
  json ec = jwkOf(ec_.get(), "e");
  ec["x"] = ec["x"].get<std::string>() + "=";  // 32 bytes: 43 characters + one "="
  auto set = Jwks::parse(withKeys({ec}), error);
  ASSERT_TRUE(set) << error;
  EXPECT_EQ(set->size(), 1u);
}

TEST_F(JwksTest, LoadFile) {
  const std::string path = ::testing::TempDir() + "portico_jwks_test_" + std::to_string(::getpid()) + ".json";
  {
    std::ofstream out(path, std::ios::binary);
    out << withKeys({jwkOf(rsa_.get(), "r"), jwkOf(ec_.get(), "e")});
  }
  std::string error;
  auto set = Jwks::loadFile(path, error);
  ASSERT_TRUE(set) << error;
  EXPECT_EQ(set->size(), 2u);
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << std::string((1 << 20) + 1, ' ');
  }
  EXPECT_FALSE(Jwks::loadFile(path, error));
  EXPECT_EQ(error, path + ": larger than 1 MiB");
  std::remove(path.c_str());
  EXPECT_FALSE(Jwks::loadFile(path, error));
  EXPECT_EQ(error, "cannot open " + path + ": No such file or directory");
}

}  // namespace
}  // namespace portico::proxy
