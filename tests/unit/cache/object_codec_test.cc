// ObjectCodec: the L2 (Redis) encoding of a CachedObject. Round trips of rich, empty and large
// objects; a golden byte vector pinning format version 1 (the contract between
// edges); and rejection of every malformed input: truncation at every length, wrong magic or
// version, huge lengths and counts, non-canonical varints, bytes that could split an HTTP
// message, trailing bytes, and seeded random and mutated inputs.
#include "cache/object_codec.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <limits>
#include <optional>
#include <random>
#include <string>

namespace portico::cache {
namespace {

using namespace std::chrono_literals;

core::WallTime unixMillis(std::int64_t ms) {
  return core::WallTime(std::chrono::duration_cast<core::WallTime::duration>(
      std::chrono::milliseconds(ms)));
}

CachedObject makeRich() {
  CachedObject o;
  o.head.status = 203;
  o.head.reason = "Non-Authoritative Information";
  o.head.headers.add("Content-Type", "application/octet-stream");
  o.head.headers.add("Set-Cookie", "a=1; Path=/");
  o.head.headers.add("Cache-Control", "max-age=60, stale-while-revalidate=30");
  o.head.headers.add("Set-Cookie", "b=2");  // a duplicate, after another field: order matters
  o.head.headers.add("X-Empty", "");
  o.head.headers.add("x-lower", "v\x80\xff obs-text");
  o.head.headers.add("ETag", "W/\"abc\"");
  std::string body;
  for (int round = 0; round < 3; ++round) {
    for (int b = 0; b < 256; ++b) body.push_back(static_cast<char>(b));
  }
  body.append(5, '\0');
  o.body = std::make_shared<const std::string>(body);
  // Sub-millisecond parts are dropped by the encoding (ms precision).
  o.meta.request_time = unixMillis(1'700'000'000'123) + 456789ns;
  o.meta.response_time = unixMillis(1'700'000'000'987) + 1ns;
  o.meta.corrected_initial_age_s = 17;
  o.meta.freshness_lifetime_s = 86400;
  o.meta.stale_while_revalidate_s = 30;
  o.meta.stale_if_error_s = 600;
  o.meta.must_revalidate = true;
  o.meta.no_cache = true;
  o.meta.etag = "W/\"abc\"";
  o.meta.last_modified = "Tue, 14 Nov 2023 22:13:20 GMT";
  o.meta.vary = {"accept-encoding", "accept-language", "x-device"};
  return o;
}

CachedObject makeSmall() {
  CachedObject o;
  o.head.headers.add("a", "b");
  o.head.headers.add("cc", "");
  o.body = std::make_shared<const std::string>(std::string("hi\0!", 4));
  o.meta.request_time = unixMillis(1000);
  o.meta.response_time = unixMillis(1001);
  o.meta.freshness_lifetime_s = 300;
  o.meta.etag = "\"x\"";
  o.meta.last_modified = "Mon, 01 Jan 2024 00:00:00 GMT";
  o.meta.vary = {"accept"};
  return o;
}

void expectSameObject(const CachedObject& got, const CachedObject& want) {
  EXPECT_EQ(got.head.status, want.head.status);
  EXPECT_EQ(got.head.reason, want.head.reason);
  ASSERT_EQ(got.head.headers.size(), want.head.headers.size());
  for (std::size_t i = 0; i < want.head.headers.size(); ++i) {
    EXPECT_EQ(got.head.headers.entries()[i].name, want.head.headers.entries()[i].name) << i;
    EXPECT_EQ(got.head.headers.entries()[i].value, want.head.headers.entries()[i].value) << i;
  }
  EXPECT_EQ(got.bodyView(), want.bodyView());
  // WallTime carries nanoseconds; the encoding keeps milliseconds.
  EXPECT_EQ(core::toUnixMillis(got.meta.request_time), core::toUnixMillis(want.meta.request_time));
  EXPECT_EQ(core::toUnixMillis(got.meta.response_time),
            core::toUnixMillis(want.meta.response_time));
  EXPECT_EQ(got.meta.corrected_initial_age_s, want.meta.corrected_initial_age_s);
  EXPECT_EQ(got.meta.freshness_lifetime_s, want.meta.freshness_lifetime_s);
  EXPECT_EQ(got.meta.stale_while_revalidate_s, want.meta.stale_while_revalidate_s);
  EXPECT_EQ(got.meta.stale_if_error_s, want.meta.stale_if_error_s);
  EXPECT_EQ(got.meta.must_revalidate, want.meta.must_revalidate);
  EXPECT_EQ(got.meta.no_cache, want.meta.no_cache);
  EXPECT_EQ(got.meta.etag, want.meta.etag);
  EXPECT_EQ(got.meta.last_modified, want.meta.last_modified);
  EXPECT_EQ(got.meta.vary, want.meta.vary);
}

// Independent writers of the documented primitives, to build inputs by hand.
void putVarint(std::string& out, std::uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7F) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}
void putStr(std::string& out, std::string_view s) {
  putVarint(out, s.size());
  out.append(s);
}
std::string prefix() { return std::string("PTC\x01", 4); }

TEST(ObjectCodec, RoundTripsARichObject) {
  const CachedObject rich = makeRich();
  const std::string bytes = encodeObject(rich);
  ASSERT_EQ(bytes.substr(0, 4), prefix());
  CachedObjectPtr got = decodeObject(bytes);
  ASSERT_NE(got, nullptr);
  expectSameObject(*got, rich);
  EXPECT_EQ(got->meta.request_time, unixMillis(1'700'000'000'123));  // truncated, not rounded
  // The decoded object owns its bytes: it outlives the input buffer.
  std::string copy = bytes;
  got = decodeObject(copy);
  copy.assign(copy.size(), 'z');
  ASSERT_NE(got, nullptr);
  expectSameObject(*got, rich);
  // Encoding is deterministic and compact: body + a small overhead for this head.
  EXPECT_EQ(encodeObject(*got), bytes);
  EXPECT_LT(bytes.size(), rich.bodySize() + rich.head.headers.byteSize() + 200);
}

TEST(ObjectCodec, GoldenBytesOfFormatVersion1) {
  CachedObject o;
  o.head.headers.add("a", "b");
  o.body = std::make_shared<const std::string>(std::string("hi\0", 3));
  o.meta.request_time = unixMillis(1000);
  o.meta.response_time = unixMillis(-1);
  o.meta.corrected_initial_age_s = 5;
  o.meta.freshness_lifetime_s = 300;
  o.meta.stale_if_error_s = -2;
  o.meta.must_revalidate = true;
  o.meta.no_cache = true;
  o.meta.etag = "\"x\"";
  o.meta.vary = {"accept"};
  const std::string golden(
      "PTC\x01"          // magic, version
      "\xC8\x01"         // status 200
      "\x00"             // reason ""
      "\x01"             // 1 header
      "\x01" "a" "\x01" "b"
      "\xD0\x0F"         // request_time 1000 ms (zigzag 2000)
      "\x01"             // response_time -1 ms (zigzag 1)
      "\x0A"             // corrected_initial_age 5
      "\xD8\x04"         // freshness_lifetime 300 (zigzag 600)
      "\x00"             // stale_while_revalidate 0
      "\x03"             // stale_if_error -2 (zigzag 3)
      "\x03"             // flags: must_revalidate | no_cache
      "\x03" "\"x\""     // etag
      "\x00"             // last_modified ""
      "\x01" "\x06" "accept"
      "\x03" "hi\x00",   // body
      38);
  EXPECT_EQ(encodeObject(o), golden);
  CachedObjectPtr got = decodeObject(golden);
  ASSERT_NE(got, nullptr);
  expectSameObject(*got, o);
}

TEST(ObjectCodec, RoundTripsAnEmptyBodyAndDefaultMeta) {
  CachedObject o;
  o.head.status = 204;
  o.body = std::make_shared<const std::string>();
  const std::string bytes = encodeObject(o);
  CachedObjectPtr got = decodeObject(bytes);
  ASSERT_NE(got, nullptr);
  expectSameObject(*got, o);
  ASSERT_NE(got->body, nullptr);
  EXPECT_TRUE(got->body->empty());
  EXPECT_EQ(got->meta.request_time, core::WallTime{});
  EXPECT_EQ(bytes.size(), 4u + 2 + 1 + 1 + 6 + 1 + 1 + 1 + 1 + 1);
}

TEST(ObjectCodec, RoundTripsExtremeIntegersAndTimes) {
  CachedObject o = makeSmall();
  o.head.status = 999;
  o.meta.corrected_initial_age_s = std::numeric_limits<std::int64_t>::min();
  o.meta.freshness_lifetime_s = std::numeric_limits<std::int64_t>::max();
  o.meta.stale_while_revalidate_s = -1;
  o.meta.stale_if_error_s = 1LL << 40;
  o.meta.request_time = core::WallTime::min();  // pre-1970, at the edge of what WallTime holds
  o.meta.response_time = core::WallTime::max();
  CachedObjectPtr got = decodeObject(encodeObject(o));
  ASSERT_NE(got, nullptr);
  expectSameObject(*got, o);
}

TEST(ObjectCodec, RoundTripsAOneMebibyteBody) {
  CachedObject o = makeSmall();
  std::string body(1 << 20, '\0');
  std::mt19937 rng(7);
  for (char& c : body) c = static_cast<char>(rng());
  o.body = std::make_shared<const std::string>(std::move(body));
  const std::string bytes = encodeObject(o);
  EXPECT_LT(bytes.size(), (1u << 20) + 200);
  CachedObjectPtr got = decodeObject(bytes);
  ASSERT_NE(got, nullptr);
  expectSameObject(*got, o);
}

TEST(ObjectCodec, RejectsEveryTruncation) {
  const std::string bytes = encodeObject(makeSmall());
  ASSERT_NE(decodeObject(bytes), nullptr);
  for (std::size_t len = 0; len < bytes.size(); ++len) {
    EXPECT_EQ(decodeObject(std::string_view(bytes).substr(0, len)), nullptr) << "length " << len;
  }
}

TEST(ObjectCodec, RejectsWrongMagicOrVersion) {
  const std::string bytes = encodeObject(makeSmall());
  for (std::size_t i = 0; i < 4; ++i) {
    std::string bad = bytes;
    bad[i] = static_cast<char>(bad[i] ^ 0x01);
    EXPECT_EQ(decodeObject(bad), nullptr) << "byte " << i;
  }
  for (int version : {0, 2, 0x81, 0xFF}) {
    std::string bad = bytes;
    bad[3] = static_cast<char>(version);
    EXPECT_EQ(decodeObject(bad), nullptr) << "version " << version;
  }
  EXPECT_EQ(decodeObject("ptc\x01"), nullptr);
  EXPECT_EQ(decodeObject(""), nullptr);
}

TEST(ObjectCodec, RejectsTrailingBytes) {
  const std::string bytes = encodeObject(makeSmall());
  EXPECT_EQ(decodeObject(bytes + std::string(1, '\0')), nullptr);
  EXPECT_EQ(decodeObject(bytes + "x"), nullptr);
  EXPECT_EQ(decodeObject(bytes + bytes), nullptr);
}

TEST(ObjectCodec, RejectsHugeLengthsAndCounts) {
  // Reason length 2^64-1, 2^62 and one past the end.
  for (std::uint64_t len : {std::numeric_limits<std::uint64_t>::max(), std::uint64_t{1} << 62,
                            std::uint64_t{11}}) {
    std::string bad = prefix() + "\xC8\x01";
    putVarint(bad, len);
    bad.append(10, 'r');
    EXPECT_EQ(decodeObject(bad), nullptr) << len;
  }
  // Header count 2^40 with a few bytes behind it.
  std::string bad = prefix() + "\xC8\x01" + std::string(1, '\0');
  putVarint(bad, std::uint64_t{1} << 40);
  bad.append(std::string("\x01" "a" "\x01" "b", 4));
  EXPECT_EQ(decodeObject(bad), nullptr);
  // Body length past the end: the encoding of an empty body ends in its 0x00 length.
  std::string empty_body = encodeObject([] {
    CachedObject o = makeSmall();
    o.body = std::make_shared<const std::string>();
    return o;
  }());
  ASSERT_EQ(empty_body.back(), '\0');
  empty_body.pop_back();
  for (std::uint64_t len : {std::numeric_limits<std::uint64_t>::max(), std::uint64_t{1} << 40,
                            std::uint64_t{5}}) {
    std::string b = empty_body;
    putVarint(b, len);
    b.append("abcd");
    EXPECT_EQ(decodeObject(b), nullptr) << len;
  }
}

TEST(ObjectCodec, CapsHeaderFieldsAtTheLimit) {
  CachedObject o = makeSmall();
  o.head.headers.clear();
  for (std::size_t i = 0; i < kMaxCodecFields; ++i) o.head.headers.add("a", "");
  CachedObjectPtr got = decodeObject(encodeObject(o));
  ASSERT_NE(got, nullptr);
  EXPECT_EQ(got->head.headers.size(), kMaxCodecFields);
  o.head.headers.add("a", "");  // one more: the input holds them all, the cap still refuses
  EXPECT_EQ(decodeObject(encodeObject(o)), nullptr);
  o.head.headers.clear();
  o.meta.vary.assign(kMaxCodecFields + 1, "v");
  EXPECT_EQ(decodeObject(encodeObject(o)), nullptr);
}

// Builds an input field by field, with one field replaced by a bad value.
struct Fields {
  std::uint64_t status = 200;
  std::string reason;
  std::string name = "content-type";
  std::string value = "text/plain";
  std::uint64_t request_ms_zigzag = 2000;
  std::string age_varint = std::string(1, '\0');  // raw bytes of a signed varint
  std::uint8_t flags = 0;
  std::string etag = "\"e\"";
  std::string last_modified;

