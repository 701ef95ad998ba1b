// compressBody: round trips through the reference decoders (zlib inflate with a gzip wrapper,
// BrotliDecoderDecompress), output format checks, and the Identity / failure contract.
#include <gtest/gtest.h>

#include <brotli/decode.h>
#define ZLIB_CONST
#include <zlib.h>

#include <cstdint>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "proxy/compress/compressor.h"

namespace portico::proxy {
namespace {

// Inflates a gzip member (windowBits 15 + 16: gzip wrapper only, no zlib/raw auto-detection).
// nullopt on any error, on trailing garbage, or if the output would exceed `limit`.
std::optional<std::string> gunzip(const std::string& in, std::size_t limit) {
  z_stream zs{};
  if (inflateInit2(&zs, 15 + 16) != Z_OK) return std::nullopt;
  std::string out(limit + 1, '\0');
  zs.next_in = reinterpret_cast<const Bytef*>(in.data());
  zs.avail_in = static_cast<uInt>(in.size());
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = static_cast<uInt>(out.size());
  int rc = inflate(&zs, Z_FINISH);
  std::size_t produced = out.size() - zs.avail_out;
  bool ok = rc == Z_STREAM_END && zs.avail_in == 0 && produced <= limit;
  inflateEnd(&zs);
  if (!ok) return std::nullopt;
  out.resize(produced);
  return out;
}

// One-shot brotli decode into a buffer one byte larger than expected, so an over-long result
// fails instead of being truncated silently.
std::optional<std::string> unbrotli(const std::string& in, std::size_t limit) {
  std::string out(limit + 1, '\0');
  std::size_t size = out.size();
  BrotliDecoderResult rc =
      BrotliDecoderDecompress(in.size(), reinterpret_cast<const std::uint8_t*>(in.data()), &size,
                              reinterpret_cast<std::uint8_t*>(out.data()));
  if (rc != BROTLI_DECODER_RESULT_SUCCESS || size > limit) return std::nullopt;
  out.resize(size);
  return out;
}

std::optional<std::string> decompress(ContentCoding coding, const std::string& in,
                                      std::size_t limit) {
  return coding == ContentCoding::Gzip ? gunzip(in, limit) : unbrotli(in, limit);
}

std::string randomBytes(std::size_t n, std::uint32_t seed) {
  std::mt19937 rng(seed);
  std::string s(n, '\0');
  for (char& c : s) c = static_cast<char>(rng() & 0xFF);
  return s;
}

std::string textKiB() {
  std::string s;
  const std::string line = "<li class=\"item\">Portico edge cache entry, line ";
  for (int i = 0; s.size() < 1024; ++i) s += line + std::to_string(i) + "</li>\n";
  s.resize(1024);
  return s;
}

std::string repetitive(std::size_t n) {
  const std::string unit = "{\"id\":12345,\"name\":\"widget\",\"tags\":[\"a\",\"b\",\"c\"]},\n";
  std::string s;
  s.reserve(n + unit.size());
  while (s.size() < n) s += unit;
  s.resize(n);
  return s;
}

struct RoundTripCase {
  const char* name;
  std::string input;
  bool expect_smaller;  // compressible inputs must shrink
};

class CompressRoundTrip : public ::testing::TestWithParam<ContentCoding> {
 protected:
  static const std::vector<RoundTripCase>& cases() {
    static const std::vector<RoundTripCase> kCases = {
        {"empty", "", false},
        {"one byte", "x", false},
        {"1 KiB text", textKiB(), true},
        {"1 MiB random", randomBytes(1024 * 1024, 42), false},
        {"5 MiB repetitive", repetitive(5 * 1024 * 1024), true},
    };
    return kCases;
  }
};

TEST_P(CompressRoundTrip, DecodesToTheInput) {
  const ContentCoding coding = GetParam();
  for (const RoundTripCase& c : cases()) {
    SCOPED_TRACE(c.name);
    std::optional<std::string> packed = compressBody(coding, c.input);
    ASSERT_TRUE(packed.has_value());
    if (c.expect_smaller) {
      EXPECT_LT(packed->size(), c.input.size());
    }
    std::optional<std::string> unpacked = decompress(coding, *packed, c.input.size());
    ASSERT_TRUE(unpacked.has_value());
    EXPECT_TRUE(*unpacked == c.input);  // not EXPECT_EQ: a 5 MiB diff is no help
  }
}

TEST_P(CompressRoundTrip, IncompressibleInputGrowsOnlySlightly) {
  const std::string input = randomBytes(1024 * 1024, 7);
  std::optional<std::string> packed = compressBody(GetParam(), input);
  ASSERT_TRUE(packed.has_value());
  EXPECT_LE(packed->size(), input.size() + input.size() / 100);
}

TEST_P(CompressRoundTrip, RepetitiveInputShrinksALot) {
  const std::string input = repetitive(5 * 1024 * 1024);
  std::optional<std::string> packed = compressBody(GetParam(), input);
  ASSERT_TRUE(packed.has_value());
  EXPECT_LT(packed->size(), input.size() / 50);
}

TEST_P(CompressRoundTrip, IsDeterministic) {
  // The compressed body is cached and shared: the same input must give the same bytes (no
  // timestamp in the gzip header, no hidden state between calls).
  const std::string input = textKiB();
  EXPECT_EQ(compressBody(GetParam(), input), compressBody(GetParam(), input));
}

TEST_P(CompressRoundTrip, MaxSizeBodyRoundTrips) {
  // kCompressMaxBytes of mixed text and noise. (Its speed is a benchmark's business, not a unit
  // test's: the machines are shared.)
  std::string input = repetitive(kCompressMaxBytes / 2) + randomBytes(kCompressMaxBytes / 2, 3);
  for (std::size_t i = 0; i < input.size(); i += 4096) input[i] = static_cast<char>(i >> 12);
  std::optional<std::string> packed = compressBody(GetParam(), input);
  ASSERT_TRUE(packed.has_value());
  std::optional<std::string> unpacked = decompress(GetParam(), *packed, input.size());
  ASSERT_TRUE(unpacked.has_value());
  EXPECT_TRUE(*unpacked == input);
}

INSTANTIATE_TEST_SUITE_P(Codings, CompressRoundTrip,
                         ::testing::Values(ContentCoding::Gzip, ContentCoding::Brotli),
                         [](const auto& info) { return std::string(codingToken(info.param)); });

TEST(Compressor, GzipOutputIsAGzipMember) {
  std::optional<std::string> packed = compressBody(ContentCoding::Gzip, textKiB());
  ASSERT_TRUE(packed.has_value());
  ASSERT_GE(packed->size(), 18u);  // 10-byte header + 8-byte trailer
  EXPECT_EQ(static_cast<unsigned char>((*packed)[0]), 0x1f);
  EXPECT_EQ(static_cast<unsigned char>((*packed)[1]), 0x8b);
  EXPECT_EQ(static_cast<unsigned char>((*packed)[2]), 8);  // CM = deflate
  // Trailer: ISIZE (input length mod 2^32, little-endian) in the last four bytes.
  const std::size_t n = packed->size();
  std::uint32_t isize = 0;
  for (int i = 3; i >= 0; --i) {
    isize = (isize << 8) | static_cast<unsigned char>((*packed)[n - 4 + static_cast<std::size_t>(i)]);
  }
  EXPECT_EQ(isize, 1024u);
}

TEST(Compressor, GzipOutputIsNotBrotliAndViceVersa) {
  const std::string input = textKiB();
  std::optional<std::string> gz = compressBody(ContentCoding::Gzip, input);
  std::optional<std::string> br = compressBody(ContentCoding::Brotli, input);
  ASSERT_TRUE(gz && br);
  EXPECT_FALSE(unbrotli(*gz, input.size()).has_value());
  EXPECT_FALSE(gunzip(*br, input.size()).has_value());
}

TEST(Compressor, IdentityGivesNothing) {
  EXPECT_EQ(compressBody(ContentCoding::Identity, "hello"), std::nullopt);
  EXPECT_EQ(compressBody(ContentCoding::Identity, ""), std::nullopt);
}

TEST(Compressor, BinaryInputWithNulBytesRoundTrips) {
  std::string input(4096, '\0');
  for (std::size_t i = 0; i < input.size(); i += 7) input[i] = '\xff';
  for (ContentCoding coding : {ContentCoding::Gzip, ContentCoding::Brotli}) {
    std::optional<std::string> packed = compressBody(coding, input);
    ASSERT_TRUE(packed.has_value());
    EXPECT_EQ(decompress(coding, *packed, input.size()), input);
  }
}

}  // namespace
}  // namespace portico::proxy
