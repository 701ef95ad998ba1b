#pragma once
// Test certificates made at run time (never committed): EC P-256 keys and X.509 certificates,
// self-signed or signed by a test CA, written as PEM files into a temporary directory that is
// removed with the TestCerts object.
#include <string>
#include <vector>

namespace portico::test {

class TestCerts {
 public:
  TestCerts();   // creates the directory
  ~TestCerts();  // removes it
  TestCerts(const TestCerts&) = delete;
  TestCerts& operator=(const TestCerts&) = delete;

  struct Files {
    std::string cert;  // PEM: the certificate (then the issuer's, for `chain` ones)
    std::string key;   // PEM: its private key
  };
  // A certificate for `names` (SAN dNSNames; the first is also the CN), valid from
  // now + not_before_s to now + not_after_s. Self-signed unless `signed_by_ca`; then the file is
  // a chain: leaf, then the CA certificate (as an intermediate would be).
  Files make(const std::string& stem, const std::vector<std::string>& names,
             long not_before_s = -60, long not_after_s = 86400, bool signed_by_ca = false);
  // The CA (created on first use).
  const Files& ca();
  const std::string& dir() const { return dir_; }
  // Writes `text` to dir/name; returns the path.
  std::string writeFile(const std::string& name, const std::string& text) const;

 private:
  std::string dir_;
  Files ca_;
  void* ca_key_ = nullptr;   // EVP_PKEY*
  void* ca_cert_ = nullptr;  // X509*
};

}  // namespace portico::test
