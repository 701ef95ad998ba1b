// Component tests for the `s3` origin: the fixture plays the object store and re-computes the
// AWS Signature V4 of every request it receives (OpenSSL HMAC), so a request libcurl signs
// differently from what S3 would verify fails here.
#include "origin/s3_origin.h"

#include <gtest/gtest.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>
#include <uv.h>

#include <algorithm>
#include <cstdlib>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "origin/curl_multi.h"
#include "origin/origin_factory.h"
#include "tests/component/origin/origin_test_sink.h"
#include "tests/support/fixture_server.h"
#include "tests/support/loop_pump.h"

namespace portico::origin {
namespace {

using test::FixtureRequest;
using test::FixtureResponder;
using test::FixtureServer;
using test::pumpUntil;
using test_support::makeRequest;
using test_support::RecordingSink;
using test_support::startFetch;

constexpr const char* kKeyEnv = "PORTICO_TEST_S3_ACCESS_KEY";
constexpr const char* kSecretEnv = "PORTICO_TEST_S3_SECRET_KEY";
constexpr const char* kKey = "AKIDPORTICOTEST";
constexpr const char* kSecret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";

std::string hex(const unsigned char* p, std::size_t n) {
  static const char* digits = "0123456789abcdef";
  std::string out;
  for (std::size_t i = 0; i < n; ++i) {
    out += digits[p[i] >> 4];
    out += digits[p[i] & 15];
  }
  return out;
}

std::string sha256Hex(const std::string& s) {
  unsigned char md[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(s.data()), s.size(), md);
  return hex(md, sizeof(md));
}

std::string hmac(const std::string& key, const std::string& data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), md, &len);
  return std::string(reinterpret_cast<char*>(md), len);
}

std::string field(const std::string& auth, const std::string& name) {
  std::size_t p = auth.find(name + "=");
  if (p == std::string::npos) return {};
  p += name.size() + 1;
  std::size_t e = auth.find(',', p);
  return auth.substr(p, e == std::string::npos ? std::string::npos : e - p);
}

// Re-derives the SigV4 signature S3 would expect for `req` (path-style, no query) and returns
// "" if it matches the one sent, else a description of the mismatch.
std::string verifySigV4(const FixtureRequest& req, const std::string& secret,
                        const std::string& region) {
  std::string auth(req.headers.get("Authorization").value_or(""));
  if (auth.rfind("AWS4-HMAC-SHA256 ", 0) != 0) return "no SigV4 Authorization: " + auth;
  std::string credential = field(auth, "Credential");
  std::string signed_headers = field(auth, "SignedHeaders");
  std::string signature = field(auth, "Signature");
  std::string scope = credential.substr(credential.find('/') + 1);  // date/region/s3/aws4_request
  std::string date = scope.substr(0, scope.find('/'));
  if (scope != date + "/" + region + "/s3/aws4_request") return "bad scope " + scope;

  std::string canonical_headers;
  std::stringstream names(signed_headers);
  for (std::string name; std::getline(names, name, ';');) {
    auto v = req.headers.get(name);
    if (!v) return "signed header missing: " + name + " (SignedHeaders=" + signed_headers + ")";
    canonical_headers += name + ":" + std::string(core::trimOws(*v)) + "\n";
  }
  std::string payload(req.headers.get("x-amz-content-sha256").value_or(""));
  std::string canonical = req.method + "\n" + req.target + "\n\n" + canonical_headers + "\n" +
                          signed_headers + "\n" + payload;
  std::string amz_date(req.headers.get("x-amz-date").value_or(""));
  std::string to_sign =
      "AWS4-HMAC-SHA256\n" + amz_date + "\n" + scope + "\n" + sha256Hex(canonical);
  std::string k = hmac("AWS4" + secret, date);
  k = hmac(k, region);
  k = hmac(k, "s3");
  k = hmac(k, "aws4_request");
  std::string mac = hmac(k, to_sign);
  std::string expected = hex(reinterpret_cast<const unsigned char*>(mac.data()), mac.size());
  return expected == signature ? "" : "signature mismatch for canonical request:\n" + canonical;
}

class S3OriginTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(uv_loop_init(&loop_), 0);
    multi_ = std::make_unique<CurlMulti>(&loop_);
    ::setenv(kKeyEnv, kKey, 1);
    ::setenv(kSecretEnv, kSecret, 1);
  }
  void TearDown() override {
    ::unsetenv(kKeyEnv);
    ::unsetenv(kSecretEnv);
    multi_.reset();
    test::expectLoopClean(&loop_);
  }
  conf::S3Origin config(const std::string& endpoint) {
    conf::S3Origin cfg;
    cfg.endpoint = endpoint;
    cfg.bucket = "site-bucket";
    cfg.region = "eu-west-3";
    cfg.access_key_env = kKeyEnv;
    cfg.secret_key_env = kSecretEnv;
    cfg.timeout_ms = 5000;
    return cfg;
  }
  bool waitDone(const RecordingSink& sink) {
    return pumpUntil(&loop_, [&] { return sink.dones > 0; });
  }

  uv_loop_t loop_{};
  std::unique_ptr<CurlMulti> multi_;
};

