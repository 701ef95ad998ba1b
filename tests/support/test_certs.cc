#include "tests/support/test_certs.h"

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <stdexcept>

namespace portico::test {
namespace {

EVP_PKEY* newKey() {
  EVP_PKEY* key = EVP_EC_gen("P-256");
  if (key == nullptr) throw std::runtime_error("EVP_EC_gen failed");
  return key;
}

void addExt(X509* cert, X509* issuer, int nid, const std::string& value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str());
  if (ext == nullptr) throw std::runtime_error("bad extension " + value);
  X509_add_ext(cert, ext, -1);
  X509_EXTENSION_free(ext);
}

X509* newCert(EVP_PKEY* key, const std::string& cn, const std::vector<std::string>& names,
              long not_before_s, long not_after_s, X509* issuer, EVP_PKEY* issuer_key, bool ca) {
  X509* x = X509_new();
  X509_set_version(x, 2);
  static long serial = 1;
  ASN1_INTEGER_set(X509_get_serialNumber(x), ++serial);
  X509_gmtime_adj(X509_getm_notBefore(x), not_before_s);
  X509_gmtime_adj(X509_getm_notAfter(x), not_after_s);
  X509_set_pubkey(x, key);
  X509_NAME* name = X509_get_subject_name(x);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1, 0);
  X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : name);
  if (ca) {
    addExt(x, issuer ? issuer : x, NID_basic_constraints, "critical,CA:TRUE");
    addExt(x, issuer ? issuer : x, NID_key_usage, "critical,keyCertSign,cRLSign");
  } else if (!names.empty()) {
    std::string san;
    for (const std::string& n : names) san += (san.empty() ? "DNS:" : ",DNS:") + n;
    addExt(x, issuer ? issuer : x, NID_subject_alt_name, san);
  }
  if (X509_sign(x, issuer_key ? issuer_key : key, EVP_sha256()) == 0) {
    X509_free(x);
    throw std::runtime_error("X509_sign failed");
  }
  return x;
}

void writePem(const std::string& path, X509* cert, X509* extra, EVP_PKEY* key) {
  FILE* f = std::fopen(path.c_str(), "w");
  if (f == nullptr) throw std::runtime_error("cannot write " + path);
  if (cert) PEM_write_X509(f, cert);
  if (extra) PEM_write_X509(f, extra);
  if (key) PEM_write_PrivateKey(f, key, nullptr, nullptr, 0, nullptr, nullptr);
  std::fclose(f);
}

}  // namespace

TestCerts::TestCerts() {
  std::string tmpl = (std::filesystem::temp_directory_path() / "portico-certs-XXXXXX").string();
  if (mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
  dir_ = tmpl;
}

TestCerts::~TestCerts() {
  EVP_PKEY_free(static_cast<EVP_PKEY*>(ca_key_));
  X509_free(static_cast<X509*>(ca_cert_));
  std::error_code ec;
  std::filesystem::remove_all(dir_, ec);
}

const TestCerts::Files& TestCerts::ca() {
  if (ca_cert_ == nullptr) {
    EVP_PKEY* key = newKey();
    X509* cert = newCert(key, "Portico Test CA", {}, -60, 86400, nullptr, nullptr, true);
    ca_key_ = key;
    ca_cert_ = cert;
    ca_.cert = dir_ + "/ca.crt";
    ca_.key = dir_ + "/ca.key";
    writePem(ca_.cert, cert, nullptr, nullptr);
    writePem(ca_.key, nullptr, nullptr, key);
  }
  return ca_;
}

TestCerts::Files TestCerts::make(const std::string& stem, const std::vector<std::string>& names,
                                 long not_before_s, long not_after_s, bool signed_by_ca) {
  if (signed_by_ca) ca();
  EVP_PKEY* key = newKey();
  X509* issuer = signed_by_ca ? static_cast<X509*>(ca_cert_) : nullptr;
  X509* cert = newCert(key, names.empty() ? stem : names.front(), names, not_before_s, not_after_s,
                       issuer, signed_by_ca ? static_cast<EVP_PKEY*>(ca_key_) : nullptr, false);
  Files f{dir_ + "/" + stem + ".crt", dir_ + "/" + stem + ".key"};
  writePem(f.cert, cert, issuer, nullptr);
  writePem(f.key, nullptr, nullptr, key);
  X509_free(cert);
  EVP_PKEY_free(key);
  return f;
}

std::string TestCerts::writeFile(const std::string& name, const std::string& text) const {
  std::string path = dir_ + "/" + name;
  std::ofstream(path) << text;
  return path;
}

}  // namespace portico::test
