#include <gtest/gtest.h>

#include "proxy/core/header_map.h"
#include "proxy/core/http_date.h"
#include "proxy/core/http_message.h"

namespace portico::core {
namespace {

TEST(HeaderMap, CaseInsensitiveMultiValue) {
  HeaderMap h;
  h.add("Accept", "a");
  h.add("accept", "b");
  h.add("Host", "x");
  EXPECT_EQ(h.count("ACCEPT"), 2u);
  EXPECT_EQ(*h.get("accept"), "a");
  EXPECT_EQ(*h.getJoined("Accept"), "a, b");
  h.set("ACCEPT", "c");
  EXPECT_EQ(h.count("accept"), 1u);
  EXPECT_EQ(h.entries()[0].value, "c");
  EXPECT_EQ(h.remove("host"), 1u);
  EXPECT_FALSE(h.has("Host"));
}

TEST(HeaderMap, ListHasToken) {
  EXPECT_TRUE(listHasToken("keep-alive, Upgrade", "upgrade"));
  EXPECT_FALSE(listHasToken("keep-alive, Upgrade2", "upgrade"));
  EXPECT_TRUE(listHasToken(" close ", "close"));
}

TEST(HttpDate, RoundTripAndLegacyForms) {
  EXPECT_EQ(formatHttpDate(784111777), "Sun, 06 Nov 1994 08:49:37 GMT");
  EXPECT_EQ(parseHttpDate("Sun, 06 Nov 1994 08:49:37 GMT"), 784111777);
  EXPECT_EQ(parseHttpDate("Sunday, 06-Nov-94 08:49:37 GMT"), 784111777);
  EXPECT_EQ(parseHttpDate("Sun Nov  6 08:49:37 1994"), 784111777);
  EXPECT_FALSE(parseHttpDate("yesterday").has_value());
  EXPECT_FALSE(parseHttpDate("Sun, 06 Nov 1994 25:49:37 GMT").has_value());
}

TEST(HttpMessage, SplitTargetAndHost) {
  std::string path, query, auth;
  ASSERT_TRUE(splitTarget("/a/b?x=1&y", path, query, nullptr));
  EXPECT_EQ(path, "/a/b");
  EXPECT_EQ(query, "x=1&y");
  ASSERT_TRUE(splitTarget("http://Example.com:80/p?q", path, query, &auth));
  EXPECT_EQ(auth, "Example.com:80");
  EXPECT_EQ(path, "/p");
  EXPECT_FALSE(splitTarget("*", path, query, nullptr));
  EXPECT_EQ(normalizeHost("WWW.Example.TEST:8080"), "www.example.test");
  EXPECT_EQ(normalizeHost("[::1]:80"), "[::1]");
  EXPECT_EQ(normalizeHost("bad host"), "");
  EXPECT_EQ(normalizeHost("a/b"), "");
}

}  // namespace
}  // namespace portico::core
