// Answering from a stored response (cache/validation.h): If-None-Match / If-Modified-Since on a
// hit, the 304 head, single byte ranges with If-Range, the revalidation request, and the merge
// of a 304 into the stored head.
#include "cache/validation.h"

#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "proxy/core/http_date.h"

namespace portico::cache {
namespace {

using Fields = std::vector<std::pair<std::string, std::string>>;

constexpr std::int64_t kT0 = 1700000000;
std::string date(std::int64_t offset_s) { return core::formatHttpDate(kT0 + offset_s); }

core::RequestHead request(std::string method, const Fields& fields) {
  core::RequestHead r;
  r.method = std::move(method);
  r.path = "/f";
  for (const auto& [n, v] : fields) r.headers.add(n, v);
  return r;
}

// A stored 10-byte object with the given validators and stored header fields.
CachedObject stored(std::string etag, std::string last_modified, const Fields& fields = {}) {
  CachedObject o;
  o.body = std::make_shared<const std::string>("0123456789");
  o.meta.etag = std::move(etag);
  o.meta.last_modified = std::move(last_modified);
  o.meta.response_time = core::WallTime{std::chrono::seconds(kT0)};
  for (const auto& [n, v] : fields) o.head.headers.add(n, v);
  return o;
}

TEST(Etags, WeakComparisonAndIfNoneMatchLists) {
  EXPECT_TRUE(weakEtagEquals("\"a\"", "W/\"a\""));
  EXPECT_TRUE(weakEtagEquals("W/\"a\"", "W/\"a\""));
  EXPECT_FALSE(weakEtagEquals("\"a\"", "\"b\""));
  EXPECT_FALSE(weakEtagEquals("", ""));

  const struct {
    const char* list;
    const char* etag;
    bool want;
  } cases[] = {
      {"\"v1\"", "\"v1\"", true},
      {"W/\"v1\"", "\"v1\"", true},
      {"\"v1\"", "W/\"v1\"", true},
      {"\"x\", W/\"v1\"", "\"v1\"", true},
      {" \"x,y\" ,\"v1\"", "\"v1\"", true},  // ',' inside a tag
      {"*", "\"v1\"", true},
      {"*", "", true},                        // any stored response
      {"\"v1\"", "", false},                  // stored without ETag
      {"\"v2\"", "\"v1\"", false},
      {"v1", "\"v1\"", false},                // unquoted: malformed
      {"\"v1", "\"v1\"", false},              // unterminated
      {"", "\"v1\"", false},
  };
  for (const auto& c : cases) EXPECT_EQ(ifNoneMatchMatches(c.list, c.etag), c.want) << c.list << " vs " << c.etag;
}

TEST(EvaluateConditional, Table) {
  using O = ConditionalOutcome;
  const CachedObject with_both = stored("\"v1\"", date(-100), {{"Date", date(0)}});
  const CachedObject etag_only = stored("\"v1\"", "", {{"Date", date(0)}});
  const CachedObject date_only = stored("", "", {{"Date", date(0)}});
  const CachedObject nothing = stored("", "");  // falls back to response_time (kT0)
  const CachedObject bad_lm = stored("", "not a date");
  const struct {
    const char* name;
    const char* method;
    Fields fields;
    const CachedObject* object;
    O want;
  } cases[] = {
      {"no_conditions", "GET", {}, &with_both, O::None},
      {"inm_match", "GET", {{"If-None-Match", "\"v1\""}}, &with_both, O::NotModified},
      {"inm_weak_match", "HEAD", {{"If-None-Match", "W/\"v1\""}}, &with_both, O::NotModified},
      {"inm_list_lines", "GET", {{"If-None-Match", "\"a\""}, {"if-none-match", "\"v1\""}}, &with_both, O::NotModified},
      {"inm_star", "GET", {{"If-None-Match", "*"}}, &date_only, O::NotModified},
      {"inm_miss", "GET", {{"If-None-Match", "\"v2\""}}, &with_both, O::None},
      {"inm_beats_ims", "GET", {{"If-None-Match", "\"v2\""}, {"If-Modified-Since", date(0)}}, &with_both, O::None},
      {"ims_equal", "GET", {{"If-Modified-Since", date(-100)}}, &with_both, O::NotModified},
      {"ims_later", "GET", {{"If-Modified-Since", date(50)}}, &with_both, O::NotModified},
      {"ims_earlier", "GET", {{"If-Modified-Since", date(-101)}}, &with_both, O::None},
      {"ims_invalid", "GET", {{"If-Modified-Since", "yesterday"}}, &with_both, O::None},
      {"ims_twice", "GET", {{"If-Modified-Since", date(0)}, {"If-Modified-Since", date(0)}}, &with_both, O::None},
      {"ims_uses_date_without_lm", "GET", {{"If-Modified-Since", date(0)}}, &etag_only, O::NotModified},
      {"ims_before_date_without_lm", "GET", {{"If-Modified-Since", date(-1)}}, &etag_only, O::None},
      {"ims_uses_response_time", "GET", {{"If-Modified-Since", date(0)}}, &nothing, O::NotModified},
      {"ims_unreadable_lm", "GET", {{"If-Modified-Since", date(0)}}, &bad_lm, O::None},
      {"post_ignored", "POST", {{"If-None-Match", "\"v1\""}}, &with_both, O::None},
      {"if_match_forwarded", "GET", {{"If-Match", "\"v1\""}}, &with_both, O::ForwardToOrigin},
      {"ius_forwarded", "GET", {{"If-Unmodified-Since", date(0)}}, &with_both, O::ForwardToOrigin},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(evaluateConditional(request(c.method, c.fields), *c.object), c.want) << c.name;
  }
}

TEST(NotModifiedHead, KeepsOnlyTheListedFields) {
  core::ResponseHead s;
  for (const auto& [n, v] : Fields{{"Cache-Control", "max-age=60"}, {"Content-Type", "text/html"},
                                   {"Content-Length", "10"}, {"ETag", "\"v1\""}, {"Last-Modified", date(-5)},
                                   {"Date", date(0)}, {"Expires", date(60)}, {"Vary", "Accept-Encoding"},
                                   {"Content-Location", "/f.html"}, {"X-Custom", "1"}}) {
    s.headers.add(n, v);
  }
  core::ResponseHead h = notModifiedHead(s);
  EXPECT_EQ(h.status, 304);
  for (const char* kept : {"Cache-Control", "ETag", "Date", "Expires", "Vary", "Content-Location"}) {
    EXPECT_TRUE(h.headers.has(kept)) << kept;
  }
  for (const char* dropped : {"Content-Type", "Content-Length", "Last-Modified", "X-Custom"}) {
    EXPECT_FALSE(h.headers.has(dropped)) << dropped;
  }
  s.headers.remove("ETag");
  EXPECT_TRUE(notModifiedHead(s).headers.has("Last-Modified"));  // guides the update when no ETag
}

TEST(ParseRange, Table) {
  using K = RangeKind;
  const struct {
    const char* value;
    std::uint64_t size;
    K kind;
    std::uint64_t first = 0;
    std::uint64_t last = 0;
  } cases[] = {
      {"bytes=0-4", 10, K::Single, 0, 4},
      {"bytes=5-", 10, K::Single, 5, 9},
      {"bytes=-3", 10, K::Single, 7, 9},
      {"bytes=-30", 10, K::Single, 0, 9},       // suffix longer than the body: all of it
      {"bytes=8-100", 10, K::Single, 8, 9},     // last clamped
      {"Bytes = 2 - 3", 10, K::Single, 2, 3},   // case and OWS
      {"bytes=9-9", 10, K::Single, 9, 9},
      {"bytes=10-", 10, K::Unsatisfiable},
      {"bytes=10-20", 10, K::Unsatisfiable},
      {"bytes=-0", 10, K::Unsatisfiable},
      {"bytes=0-", 0, K::Unsatisfiable},        // empty body
      {"bytes=-5", 0, K::Unsatisfiable},
      {"bytes=5-2", 10, K::None},               // invalid: ignored
      {"bytes=0-1,4-5", 10, K::None},           // several ranges: whole body
      {"bytes=a-b", 10, K::None},
      {"bytes=-", 10, K::None},
      {"bytes=1", 10, K::None},
      {"items=0-1", 10, K::None},               // other unit
      {"bytes 0-1", 10, K::None},
      {"", 10, K::None},
      {"bytes=99999999999999999999-", 10, K::None},  // does not fit: ignored, no overflow
  };
  for (const auto& c : cases) {
    const ByteRange r = parseByteRange(c.value, c.size);
    EXPECT_EQ(r.kind, c.kind) << c.value;
    if (c.kind == K::Single) {
      EXPECT_EQ(r.first, c.first) << c.value;
      EXPECT_EQ(r.last, c.last) << c.value;
    }
  }
  EXPECT_EQ(contentRange(parseByteRange("bytes=2-5", 10), 10), "bytes 2-5/10");
  EXPECT_EQ(parseByteRange("bytes=2-5", 10).length(), 4u);
  EXPECT_EQ(unsatisfiedContentRange(10), "bytes */10");
}

TEST(RequestedRange, MethodFieldCountAndIfRange) {
  const CachedObject strong = stored("\"v1\"", date(-100));
  const CachedObject weak = stored("W/\"v1\"", "");
  const struct {
    const char* name;
    const char* method;
    Fields fields;
    const CachedObject* object;
    RangeKind want;
  } cases[] = {
      {"plain", "GET", {{"Range", "bytes=0-1"}}, &strong, RangeKind::Single},
      {"head_ignored", "HEAD", {{"Range", "bytes=0-1"}}, &strong, RangeKind::None},
      {"two_fields_ignored", "GET", {{"Range", "bytes=0-1"}, {"Range", "bytes=2-3"}}, &strong, RangeKind::None},
      {"unsatisfiable", "GET", {{"Range", "bytes=50-"}}, &strong, RangeKind::Unsatisfiable},
      {"if_range_etag_match", "GET", {{"Range", "bytes=0-1"}, {"If-Range", "\"v1\""}}, &strong, RangeKind::Single},
      {"if_range_etag_other", "GET", {{"Range", "bytes=0-1"}, {"If-Range", "\"v2\""}}, &strong, RangeKind::None},
      {"if_range_weak_never", "GET", {{"Range", "bytes=0-1"}, {"If-Range", "W/\"v1\""}}, &weak, RangeKind::None},
      {"if_range_stored_weak", "GET", {{"Range", "bytes=0-1"}, {"If-Range", "\"v1\""}}, &weak, RangeKind::None},
      {"if_range_date_equal", "GET", {{"Range", "bytes=0-1"}, {"If-Range", date(-100)}}, &strong, RangeKind::Single},
      {"if_range_date_other", "GET", {{"Range", "bytes=0-1"}, {"If-Range", date(-99)}}, &strong, RangeKind::None},
      {"if_range_date_no_lm", "GET", {{"Range", "bytes=0-1"}, {"If-Range", date(-100)}}, &weak, RangeKind::None},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(requestedRange(request(c.method, c.fields), *c.object).kind, c.want) << c.name;
  }
}

TEST(Revalidation, RequestHeadersComeFromTheStoredValidators) {
  core::HeaderMap h;
  h.add("If-None-Match", "\"client\"");
  h.add("If-Modified-Since", date(-1));
  h.add("If-Match", "\"x\"");
  h.add("Range", "bytes=0-1");
  h.add("Accept", "*/*");
  ObjectMeta m;
  m.etag = "\"v1\"";
  m.last_modified = date(-100);
  setRevalidationHeaders(h, m);
  EXPECT_EQ(h.getAll("If-None-Match"), (std::vector<std::string_view>{"\"v1\""}));
  EXPECT_EQ(h.getAll("If-Modified-Since"), (std::vector<std::string_view>{date(-100)}));
  EXPECT_FALSE(h.has("If-Match"));
  EXPECT_FALSE(h.has("Range"));
  EXPECT_TRUE(h.has("Accept"));

  ObjectMeta none;
  setRevalidationHeaders(h, none);
  EXPECT_FALSE(h.has("If-None-Match"));
  EXPECT_FALSE(h.has("If-Modified-Since"));
}

TEST(Revalidation, NotModifiedSelectsTheStoredResponse) {
  ObjectMeta m;
  m.etag = "\"v1\"";
  m.last_modified = date(-100);
  ObjectMeta weak_meta;
  weak_meta.etag = "W/\"v1\"";
  auto head304 = [](const Fields& f) {
    core::ResponseHead r;
    r.status = 304;
    for (const auto& [n, v] : f) r.headers.add(n, v);
    return r;
  };
  EXPECT_TRUE(notModifiedSelects(m, head304({{"ETag", "\"v1\""}})));
  EXPECT_FALSE(notModifiedSelects(m, head304({{"ETag", "\"v2\""}})));
  EXPECT_TRUE(notModifiedSelects(m, head304({{"ETag", "W/\"v1\""}})));  // weak: weak comparison
  EXPECT_FALSE(notModifiedSelects(weak_meta, head304({{"ETag", "\"v1\""}})));  // strong vs stored weak
  EXPECT_FALSE(notModifiedSelects(ObjectMeta{}, head304({{"ETag", "\"v1\""}})));
  EXPECT_TRUE(notModifiedSelects(m, head304({{"Last-Modified", date(-100)}})));
  EXPECT_FALSE(notModifiedSelects(m, head304({{"Last-Modified", date(-50)}})));
  EXPECT_TRUE(notModifiedSelects(m, head304({})));
}

TEST(Revalidation, MergeUpdatesAllButProtectedFields) {
  const CachedObject s = stored("\"v1\"", date(-100),
                                {{"Date", date(-600)},
                                 {"Cache-Control", "max-age=60"},
                                 {"Content-Length", "10"},
                                 {"Content-Type", "text/plain"},
                                 {"Vary", "Accept-Encoding"},
                                 {"X-Multi", "a"},
                                 {"X-Multi", "b"}});
  core::ResponseHead n;
  n.status = 304;
  for (const auto& [k, v] : Fields{{"Date", date(0)},
                                   {"Cache-Control", "max-age=120"},
                                   {"ETag", "\"v1\""},
                                   {"Content-Length", "0"},
                                   {"Vary", "*"},
                                   {"Set-Cookie", "s=1"},
                                   {"Age", "3"},
                                   {"Connection", "X-Hop"},
                                   {"X-Hop", "1"},
                                   {"Keep-Alive", "timeout=5"},
                                   {"X-Multi", "c"},
                                   {"X-New", "n"}}) {
    n.headers.add(k, v);
  }
  const std::optional<core::ResponseHead> m = mergeNotModified(s.head, s.meta, n);
  ASSERT_TRUE(m);
  EXPECT_EQ(m->status, 200);
  EXPECT_EQ(m->headers.get("Date"), date(0));
  EXPECT_EQ(m->headers.get("Cache-Control"), "max-age=120");
  EXPECT_EQ(m->headers.get("Content-Length"), "10");
  EXPECT_EQ(m->headers.get("Content-Type"), "text/plain");
  EXPECT_EQ(m->headers.get("Vary"), "Accept-Encoding");
  EXPECT_EQ(m->headers.getAll("X-Multi"), (std::vector<std::string_view>{"c"}));
  EXPECT_EQ(m->headers.get("X-New"), "n");
  EXPECT_EQ(m->headers.get("ETag"), "\"v1\"");
  for (const char* absent : {"Set-Cookie", "Age", "Connection", "X-Hop", "Keep-Alive"}) {
    EXPECT_FALSE(m->headers.has(absent)) << absent;
  }

  n.headers.set("ETag", "\"v2\"");  // a different representation: no merge, fetch in full
  EXPECT_FALSE(mergeNotModified(s.head, s.meta, n));
}

}  // namespace
}  // namespace portico::cache
