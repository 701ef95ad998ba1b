// Parsing of Cache-Control / Pragma / Expires / Date / Age / Vary (cache/cache_control.h):
// table-driven, every robustness rule of the header comment has a row.
#include "cache/cache_control.h"

#include <gtest/gtest.h>

#include <initializer_list>
#include <string>
#include <utility>
#include <vector>

#include "proxy/core/http_date.h"

namespace portico::cache {
namespace {

using Fields = std::vector<std::pair<std::string, std::string>>;

core::HeaderMap headers(const Fields& fields) {
  core::HeaderMap h;
  for (const auto& [n, v] : fields) h.add(n, v);
  return h;
}

// A canonical one-line rendering, so a table row states the whole expected parse.
std::string describe(const ResponseCacheControl& cc) {
  std::string out;
  auto word = [&out](const std::string& w) { out += (out.empty() ? "" : " ") + w; };
  auto list = [](const std::vector<std::string>& v) {
    std::string s;
    for (const std::string& f : v) s += (s.empty() ? "" : ",") + f;
    return "(" + s + ")";
  };
  if (cc.no_store) word("no-store");
  if (cc.no_cache) word(cc.no_cache_fields.empty() ? "no-cache" : "no-cache" + list(cc.no_cache_fields));
  if (cc.is_private) word("private");
  if (!cc.private_fields.empty()) word("private" + list(cc.private_fields));
  if (cc.is_public) word("public");
  if (cc.must_revalidate) word("must-revalidate");
  if (cc.proxy_revalidate) word("proxy-revalidate");
  if (cc.must_understand) word("must-understand");
  if (cc.no_transform) word("no-transform");
  if (cc.immutable) word("immutable");
  if (cc.max_age) word("max-age=" + std::to_string(*cc.max_age));
  if (cc.s_maxage) word("s-maxage=" + std::to_string(*cc.s_maxage));
  if (cc.stale_while_revalidate) word("swr=" + std::to_string(*cc.stale_while_revalidate));
  if (cc.stale_if_error) word("sie=" + std::to_string(*cc.stale_if_error));
  return out;
}

std::string describe(const RequestCacheControl& cc) {
  std::string out;
  auto word = [&out](const std::string& w) { out += (out.empty() ? "" : " ") + w; };
  if (cc.no_cache) word("no-cache");
  if (cc.no_store) word("no-store");
  if (cc.no_transform) word("no-transform");
  if (cc.only_if_cached) word("only-if-cached");
  if (cc.max_age) word("max-age=" + std::to_string(*cc.max_age));
  if (cc.min_fresh) word("min-fresh=" + std::to_string(*cc.min_fresh));
  if (cc.max_stale) word("max-stale=" + std::to_string(*cc.max_stale));
  return out;
}

TEST(DeltaSeconds, Table) {
  const struct {
    const char* in;
    std::optional<std::int64_t> want;
  } cases[] = {
      {"0", 0},
      {"60", 60},
      {"007", 7},
      {"2147483647", 2147483647},
      {"2147483648", kDeltaSecondsMax},
      {"2147483649", kDeltaSecondsMax},
      {"99999999999999999999999999", kDeltaSecondsMax},  // clamped, never overflows
      {"", std::nullopt},
      {"-1", std::nullopt},
      {"+5", std::nullopt},
      {"1.5", std::nullopt},
      {" 5", std::nullopt},
      {"5s", std::nullopt},
  };
  for (const auto& c : cases) EXPECT_EQ(parseDeltaSeconds(c.in), c.want) << c.in;
}

TEST(SplitList, QuotedCommasAndEmptyMembers) {
  using V = std::vector<std::string_view>;
  EXPECT_EQ(splitList("a, b"), (V{"a", "b"}));
  EXPECT_EQ(splitList("private=\"a, b\", max-age=5"), (V{"private=\"a, b\"", "max-age=5"}));
  EXPECT_EQ(splitList(" ,, a ,,\t"), (V{"a"}));
  EXPECT_EQ(splitList("x=\"q\\\"uote, still\", y"), (V{"x=\"q\\\"uote, still\"", "y"}));
  EXPECT_EQ(splitList("x=\"unterminated, y"), (V{"x=\"unterminated, y"}));
  EXPECT_EQ(splitList("x=\"ends with escape\\"), (V{"x=\"ends with escape\\"}));
  EXPECT_EQ(splitList(""), V{});
}

struct ResponseCase {
  Fields fields;
  const char* want;
};

class ResponseCacheControlTest : public ::testing::TestWithParam<ResponseCase> {};

TEST_P(ResponseCacheControlTest, Parses) {
  EXPECT_EQ(describe(parseResponseCacheControl(headers(GetParam().fields))), GetParam().want);
}

INSTANTIATE_TEST_SUITE_P(
    Table, ResponseCacheControlTest,
    ::testing::Values(
        ResponseCase{{}, ""},
        ResponseCase{{{"Cache-Control", "max-age=60"}}, "max-age=60"},
        ResponseCase{{{"cache-control", "Max-Age=60"}}, "max-age=60"},       // names case-insensitive
        ResponseCase{{{"Cache-Control", "max-age=\"60\""}}, "max-age=60"},   // quoted form accepted
        ResponseCase{{{"Cache-Control", "max-age=abc"}}, "max-age=0"},       // invalid -> stale
        ResponseCase{{{"Cache-Control", "max-age"}}, "max-age=0"},
        ResponseCase{{{"Cache-Control", "max-age="}}, "max-age=0"},
        ResponseCase{{{"Cache-Control", "max-age=-5"}}, "max-age=0"},
        ResponseCase{{{"Cache-Control", "max-age=\"6\"0"}}, "max-age=0"},    // text after the quote
        ResponseCase{{{"Cache-Control", "max-age=60, max-age=60"}}, "max-age=60"},
        ResponseCase{{{"Cache-Control", "max-age=60"}, {"Cache-Control", "max-age=120"}}, "max-age=0"},  // conflict
        ResponseCase{{{"Cache-Control", "max-age=99999999999"}}, "max-age=2147483648"},
        ResponseCase{{{"Cache-Control", "s-maxage=10, max-age=60"}}, "max-age=60 s-maxage=10"},
        ResponseCase{{{"Cache-Control", "s-maxage=x"}}, "s-maxage=0"},
        ResponseCase{{{"Cache-Control", "no-cache"}}, "no-cache"},
        ResponseCase{{{"Cache-Control", "no-cache=\"Set-Cookie, X-Foo\""}}, "no-cache(set-cookie,x-foo)"},
        ResponseCase{{{"Cache-Control", "no-cache=Set-Cookie"}}, "no-cache(set-cookie)"},  // token form
        ResponseCase{{{"Cache-Control", "private"}}, "private"},
        ResponseCase{{{"Cache-Control", "private=\"Set-Cookie\""}}, "private(set-cookie)"},
        ResponseCase{{{"Cache-Control", "private=\"set-cookie\", private"}}, "private"},  // unqualified wins
        ResponseCase{{{"Cache-Control", "private=\"\""}}, "private"},
        ResponseCase{{{"Cache-Control", "private=\"unterminated"}}, "private"},
        ResponseCase{{{"Cache-Control", "public, must-revalidate, proxy-revalidate, no-transform, immutable, "
                                        "must-understand, no-store"}},
                     "no-store public must-revalidate proxy-revalidate must-understand no-transform immutable"},
        ResponseCase{{{"Cache-Control", "stale-while-revalidate=30, stale-if-error=600"}}, "swr=30 sie=600"},
        ResponseCase{{{"Cache-Control", "stale-while-revalidate=30, stale-while-revalidate=10"}}, "swr=10"},
        ResponseCase{{{"Cache-Control", "stale-if-error=abc"}}, ""},  // invalid window: ignored
        ResponseCase{{{"Cache-Control", "foo=bar, baz, community=\"UCI, x\", max-age=5"}}, "max-age=5"},
        ResponseCase{{{"Cache-Control", "max-age=5 , , ,"}}, "max-age=5"},
        ResponseCase{{{"Cache-Control", "public"}, {"Cache-Control", "max-age=5"}}, "public max-age=5"}));

TEST(RequestCacheControl, Table) {
  const struct {
    Fields fields;
    const char* want;
  } cases[] = {
      {{}, ""},
      {{{"Cache-Control", "no-cache"}}, "no-cache"},
      {{{"Pragma", "no-cache"}}, "no-cache"},                                       // §5.4
      {{{"Pragma", "no-cache"}, {"Cache-Control", "max-age=5"}}, "max-age=5"},     // CC wins
      {{{"Cache-Control", "no-store, no-transform, only-if-cached"}}, "no-store no-transform only-if-cached"},
      {{{"Cache-Control", "max-age=0"}}, "max-age=0"},
      {{{"Cache-Control", "max-age=abc, max-age=5, max-age=7"}}, "max-age=5"},     // first valid
      {{{"Cache-Control", "min-fresh=3"}}, "min-fresh=3"},
      {{{"Cache-Control", "max-stale"}}, "max-stale=2147483648"},
      {{{"Cache-Control", "max-stale=10"}}, "max-stale=10"},
      {{{"Cache-Control", "MAX-STALE=\"10\""}}, "max-stale=10"},
  };
  for (const auto& c : cases) EXPECT_EQ(describe(parseRequestCacheControl(headers(c.fields))), c.want) << c.want;
}

TEST(Expires, PresentValidInvalidConflicting) {
  constexpr std::int64_t t = 1700000000;
  const std::string d = core::formatHttpDate(t);
  const std::string d2 = core::formatHttpDate(t + 1);
  EXPECT_FALSE(parseExpires(headers({})).present);

  ExpiresField e = parseExpires(headers({{"Expires", d}}));
  EXPECT_TRUE(e.present);
  EXPECT_EQ(e.time, t);

  e = parseExpires(headers({{"Expires", "0"}}));  // invalid: present, already expired
  EXPECT_TRUE(e.present);
  EXPECT_FALSE(e.time);

  e = parseExpires(headers({{"Expires", d}, {"Expires", " " + d}}));  // same value twice
  EXPECT_EQ(e.time, t);
  e = parseExpires(headers({{"Expires", d}, {"Expires", d2}}));  // conflicting: stale
  EXPECT_TRUE(e.present);
  EXPECT_FALSE(e.time);
}

TEST(DateAndAge, Table) {
  constexpr std::int64_t t = 1700000000;
  EXPECT_EQ(parseDate(headers({{"Date", core::formatHttpDate(t)}})), t);
  EXPECT_EQ(parseDate(headers({{"Date", "Sunday, 06-Nov-94 08:49:37 GMT"}})), 784111777);  // RFC 850 form
  EXPECT_FALSE(parseDate(headers({{"Date", "yesterday"}})));
  EXPECT_FALSE(parseDate(headers({})));

  const struct {
    Fields fields;
    std::int64_t want;
  } ages[] = {
      {{}, 0},
      {{{"Age", "10"}}, 10},
      {{{"Age", " 10 "}}, 10},
      {{{"Age", "abc"}}, 0},
      {{{"Age", ""}}, 0},
      {{{"Age", "-3"}}, 0},
      {{{"Age", "10, 20"}}, 10},
      {{{"Age", "10"}, {"Age", "20"}}, 10},
      {{{"Age", "99999999999"}}, kDeltaSecondsMax},
  };
  for (const auto& a : ages) EXPECT_EQ(parseAge(headers(a.fields)), a.want);
}

TEST(Vary, NamesSortedLowerCasedUniqueAndStar) {
  using V = std::vector<std::string>;
  VaryField v = parseVary(headers({{"Vary", "Accept-Encoding"}}));
  EXPECT_FALSE(v.star);
  EXPECT_EQ(v.names, V{"accept-encoding"});

  v = parseVary(headers({{"Vary", "B, a"}, {"vary", " A ,"}}));
  EXPECT_EQ(v.names, (V{"a", "b"}));

  v = parseVary(headers({{"Vary", "Accept, *"}}));
  EXPECT_TRUE(v.star);

  v = parseVary(headers({{"Vary", ""}}));
  EXPECT_FALSE(v.star);
  EXPECT_TRUE(v.names.empty());
  EXPECT_TRUE(parseVary(headers({})).names.empty());
}

}  // namespace
}  // namespace portico::cache
