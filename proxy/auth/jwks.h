#pragma once
// JSON Web Key Sets (RFC 7517) for the JWT authorizer of API stages: the public keys that
// token signatures are checked against. A Jwks is built once, when the configuration is loaded
// (or by `portico -t`), and is immutable from then on: copies share one key set, and every
// worker thread may verify with it concurrently (the EVP_PKEYs are only ever used read-only,
// which OpenSSL 3 allows from any number of threads).
//
// Accepted keys (RFC 7518 §6): kty "RSA" with n and e, and kty "EC" with crv "P-256", x and y
// (each exactly 32 bytes, the point on the curve). All numbers are base64url, unpadded (a
// trailing "=" is tolerated). A key whose "use" is not "sig", whose "alg" is not RS256 (RSA) or
// ES256 (EC), or whose kty/crv is something else is skipped, so a set published for several
// purposes loads; a usable-looking key that is broken (bad base64url, an RSA modulus under 2048
// bits, a point off the curve) is an error, never silently dropped.
//
// OpenSSL stays behind this header (style.md G7): jwks.cc is the one place of the authorizer
// that includes it, for key import and signature verification both.
#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace portico::proxy {

// Strict base64url (RFC 4648 §5) without padding: the alphabet A-Z a-z 0-9 - _ only, no
// whitespace, no "=", and the unused low bits of the last character zero (one text per value).
// nullopt for anything else. Pure.
std::optional<std::string> base64UrlDecode(std::string_view text);

// The JWS algorithms the authorizer verifies; each goes with one key type.
enum class JwsAlg { RS256, ES256 };

// Why a signature check did or did not pass (see Jwks::verify).
enum class KeyVerdict {
  Valid,           // a selected key verified the signature
  BadSignature,    // key(s) found, none verified it (wrong key, tampered, bad length)
  UnknownKid,      // no key with the token's kid (nor an only, kid-less key)
  NoKidNoKey,      // the token has no kid and the set has neither kid-less keys nor one key
  AlgKeyMismatch,  // the key(s) selected by kid are of the other type than alg needs
};
const char* toString(KeyVerdict v);

class Jwks {
 public:
  // An empty set: verifies nothing (every token is refused). For holders that are filled later.
  Jwks();

  // Parses a JWKS document {"keys":[...]}. On failure returns nullopt and sets `error` to one
  // short line naming the place ("keys[2].n: not base64url", "keys[0].x: not 32 bytes",
  // "no usable key", "not JSON: ..."); `portico -t` prints it after the file name.
  static std::optional<Jwks> parse(std::string_view json, std::string& error);
  // Reads `path` (at most 1 MiB) and parses it; read errors are reported the same way.
  static std::optional<Jwks> loadFile(const std::string& path, std::string& error);

  // The number of usable keys held.
  std::size_t size() const;

  // Checks `signature` (the decoded third part of a compact JWS) over `signing_input`
  // ("<header>.<payload>" exactly as received) for `alg`. Key selection:
  //   - the token has a kid: the keys with that kid; when there are none, the only key of the
  //     set if it has no kid; otherwise UnknownKid;
  //   - the token has no kid: the kid-less keys; when there are none, the only key of the set;
  //     otherwise NoKidNoKey.
  // Of the selected keys only those of alg's type are tried (RS256: RSA, PKCS#1 v1.5 with
  // SHA-256, signature exactly the modulus length; ES256: P-256 with SHA-256, signature the
  // 64-byte R||S of RFC 7518 §3.4). Any thread, concurrently; never throws; leaves the calling
  // thread's OpenSSL error queue empty (the TLS code of the same worker reads it).
  KeyVerdict verify(JwsAlg alg, std::optional<std::string_view> kid, std::string_view signing_input,
                    std::string_view signature) const;

  struct KeySet;  // defined in jwks.cc (holds the EVP_PKEYs)

 private:
  explicit Jwks(std::shared_ptr<const KeySet> keys);
  std::shared_ptr<const KeySet> keys_;
};

}  // namespace portico::proxy