TEST_F(S3OriginTest, SignedGetOfTheObjectPath) {
  FixtureServer s3([](const FixtureRequest& req, FixtureResponder& r) {
    std::string problem = verifySigV4(req, kSecret, "eu-west-3");
    if (!problem.empty()) {
      r.reply(403, {{"X-Problem", "signature"}}, problem);
    } else {
      r.reply(200, {{"ETag", "\"abc\""}, {"Content-Type", "text/html"}}, "<h1>hi</h1>");
    }
  });
  S3OriginClient client(*multi_, config(s3.url()));
  EXPECT_TRUE(client.signs());
  auto req = makeRequest("GET", "/docs/index%20page.html", "list-type=2");
  req.head.headers.add("Range", "bytes=0-99");
  req.head.headers.add("If-None-Match", "\"old\"");
  req.head.headers.add("Cookie", "session=secret");
  req.head.headers.add("Authorization", "Bearer client-token");
  RecordingSink sink;
  auto f = startFetch(client, std::move(req), sink);
  ASSERT_TRUE(waitDone(sink));
  EXPECT_EQ(sink.error, FetchError::None);
  EXPECT_EQ(sink.head.status, 200) << sink.body;
  EXPECT_EQ(sink.body, "<h1>hi</h1>");

  auto reqs = s3.requests();
  ASSERT_EQ(reqs.size(), 1u);
  const auto& got = reqs[0];
  EXPECT_EQ(got.method, "GET");
  EXPECT_EQ(got.target, "/site-bucket/docs/index%20page.html");  // no query forwarded
  EXPECT_EQ(got.headers.get("x-amz-content-sha256").value_or(""),
            S3OriginClient::kEmptyPayloadSha256);
  EXPECT_TRUE(got.headers.has("x-amz-date"));
  std::string auth(got.headers.get("Authorization").value_or(""));
  EXPECT_NE(auth.find("Credential=AKIDPORTICOTEST/"), std::string::npos) << auth;
  EXPECT_NE(field(auth, "SignedHeaders").find("x-amz-content-sha256"), std::string::npos) << auth;
  EXPECT_EQ(got.headers.get("Range").value_or(""), "bytes=0-99");
  EXPECT_EQ(got.headers.get("If-None-Match").value_or(""), "\"old\"");
  EXPECT_FALSE(got.headers.has("Cookie"));
  EXPECT_EQ(verifySigV4(got, kSecret, "eu-west-3"), "");
}

TEST_F(S3OriginTest, HeadStaysHeadOtherMethodsReadAndErrorsPassThrough) {
  FixtureServer s3([](const FixtureRequest& req, FixtureResponder& r) {
    if (req.target == "/site-bucket/missing") {
      r.reply(404, {{"Content-Type", "application/xml"}}, "<Error><Code>NoSuchKey</Code></Error>");
    } else {
      r.reply(200, {{"Content-Length", "5"}}, "hello");
    }
  });
  S3OriginClient client(*multi_, config(s3.url() + "/"));
  RecordingSink head_sink;
  auto f1 = startFetch(client, makeRequest("HEAD", "/a.txt"), head_sink);
  ASSERT_TRUE(waitDone(head_sink));
  EXPECT_EQ(head_sink.head.status, 200);
  EXPECT_EQ(head_sink.body_calls, 0);

  auto post = makeRequest("POST", "/a.txt");
  post.has_body = true;
  RecordingSink post_sink;
  auto f2 = startFetch(client, std::move(post), post_sink);
  f2->sendBody("ignored");
  f2->endBody();
  ASSERT_TRUE(waitDone(post_sink));
  EXPECT_EQ(post_sink.body, "hello");

  RecordingSink missing;
  auto f3 = startFetch(client, makeRequest("GET", "/missing"), missing);
  ASSERT_TRUE(waitDone(missing));
  EXPECT_EQ(missing.error, FetchError::None);
  EXPECT_EQ(missing.head.status, 404);

  auto reqs = s3.requests();
  ASSERT_EQ(reqs.size(), 3u);
  EXPECT_EQ(reqs[0].method, "HEAD");
  EXPECT_EQ(reqs[1].method, "GET");
  EXPECT_TRUE(reqs[1].body.empty());
  for (const auto& r : reqs) EXPECT_EQ(verifySigV4(r, kSecret, "eu-west-3"), "") << r.target;
}

TEST_F(S3OriginTest, UnsignedWithoutCredentialsAndBuiltByTheFactory) {
  ::unsetenv(kSecretEnv);
  FixtureServer s3;
  conf::OriginConfig cfg{"assets", config(s3.url())};
  auto client = makeOriginClient(cfg, OriginContext{&loop_, multi_.get()});
  ASSERT_NE(dynamic_cast<S3OriginClient*>(client.get()), nullptr);
  EXPECT_FALSE(static_cast<S3OriginClient*>(client.get())->signs());
  RecordingSink sink;
  auto f = startFetch(*client, makeRequest("GET", "/public.txt"), sink);
  ASSERT_TRUE(waitDone(sink));
  EXPECT_EQ(sink.head.status, 200);
  ASSERT_EQ(s3.requestCount(), 1u);
  EXPECT_FALSE(s3.requests()[0].headers.has("Authorization"));
}

}  // namespace
}  // namespace portico::origin
