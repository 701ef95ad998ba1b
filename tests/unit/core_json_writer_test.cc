#include "proxy/core/json_writer.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace portico::core {
namespace {

TEST(Utf8, WellFormedOnly) {
  EXPECT_TRUE(isValidUtf8("plain ascii"));
  EXPECT_TRUE(isValidUtf8("\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80"));  // é € 😀
  EXPECT_FALSE(isValidUtf8("\xff"));
  EXPECT_FALSE(isValidUtf8("\xc0\xaf"));          // overlong '/'
  EXPECT_FALSE(isValidUtf8("\xed\xa0\x80"));      // surrogate
  EXPECT_FALSE(isValidUtf8("\xf4\x90\x80\x80"));  // above U+10FFFF
  EXPECT_FALSE(isValidUtf8("\xe2\x82"));          // truncated
  EXPECT_EQ(utf8SequenceLength("\xf0\x9f\x98\x80", 0), 4u);
  EXPECT_EQ(utf8SequenceLength("a\xc3\xa9", 1), 2u);
}

std::string asJson(std::string_view s) {
  std::string out;
  appendJsonString(out, s);
  return out;
}

TEST(JsonString, EscapesWhatJsonRequires) {
  EXPECT_EQ(asJson("plain"), "\"plain\"");
  EXPECT_EQ(asJson("a\"b\\c/d"), "\"a\\\"b\\\\c/d\"");
  EXPECT_EQ(asJson("\n\r\t\b\f"), "\"\\n\\r\\t\\b\\f\"");
  EXPECT_EQ(asJson(std::string("\x00\x01\x1f", 3)), "\"\\u0000\\u0001\\u001f\"");
  EXPECT_EQ(asJson("\xc3\xa9"), "\"\xc3\xa9\"");  // well-formed UTF-8 kept as is
}

TEST(JsonString, ReplacesEachInvalidByte) {
  EXPECT_EQ(asJson("a\xff" "b"), "\"a\xef\xbf\xbd" "b\"");
  EXPECT_EQ(asJson("\xe2\x82"), "\"\xef\xbf\xbd\xef\xbf\xbd\"");  // truncated: two bytes, two
  EXPECT_EQ(asJson("\xed\xa0\x80x"), "\"\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbdx\"");
  // Whatever the bytes, the result parses and is valid UTF-8.
  std::string all;
  for (int c = 0; c < 256; ++c) all += static_cast<char>(c);
  std::string out = asJson(all + all);
  EXPECT_TRUE(isValidUtf8(out));
  EXPECT_NO_THROW({ auto j = nlohmann::json::parse(out); EXPECT_TRUE(j.is_string()); });
}

// The word-at-a-time scan must find a byte that needs escaping wherever it sits: at each
// offset of strings of 1..24 bytes (inside the first word, across words, in the tail), for
// each kind of such byte. nlohmann::json parses the result back to the expected text.
TEST(JsonString, EscapesAtEveryOffsetOfTheWordScan) {
  const std::string specials[] = {"\"", "\\", std::string(1, '\0'), "\x1f", "\x7f",
                                  "\xc3\xa9", "\xff"};
  for (std::size_t len = 1; len <= 24; ++len) {
    for (std::size_t at = 0; at < len; ++at) {
      for (const std::string& sp : specials) {
        std::string in(len, 'a');
        in.replace(at, 1, sp);
        std::string expected = in;
        if (sp == "\xff") expected.replace(at, 1, "\xef\xbf\xbd");  // invalid UTF-8 byte
        const std::string out = asJson(in);
        auto j = nlohmann::json::parse(out);
        ASSERT_EQ(j.get<std::string>(), expected) << "len " << len << " at " << at;
      }
    }
  }
  EXPECT_EQ(asJson("0123456789abcdefXYZ"), "\"0123456789abcdefXYZ\"");
  EXPECT_EQ(asJson(""), "\"\"");
}

// Nesting deeper than the writer's inline bookkeeping still places every comma.
TEST(JsonWriter, DeepNesting) {
  std::string out;
  JsonWriter w(out);
  for (int i = 0; i < 40; ++i) {
    w.beginArray();
    w.value(i);
  }
  for (int i = 0; i < 40; ++i) w.endArray();
  auto j = nlohmann::json::parse(out);
  for (int i = 0; i < 39; ++i) {
    ASSERT_EQ(j[0].get<int>(), i);
    j = j[1];
  }
}

TEST(JsonWriter, PlacesCommasInNestedContainers) {
  std::string out;
  JsonWriter w(out);
  w.beginObject();
  w.key("a");
  w.value(1);
  w.key("b");
  w.beginArray();
  w.value("x");
  w.beginObject();
  w.endObject();
  w.null();
  w.beginArray();
  w.endArray();
  w.endArray();
  w.key("c");
  w.value(false);
  w.key("d");
  w.value(std::int64_t{-9007199254740993});
  w.endObject();
  EXPECT_EQ(out, R"({"a":1,"b":["x",{},null,[]],"c":false,"d":-9007199254740993})");
  auto j = nlohmann::json::parse(out);
  EXPECT_EQ(j["d"].get<std::int64_t>(), -9007199254740993);
}

}  // namespace
}  // namespace portico::core
