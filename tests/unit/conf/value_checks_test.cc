// Pure value parsers and checks: sizes, listen addresses, URLs, host names, the TOML guard.
#include "conf/value_checks.h"

#include <gtest/gtest.h>

#include "conf/config_parser.h"
#include "conf/toml_limits.h"

namespace portico::conf {
namespace {

struct SizeCase {
  const char* text;
  bool ok;
  std::uint64_t bytes;
};

TEST(ParseSizeTest, UnitsAndMalformed) {
  const SizeCase cases[] = {
      {"512", true, 512},
      {"0", true, 0},
      {"512B", true, 512},
      {"10KB", true, 10000},
      {"10MB", true, 10000000},
      {"2GB", true, 2000000000},
      {"64KiB", true, 64 << 10},
      {"256MiB", true, 256u << 20},
      {"1GiB", true, 1u << 30},
      {"64 KiB", true, 64 << 10},
      {"18446744073709551615", true, 18446744073709551615ull},
      {"18446744073709551616", false, 0},  // overflow
      {"17179869184GiB", false, 0},        // overflow after the unit
      {"", false, 0},
      {"MiB", false, 0},
      {"-1", false, 0},
      {"1.5MiB", false, 0},
      {"10mib", false, 0},
      {"10 ", false, 0},
      {"10  MiB", false, 0},
      {"10TiB", false, 0},
      {" 10", false, 0},
  };
  for (const SizeCase& c : cases) {
    std::uint64_t out = 7;
    EXPECT_EQ(parseSize(c.text, out), c.ok) << c.text;
    EXPECT_EQ(out, c.ok ? c.bytes : 7) << c.text;
  }
}

struct ListenCase {
  const char* text;
  bool ok;
  const char* host;
  int port;
};

TEST(ParseListenAddressTest, Forms) {
  const ListenCase cases[] = {
      {"127.0.0.1:8080", true, "127.0.0.1", 8080},
      {"0.0.0.0:0", true, "0.0.0.0", 0},
      {":8080", true, "0.0.0.0", 8080},
      {"[::1]:443", true, "::1", 443},
      {"[::]:65535", true, "::", 65535},
      {"[2001:db8::1]:80", true, "2001:db8::1", 80},
      {"localhost:80", true, "127.0.0.1", 80},
      {"127.0.0.1:65536", false, "", 0},
      {"127.0.0.1:", false, "", 0},
      {"127.0.0.1", false, "", 0},
      {"127.0.0.1:-1", false, "", 0},
      {"127.0.0.1:80x", false, "", 0},
      {"256.0.0.1:80", false, "", 0},
      {"1.2.3:80", false, "", 0},
      {"::1:80", false, "", 0},  // IPv6 needs brackets
      {"[::1]80", false, "", 0},
      {"[::1:80", false, "", 0},
      {"[]:80", false, "", 0},
      {"example.com:80", false, "", 0},
      {"", false, "", 0},
  };
  for (const ListenCase& c : cases) {
    ListenAddress a;
    EXPECT_EQ(parseListenAddress(c.text, a), c.ok) << c.text;
    if (!c.ok) continue;
    EXPECT_EQ(a.host, c.host) << c.text;
    EXPECT_EQ(a.port, c.port) << c.text;
  }
  EXPECT_EQ((ListenAddress{"::1", 8080}).toString(), "[::1]:8080");
  EXPECT_EQ((ListenAddress{"127.0.0.1", 0}).toString(), "127.0.0.1:0");
}

TEST(CheckHttpUrlTest, AcceptsHttpAndHttpsOnly) {
  for (const char* ok : {"http://127.0.0.1:9001", "https://s3.example.test", "http://h/base/path", "http://[::1]:80/",
                         "http://localhost"}) {
    EXPECT_EQ(checkHttpUrl(ok), "") << ok;
  }
  for (const char* bad : {"ftp://h", "127.0.0.1:9001", "http://", "http://:80", "http://h:0", "http://h:70000",
                          "http://h:", "http://u:p@h", "http://h/a b", "http://h/?q=1", "http://[zz]:1"}) {
    EXPECT_NE(checkHttpUrl(bad), "") << bad;
  }
}

TEST(CheckHostNameTest, PlainLowerCaseHostsOnly) {
  for (const char* ok : {"localhost", "www.example.test", "127.0.0.1", "a-b_c.test", "[::1]"}) {
    EXPECT_EQ(checkHostName(ok), "") << ok;
  }
  for (const char* bad : {"", "a.test:80", "*.example.test", "a b", "a/b", "[zz]", "UPPER.test"}) {
    EXPECT_NE(checkHostName(bad), "") << bad;
  }
}

TEST(ResolvePathTest, RelativeAgainstBase) {
  EXPECT_EQ(resolvePath("/base", "deploy/site"), "/base/deploy/site");
  EXPECT_EQ(resolvePath("/base/conf", "../site"), "/base/site");
  EXPECT_EQ(resolvePath("/base", "/abs/site"), "/abs/site");
}

TEST(TomlLimitsTest, BracketsInsideStringsAndCommentsDoNotCount) {
  int line = -1;
  const std::string many(100, '[');
  const std::string text = "a = \"" + many + "\"\nb = '" + many + "'\n# " + many + "\nc = \"\"\"\n" + many +
                           "\n\"\"\"\nd = [[1], [2]]\ne = 1.5\n";
  EXPECT_EQ(checkTomlLimits(text, line), "");
  EXPECT_EQ(line, 0);
}

TEST(TomlLimitsTest, ReportsTheLine) {
  int line = 0;
  TomlLimits limits;
  limits.max_nesting = 3;
  EXPECT_NE(checkTomlLimits("a = 1\nb = [[[1]]]\nc = [[[[1]]]]\n", line, limits), "");
  EXPECT_EQ(line, 3);
  limits.max_bytes = 4;
  EXPECT_NE(checkTomlLimits("a = 12", line, limits), "");
}

TEST(EditDistanceTest, Basics) {
  EXPECT_EQ(editDistance("", ""), 0u);
  EXPECT_EQ(editDistance("abc", ""), 3u);
  EXPECT_EQ(editDistance("defualt_ttl_s", "default_ttl_s"), 2u);
  EXPECT_EQ(editDistance("listen", "listen"), 0u);
  EXPECT_EQ(editDistance("kitten", "sitting"), 3u);
}

}  // namespace
}  // namespace portico::conf