  std::string encode() const {
    std::string b = prefix();
    putVarint(b, status);
    putStr(b, reason);
    putVarint(b, 1);
    putStr(b, name);
    putStr(b, value);
    putVarint(b, request_ms_zigzag);
    b.push_back('\0');  // response_time
    b.append(age_varint);
    b.append(3, '\0');  // lifetime, swr, sie
    b.push_back(static_cast<char>(flags));
    putStr(b, etag);
    putStr(b, last_modified);
    putVarint(b, 0);  // vary
    putStr(b, "body");
    return b;
  }
};

TEST(ObjectCodec, RejectsNonCanonicalVarints) {
  auto age = [](std::string varint) {
    Fields f;
    f.age_varint = std::move(varint);
    CachedObjectPtr got = decodeObject(f.encode());
    return got ? std::optional<std::int64_t>(got->meta.corrected_initial_age_s) : std::nullopt;
  };
  EXPECT_EQ(age("\x02"), 1);
  EXPECT_EQ(age("\xAC\x02"), 150);  // zigzag 300
  EXPECT_EQ(age(std::string(9, '\xFF') + "\x01"), std::numeric_limits<std::int64_t>::min());
  EXPECT_EQ(age(std::string("\x82\x00", 2)), std::nullopt);  // a trailing zero group
  EXPECT_EQ(age(std::string("\x80\x00", 2)), std::nullopt);
  EXPECT_EQ(age(std::string(9, '\xFF') + "\x02"), std::nullopt);   // bits past 2^64
  EXPECT_EQ(age(std::string(10, '\xFF') + "\x01"), std::nullopt);  // 11 bytes
  EXPECT_EQ(age(std::string(10, '\x80') + "\x01"), std::nullopt);
}

TEST(ObjectCodec, RejectsContentThatCouldSplitAMessage) {
  ASSERT_NE(decodeObject(Fields{}.encode()), nullptr);
  auto rejected = [](auto mutate) {
    Fields f;
    mutate(f);
    return decodeObject(f.encode()) == nullptr;
  };
  EXPECT_TRUE(rejected([](Fields& f) { f.status = 99; }));
  EXPECT_TRUE(rejected([](Fields& f) { f.status = 1000; }));
  EXPECT_TRUE(rejected([](Fields& f) { f.reason = "OK\r\nX: y"; }));
  EXPECT_TRUE(rejected([](Fields& f) { f.name = ""; }));
  EXPECT_TRUE(rejected([](Fields& f) { f.name = "a:b"; }));
  EXPECT_TRUE(rejected([](Fields& f) { f.name = "a b"; }));
  EXPECT_TRUE(rejected([](Fields& f) { f.name = std::string("a\0b", 3); }));
  EXPECT_TRUE(rejected([](Fields& f) { f.value = "x\r\nSet-Cookie: evil"; }));
  EXPECT_TRUE(rejected([](Fields& f) { f.value = "x\ny"; }));
  EXPECT_TRUE(rejected([](Fields& f) { f.value = std::string("x\0", 2); }));
  EXPECT_TRUE(rejected([](Fields& f) { f.etag = "\"e\"\r\nHost: other"; }));
  EXPECT_TRUE(rejected([](Fields& f) { f.last_modified = "Mon\n"; }));
  EXPECT_TRUE(rejected([](Fields& f) { f.flags = 0x04; }));
  EXPECT_TRUE(rejected([](Fields& f) { f.flags = 0x80; }));
  // Unix ms beyond what WallTime (int64 ns) can hold, both signs.
  constexpr std::uint64_t kTop = std::numeric_limits<std::uint64_t>::max();
  EXPECT_TRUE(rejected([](Fields& f) { f.request_ms_zigzag = kTop - 1; }));  // INT64_MAX
  EXPECT_TRUE(rejected([](Fields& f) { f.request_ms_zigzag = kTop; }));      // INT64_MIN
  EXPECT_FALSE(rejected([](Fields& f) { f.flags = 0x03; }));
  EXPECT_FALSE(rejected([](Fields& f) { f.value = ""; }));
}

// Random and mutated inputs: no crash, no out-of-bounds read (run under ASan), and whatever is
// accepted is exactly the canonical encoding of what it decodes to.
TEST(ObjectCodec, SurvivesRandomAndMutatedInput) {
  std::mt19937_64 rng(20240613);
  const std::string valid = encodeObject(makeSmall());
  int accepted = 0;
  for (int i = 0; i < 2000; ++i) {
    std::string input;
    switch (i % 3) {
      case 0:  // random bytes
        input.resize(rng() % 96);
        for (char& c : input) c = static_cast<char>(rng());
        break;
      case 1:  // a valid prefix, then random bytes
        input = prefix();
        input.resize(4 + rng() % 96);
        for (std::size_t k = 4; k < input.size(); ++k) input[k] = static_cast<char>(rng());
        break;
      default: {  // a valid encoding with 1-3 bytes changed, sometimes cut or extended
        input = valid;
        for (std::uint64_t n = 1 + rng() % 3; n > 0; --n) {
          input[rng() % input.size()] = static_cast<char>(rng());
        }
        if (rng() % 4 == 0) input.resize(rng() % (input.size() + 8), '\x01');
        break;
      }
    }
    CachedObjectPtr got = decodeObject(input);
    if (got) {
      ++accepted;
      EXPECT_EQ(encodeObject(*got), input) << "iteration " << i;
    }
  }
  RecordProperty("accepted", accepted);
}

}  // namespace
}  // namespace portico::cache
