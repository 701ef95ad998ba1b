// Edge compression policy: Accept-Encoding negotiation, compressible types, when compression
// applies, and the header edits a compressed representation needs. Pure functions, no I/O.
#include <gtest/gtest.h>

#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "proxy/compress/content_coding.h"
#include "proxy/core/http_message.h"

namespace portico::proxy {

// Readable failures: "Brotli" instead of a byte dump.
void PrintTo(ContentCoding c, std::ostream* os) { *os << codingToken(c); }

namespace {

TEST(ContentCoding, TokensAreTheRegisteredNames) {
  EXPECT_EQ(codingToken(ContentCoding::Identity), "identity");
  EXPECT_EQ(codingToken(ContentCoding::Gzip), "gzip");
  EXPECT_EQ(codingToken(ContentCoding::Brotli), "br");
}

// ---------------------------------------------------------------------------------------------
// negotiateCoding

struct NegotiationCase {
  const char* name;                           // gtest parameter name
  std::optional<std::string> accept_encoding;  // nullopt: no Accept-Encoding field
  ContentCoding expected;
};

void PrintTo(const NegotiationCase& c, std::ostream* os) {
  *os << (c.accept_encoding ? "\"" + *c.accept_encoding + "\"" : std::string("<absent>"));
}

class CodingNegotiation : public ::testing::TestWithParam<NegotiationCase> {};

TEST_P(CodingNegotiation, PicksExpectedCoding) {
  const NegotiationCase& c = GetParam();
  std::optional<std::string_view> field;
  if (c.accept_encoding) field = *c.accept_encoding;
  EXPECT_EQ(negotiateCoding(field), c.expected);
}

const std::vector<NegotiationCase> kNegotiationCases = {
    // Absent or empty: the client wants no content coding (RFC 9110 §12.5.3).
    {"Absent", std::nullopt, ContentCoding::Identity},
    {"Empty", "", ContentCoding::Identity},
    {"OnlyWhitespaceAndCommas", " , ,\t", ContentCoding::Identity},
    // Plain lists.
    {"Gzip", "gzip", ContentCoding::Gzip},
    {"Br", "br", ContentCoding::Brotli},
    {"BrowserDefault", "gzip, deflate, br, zstd", ContentCoding::Brotli},
    {"TieGoesToBr", "gzip;q=0.8, br;q=0.8", ContentCoding::Brotli},
    {"DeflateOnly", "deflate", ContentCoding::Identity},
    {"Identity", "identity", ContentCoding::Identity},
    // Weights.
    {"LowerBrLoses", "br;q=0.5, gzip", ContentCoding::Gzip},
    {"ThousandthDecides", "gzip;q=1.0, br;q=0.999", ContentCoding::Gzip},
    {"SmallestPositiveWeight", "br;q=0.001", ContentCoding::Brotli},
    {"GzipQZero", "gzip;q=0", ContentCoding::Identity},
    {"GzipQZeroWithDecimals", "gzip;q=0.000", ContentCoding::Identity},
    {"BrRefusedGzipAccepted", "br;q=0, gzip;q=0.1", ContentCoding::Gzip},
    {"UpperCaseQ", "gzip;Q=0", ContentCoding::Identity},
    {"WhitespaceAroundParams", "br ; q=0.2 ,gzip\t;\tq=0.3", ContentCoding::Gzip},
    {"IdentityWeightNotCompared", "identity;q=1, gzip;q=0.1", ContentCoding::Gzip},
    {"IdentityRefusedStillIdentity", "identity;q=0", ContentCoding::Identity},
    // "*" stands for every coding not listed.
    {"Star", "*", ContentCoding::Brotli},
    {"StarZeroThenGzip", "*;q=0, gzip", ContentCoding::Gzip},
    {"StarZeroAlone", "*;q=0", ContentCoding::Identity},
    {"StarHalfBrRefused", "*;q=0.5, br;q=0", ContentCoding::Gzip},
    {"GzipRefusedStarAccepted", "gzip;q=0, *", ContentCoding::Brotli},
    {"ListedBeatsStar", "*;q=1, br;q=0.2", ContentCoding::Gzip},
    // Case and aliases.
    {"UpperCaseGzip", "GZIP", ContentCoding::Gzip},
    {"MixedCaseBr", "Br", ContentCoding::Brotli},
    {"XGzip", "x-gzip", ContentCoding::Gzip},
    {"XGzipUpper", "X-GZIP;q=0.7, br;q=0.6", ContentCoding::Gzip},
    // Duplicates: the lowest weight counts.
    {"DuplicateLowestWins", "gzip, gzip;q=0", ContentCoding::Identity},
    {"AliasDuplicateLowestWins", "x-gzip;q=0, gzip", ContentCoding::Identity},
    // Malformed elements are ignored, the rest still counts; nothing throws.
    {"GarbageThenBr", ";;q=abc,br", ContentCoding::Brotli},
    {"QAboveOneIgnored", "br;q=1.5", ContentCoding::Identity},
    {"QAboveOneIgnoredGzipKept", "br;q=1.5, gzip", ContentCoding::Gzip},
    {"QOnePointOneIgnored", "br;q=1.001, gzip;q=0.1", ContentCoding::Gzip},
    {"FourDecimalsIgnored", "br;q=0.0001", ContentCoding::Identity},
    {"NegativeQIgnored", "gzip;q=-1", ContentCoding::Identity},
    {"EmptyQIgnored", "gzip;q=", ContentCoding::Identity},
    {"QuotedQIgnored", "gzip;q=\"0.5\"", ContentCoding::Identity},
    {"TwoQsIgnored", "br;q=0.5;q=0.6, gzip;q=0.1", ContentCoding::Gzip},
    {"ParamWithoutEqualsIgnored", "br;fast, gzip", ContentCoding::Gzip},
    {"NonTokenCodingIgnored", "g zip, b@r", ContentCoding::Identity},
    {"UnknownParamIgnoredElementKept", "br;level=11", ContentCoding::Brotli},
    {"TrailingSemicolonTolerated", "gzip;", ContentCoding::Gzip},
    {"ZeroQRefusesEvenWithGarbageNearby", "br;q=0,;,=,gzip;q=x", ContentCoding::Identity},
};

INSTANTIATE_TEST_SUITE_P(Rfc9110, CodingNegotiation, ::testing::ValuesIn(kNegotiationCases),
                         [](const auto& info) { return std::string(info.param.name); });

TEST(ContentCoding, NegotiationSurvivesHostileInput) {
  // Long, deeply separated, binary: must terminate and never pick an unlisted coding.
  std::string noise;
  for (int i = 0; i < 10000; ++i) noise += ";q=;,\x01\xff=,,";
  EXPECT_EQ(negotiateCoding(noise), ContentCoding::Identity);
  EXPECT_EQ(negotiateCoding(noise + "gzip"), ContentCoding::Gzip);
  EXPECT_EQ(negotiateCoding(std::string_view("br\0;q=0", 7)), ContentCoding::Identity);
}

// ---------------------------------------------------------------------------------------------
// isCompressibleType

TEST(ContentCoding, CompressibleTypes) {
  const std::vector<std::string> yes = {
      "text/html",
      "text/html; charset=utf-8",
      "TEXT/HTML;CHARSET=UTF-8",
      "  text/css  ",
      "text/plain",
      "text/csv",
      "text/javascript",
      "text/xml",
      "application/javascript",
      "application/x-javascript",
      "application/json",
      "application/json;charset=utf-8",
      "application/ld+json",
      "application/manifest+json; charset=utf-8",
      "application/problem+json",
      "application/xml",
      "application/rss+xml",
      "application/atom+xml",
      "application/xhtml+xml",
      "image/svg+xml",
      "image/svg+xml; charset=utf-8",
      "application/wasm",
      "font/ttf",
      "font/otf",
      "application/vnd.ms-fontobject",
      "image/x-icon",
      "image/vnd.microsoft.icon",
  };
  for (const std::string& t : yes) EXPECT_TRUE(isCompressibleType(t)) << t;

  const std::vector<std::string> no = {
      "",
      "text",
      "/html",
      "text/",
      "text/event-stream",
      "image/png",
      "image/jpeg",
      "image/webp",
      "video/mp4",
      "audio/mpeg",
      "font/woff",
      "font/woff2",
      "application/octet-stream",
      "application/gzip",
      "application/zip",
      "application/pdf",
      "application/+json",  // a suffix with no subtype name in front
      "application/json5",
      "multipart/form-data; boundary=x",
      "te xt/html",
  };
  for (const std::string& t : no) EXPECT_FALSE(isCompressibleType(t)) << "'" << t << "'";
}

// ---------------------------------------------------------------------------------------------
// compressionApplies

core::ResponseHead compressibleHead() {
  core::ResponseHead head;
  head.status = 200;
  head.headers.add("Content-Type", "text/html; charset=utf-8");
  head.headers.add("Cache-Control", "public, max-age=60");
  head.headers.add("ETag", "\"v1\"");
  return head;
}

TEST(ContentCoding, CompressionAppliesSizeBoundaries) {
  const core::ResponseHead head = compressibleHead();
  EXPECT_FALSE(compressionApplies(head, 0));
  EXPECT_FALSE(compressionApplies(head, kCompressMinBytes - 1));
  EXPECT_FALSE(compressionApplies(head, 1023));
  EXPECT_TRUE(compressionApplies(head, 1024));
  EXPECT_TRUE(compressionApplies(head, kCompressMinBytes));
  EXPECT_TRUE(compressionApplies(head, 5 * 1024 * 1024));
  EXPECT_TRUE(compressionApplies(head, kCompressMaxBytes));
  EXPECT_FALSE(compressionApplies(head, 10ull * 1024 * 1024 + 1));
  EXPECT_FALSE(compressionApplies(head, UINT64_MAX));
}

TEST(ContentCoding, CompressionAppliesOnlyToPlain200) {
  for (int status : {203, 204, 206, 301, 304, 404, 500}) {
    core::ResponseHead head = compressibleHead();
    head.status = status;
    EXPECT_FALSE(compressionApplies(head, 4096)) << status;
  }
}

TEST(ContentCoding, CompressionRespectsHeaders) {
  struct Case {
    const char* what;
    void (*edit)(core::HeaderMap&);
    bool expected;
  };
  const std::vector<Case> cases = {
      {"baseline", [](core::HeaderMap&) {}, true},
      {"no content type", [](core::HeaderMap& h) { h.remove("Content-Type"); }, false},
      {"image", [](core::HeaderMap& h) { h.set("Content-Type", "image/png"); }, false},
      {"already gzip", [](core::HeaderMap& h) { h.add("Content-Encoding", "gzip"); }, false},
      {"already br upper", [](core::HeaderMap& h) { h.add("Content-Encoding", "BR"); }, false},
      {"identity encoding", [](core::HeaderMap& h) { h.add("Content-Encoding", "identity"); },
       true},
      {"identity then gzip",
       [](core::HeaderMap& h) { h.add("Content-Encoding", "Identity, gzip"); }, false},
      {"second encoding line",
       [](core::HeaderMap& h) {
         h.add("Content-Encoding", "identity");
         h.add("Content-Encoding", "deflate");
       },
       false},
      {"no-transform",
       [](core::HeaderMap& h) { h.set("Cache-Control", "public, no-transform, max-age=60"); },
       false},
      {"No-Transform in second line",
       [](core::HeaderMap& h) { h.add("Cache-Control", "No-Transform"); }, false},
      {"no-transformation is another directive",
       [](core::HeaderMap& h) { h.set("Cache-Control", "no-transformation"); }, true},
      {"content-range", [](core::HeaderMap& h) { h.add("Content-Range", "bytes 0-99/4096"); },
       false},
  };
  for (const Case& c : cases) {
    core::ResponseHead head = compressibleHead();
    c.edit(head.headers);
    EXPECT_EQ(compressionApplies(head, 4096), c.expected) << c.what;
  }
}

// ---------------------------------------------------------------------------------------------
// addVaryAcceptEncoding

TEST(ContentCoding, VaryMerging) {
  struct Case {
    std::vector<std::string> vary_before;  // one entry per Vary field line
    std::vector<std::string> vary_after;
  };
  const std::vector<Case> cases = {
      {{}, {"Accept-Encoding"}},
      {{"Origin"}, {"Origin, Accept-Encoding"}},
      {{"Origin, Accept"}, {"Origin, Accept, Accept-Encoding"}},
      {{"accept-encoding"}, {"accept-encoding"}},
      {{"Origin,ACCEPT-ENCODING"}, {"Origin,ACCEPT-ENCODING"}},
      {{"Origin", "Accept-Encoding"}, {"Origin", "Accept-Encoding"}},
      {{"Origin", "Accept"}, {"Origin", "Accept, Accept-Encoding"}},
      {{"*"}, {"*"}},
      {{"Origin", "*"}, {"Origin", "*"}},
      {{""}, {"Accept-Encoding"}},
      {{"Accept-Encoding-X"}, {"Accept-Encoding-X, Accept-Encoding"}},
  };
  for (const Case& c : cases) {
    core::HeaderMap headers;
    headers.add("Content-Type", "text/html");
    for (const std::string& v : c.vary_before) headers.add("Vary", v);
    headers.add("ETag", "\"x\"");
    addVaryAcceptEncoding(headers);
    std::vector<std::string> after;
    for (std::string_view v : headers.getAll("vary")) after.emplace_back(v);
    EXPECT_EQ(after, c.vary_after) << ::testing::PrintToString(c.vary_before);
    EXPECT_EQ(headers.get("Content-Type"), "text/html");
    EXPECT_EQ(headers.get("ETag"), "\"x\"");
  }
}

TEST(ContentCoding, VaryMergingIsIdempotent) {
  core::HeaderMap headers;
  headers.add("Vary", "Origin");
  addVaryAcceptEncoding(headers);
  addVaryAcceptEncoding(headers);
  EXPECT_EQ(headers.getJoined("Vary"), "Origin, Accept-Encoding");
  EXPECT_EQ(headers.count("Vary"), 1u);
}

// ---------------------------------------------------------------------------------------------
// weakenEtag

TEST(ContentCoding, WeakenEtag) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"\"abc\"", "W/\"abc\""},
      {"\"\"", "W/\"\""},
      {"\"5f3c-1a2b\"", "W/\"5f3c-1a2b\""},
      {" \"abc\"\t", "W/\"abc\""},
      {"W/\"abc\"", "W/\"abc\""},
      {"W/\"\"", "W/\"\""},
      {"", ""},
      {"abc", ""},           // not quoted
      {"\"abc", ""},         // unterminated
      {"w/\"abc\"", ""},     // the weak prefix is case-sensitive
      {"W/abc", ""},         // weak prefix without a quoted tag
      {"W/", ""},
      {"\"a\"b\"", ""},      // DQUOTE inside
      {"\"a b\"", ""},       // SP is not an etagc
      {"\"", ""},
  };
  for (const auto& [in, out] : cases) EXPECT_EQ(weakenEtag(in), out) << "'" << in << "'";
}

}  // namespace
}  // namespace portico::proxy
