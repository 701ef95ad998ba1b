#include <gtest/gtest.h>

#include <string>

#include "origin/dir_conditional.h"
#include "proxy/core/http_date.h"

namespace portico::origin {
namespace {

constexpr std::int64_t kMtime = 1700000000;
const std::string kEtag = "\"abc-10\"";

core::HeaderMap headers(std::initializer_list<std::pair<const char*, const char*>> fields) {
  core::HeaderMap h;
  for (const auto& [n, v] : fields) h.add(n, v);
  return h;
}

TEST(DirConditional, EtagIsStrongAndTracksMtimeAndSize) {
  const std::string e = makeFileEtag(kMtime, 5, 1234);
  EXPECT_EQ(e.front(), '"');
  EXPECT_EQ(e.back(), '"');
  EXPECT_EQ(e, makeFileEtag(kMtime, 5, 1234));
  EXPECT_NE(e, makeFileEtag(kMtime, 6, 1234));
  EXPECT_NE(e, makeFileEtag(kMtime + 1, 5, 1234));
  EXPECT_NE(e, makeFileEtag(kMtime, 5, 1235));
}

TEST(DirConditional, IfNoneMatchWeakComparison) {
  EXPECT_TRUE(ifNoneMatchMatches("\"abc-10\"", kEtag));
  EXPECT_TRUE(ifNoneMatchMatches("W/\"abc-10\"", kEtag));
  EXPECT_TRUE(ifNoneMatchMatches("\"x\", W/\"abc-10\"", kEtag));
  EXPECT_TRUE(ifNoneMatchMatches("*", kEtag));
  EXPECT_TRUE(ifNoneMatchMatches(" \"x,y\" ,\"abc-10\"", kEtag));  // ',' inside a tag
  EXPECT_FALSE(ifNoneMatchMatches("\"abc-1\"", kEtag));
  EXPECT_FALSE(ifNoneMatchMatches("abc-10", kEtag));                // unquoted: malformed
  EXPECT_FALSE(ifNoneMatchMatches("\"abc-10", kEtag));              // unterminated
  EXPECT_FALSE(ifNoneMatchMatches("", kEtag));
}

TEST(DirConditional, EvaluateConditional) {
  const std::string at = core::formatHttpDate(kMtime);
  const std::string before = core::formatHttpDate(kMtime - 1);
  const std::string after = core::formatHttpDate(kMtime + 3600);
  EXPECT_EQ(evaluateConditional(headers({}), kEtag, kMtime), Conditional::Serve);
  EXPECT_EQ(evaluateConditional(headers({{"If-None-Match", "\"abc-10\""}}), kEtag, kMtime),
            Conditional::NotModified);
  EXPECT_EQ(evaluateConditional(headers({{"If-None-Match", "\"a\""}, {"if-none-match", "*"}}),
                                kEtag, kMtime),
            Conditional::NotModified);
  EXPECT_EQ(evaluateConditional(headers({{"If-Modified-Since", at.c_str()}}), kEtag, kMtime),
            Conditional::NotModified);
  EXPECT_EQ(evaluateConditional(headers({{"If-Modified-Since", after.c_str()}}), kEtag, kMtime),
            Conditional::NotModified);
  EXPECT_EQ(evaluateConditional(headers({{"If-Modified-Since", before.c_str()}}), kEtag, kMtime),
            Conditional::Serve);
  EXPECT_EQ(evaluateConditional(headers({{"If-Modified-Since", "yesterday"}}), kEtag, kMtime),
            Conditional::Serve);
  // If-None-Match present: If-Modified-Since is not looked at (RFC 9110 §13.1.3).
  EXPECT_EQ(evaluateConditional(
                headers({{"If-None-Match", "\"other\""}, {"If-Modified-Since", at.c_str()}}),
                kEtag, kMtime),
            Conditional::Serve);
}

TEST(DirConditional, ParseByteRange) {
  ByteRange r = parseByteRange("bytes=0-9", 100);
  EXPECT_EQ(r.kind, RangeKind::Single);
  EXPECT_EQ(r.first, 0u);
  EXPECT_EQ(r.last, 9u);
  EXPECT_EQ(r.length(), 10u);
  r = parseByteRange("bytes=90-", 100);
  EXPECT_EQ(r.kind, RangeKind::Single);
  EXPECT_EQ(r.first, 90u);
  EXPECT_EQ(r.last, 99u);
  r = parseByteRange("bytes=50-1000", 100);
  EXPECT_EQ(r.last, 99u);
  r = parseByteRange("bytes=-10", 100);
  EXPECT_EQ(r.kind, RangeKind::Single);
  EXPECT_EQ(r.first, 90u);
  EXPECT_EQ(r.last, 99u);
  r = parseByteRange("bytes=-1000", 100);
  EXPECT_EQ(r.first, 0u);
  EXPECT_EQ(r.last, 99u);
  r = parseByteRange(" Bytes = 5 - 5 ", 100);
  EXPECT_EQ(r.kind, RangeKind::Single);
  EXPECT_EQ(r.length(), 1u);

  EXPECT_EQ(parseByteRange("bytes=100-", 100).kind, RangeKind::Unsatisfiable);
  EXPECT_EQ(parseByteRange("bytes=100-200", 100).kind, RangeKind::Unsatisfiable);
  EXPECT_EQ(parseByteRange("bytes=-0", 100).kind, RangeKind::Unsatisfiable);
  EXPECT_EQ(parseByteRange("bytes=0-", 0).kind, RangeKind::Unsatisfiable);
  EXPECT_EQ(parseByteRange("bytes=-5", 0).kind, RangeKind::Unsatisfiable);

  for (const char* ignored : {"bytes=0-1,3-4", "bytes=5-2", "bytes=a-b", "bytes=-", "bytes=",
                              "items=0-1", "bytes 0-1", "bytes=0x1-2", "bytes=--1",
                              "bytes=99999999999999999999999-", "bytes=+1-2", ""}) {
    EXPECT_EQ(parseByteRange(ignored, 100).kind, RangeKind::None) << ignored;
  }
}

TEST(DirConditional, IfRange) {
  const std::string at = core::formatHttpDate(kMtime);
  const std::string later = core::formatHttpDate(kMtime + 1);
  EXPECT_TRUE(ifRangeAllows("\"abc-10\"", kEtag, kMtime));
  EXPECT_FALSE(ifRangeAllows("W/\"abc-10\"", kEtag, kMtime));  // strong comparison only
  EXPECT_FALSE(ifRangeAllows("\"old\"", kEtag, kMtime));
  EXPECT_TRUE(ifRangeAllows(at, kEtag, kMtime));
  EXPECT_FALSE(ifRangeAllows(later, kEtag, kMtime));
  EXPECT_FALSE(ifRangeAllows("garbage", kEtag, kMtime));

  EXPECT_EQ(requestedRange(headers({{"Range", "bytes=0-1"}}), 10, kEtag, kMtime).kind,
            RangeKind::Single);
  EXPECT_EQ(requestedRange(headers({{"Range", "bytes=0-1"}, {"If-Range", "\"old\""}}), 10, kEtag,
                           kMtime)
                .kind,
            RangeKind::None);
  EXPECT_EQ(requestedRange(headers({{"Range", "bytes=0-1"}, {"Range", "bytes=2-3"}}), 10, kEtag,
                           kMtime)
                .kind,
            RangeKind::None);
  EXPECT_EQ(requestedRange(headers({}), 10, kEtag, kMtime).kind, RangeKind::None);
}

}  // namespace
}  // namespace portico::origin
