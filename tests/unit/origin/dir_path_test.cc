#include <gtest/gtest.h>

#include <string>

#include "origin/dir_path.h"

namespace portico::origin {
namespace {

PathVerdict verdictOf(const std::string& path) { return mapObjectPath(path).verdict; }

TEST(DirPath, PercentDecode) {
  EXPECT_EQ(percentDecodePath("/a%20b").value(), "/a b");
  EXPECT_EQ(percentDecodePath("/%E2%82%ac").value(), "/\xE2\x82\xAC");
  EXPECT_EQ(percentDecodePath("/a+b").value(), "/a+b");
  EXPECT_FALSE(percentDecodePath("/a%").has_value());
  EXPECT_FALSE(percentDecodePath("/a%4").has_value());
  EXPECT_FALSE(percentDecodePath("/a%zz").has_value());
  EXPECT_FALSE(percentDecodePath("/a%00b").has_value());
  EXPECT_FALSE(percentDecodePath(std::string("/a\0b", 4)).has_value());
}

TEST(DirPath, MapsObjects) {
  MappedPath m = mapObjectPath("/index.html");
  EXPECT_EQ(m.verdict, PathVerdict::Ok);
  EXPECT_EQ(m.relative, "index.html");
  m = mapObjectPath("/assets/css/site%20main.css");
  EXPECT_EQ(m.verdict, PathVerdict::Ok);
  EXPECT_EQ(m.relative, "assets/css/site main.css");
  m = mapObjectPath("/./a/./b.txt");
  EXPECT_EQ(m.verdict, PathVerdict::Ok);
  EXPECT_EQ(m.relative, "a/b.txt");
  // Names that merely contain dots are ordinary.
  m = mapObjectPath("/a..b/...");
  EXPECT_EQ(m.verdict, PathVerdict::Ok);
  EXPECT_EQ(m.relative, "a..b/...");
  m = mapObjectPath("/win\\file.txt");
  EXPECT_EQ(m.verdict, PathVerdict::Ok);
  EXPECT_EQ(m.relative, "win\\file.txt");
}

TEST(DirPath, FoldersAreDirectories) {
  EXPECT_EQ(verdictOf("/"), PathVerdict::Directory);
  EXPECT_EQ(verdictOf("/docs/"), PathVerdict::Directory);
  EXPECT_EQ(verdictOf("/docs/."), PathVerdict::Directory);
  EXPECT_EQ(verdictOf("/."), PathVerdict::Directory);
  EXPECT_EQ(verdictOf("/%2e"), PathVerdict::Directory);
}

TEST(DirPath, TraversalIsForbidden) {
  for (const char* p : {"/..", "/../etc/passwd", "/a/../b", "/a/..", "/%2e%2e/x", "/%2E%2e/x",
                        "/%2e./x", "/.%2E/x", "/a/%2E%2E/%2e%2e/x", "/..%2fx", "/..%2Fx",
                        "/a%2f..%2f..%2fx", "/..\\x", "/a\\..\\..\\x", "/a\\..", "//etc/passwd",
                        "/a//b", "/%2fetc/passwd", "/%2F%2Fx"}) {
    EXPECT_EQ(verdictOf(p), PathVerdict::Forbidden) << p;
  }
}

TEST(DirPath, MalformedIsBadRequest) {
  for (const std::string& p : {std::string(""), std::string("index.html"), std::string("/a%"),
                              std::string("/a%g0"), std::string("/%00"), std::string("/a%00.html"),
                              std::string("/a\0b", 4), std::string("/") + std::string(5000, 'a')}) {
    EXPECT_EQ(verdictOf(p), PathVerdict::BadRequest) << p.size();
  }
  // Just at the limit is still a path (the filesystem may then say ENAMETOOLONG -> 404).
  EXPECT_EQ(verdictOf("/" + std::string(kMaxDecodedPath - 1, 'a')), PathVerdict::Ok);
}

TEST(DirPath, IsWithinRootComparesWholeSegments) {
  EXPECT_TRUE(isWithinRoot("/srv/site", "/srv/site"));
  EXPECT_TRUE(isWithinRoot("/srv/site", "/srv/site/a/b.html"));
  EXPECT_FALSE(isWithinRoot("/srv/site", "/srv/site2/x"));
  EXPECT_FALSE(isWithinRoot("/srv/site", "/srv/sit"));
  EXPECT_FALSE(isWithinRoot("/srv/site", "/etc/passwd"));
  EXPECT_FALSE(isWithinRoot("", "/etc/passwd"));
  EXPECT_TRUE(isWithinRoot("/", "/etc/passwd"));
}

}  // namespace
}  // namespace portico::origin
