#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

#include "origin/mime_types.h"

namespace portico::origin {
namespace {

TEST(MimeTypes, TableCoversTheWebsiteTypes) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"html", "text/html; charset=utf-8"},
      {"htm", "text/html; charset=utf-8"},
      {"css", "text/css; charset=utf-8"},
      {"js", "text/javascript; charset=utf-8"},
      {"mjs", "text/javascript; charset=utf-8"},
      {"json", "application/json; charset=utf-8"},
      {"txt", "text/plain; charset=utf-8"},
      {"xml", "application/xml; charset=utf-8"},
      {"svg", "image/svg+xml; charset=utf-8"},
      {"png", "image/png"},
      {"jpg", "image/jpeg"},
      {"jpeg", "image/jpeg"},
      {"gif", "image/gif"},
      {"webp", "image/webp"},
      {"avif", "image/avif"},
      {"ico", "image/x-icon"},
      {"woff", "font/woff"},
      {"woff2", "font/woff2"},
      {"ttf", "font/ttf"},
      {"otf", "font/otf"},
      {"pdf", "application/pdf"},
      {"wasm", "application/wasm"},
      {"mp4", "video/mp4"},
      {"webm", "video/webm"},
      {"mp3", "audio/mpeg"},
      {"map", "application/json; charset=utf-8"},
      {"csv", "text/csv; charset=utf-8"},
      {"md", "text/markdown; charset=utf-8"},
      {"gz", "application/gzip"},
      {"zip", "application/zip"},
      {"webmanifest", "application/manifest+json; charset=utf-8"},
  };
  for (const auto& [ext, type] : cases) {
    EXPECT_EQ(mimeTypeForExtension(ext), type) << ext;
  }
}

TEST(MimeTypes, CaseInsensitive) {
  EXPECT_EQ(mimeTypeForExtension("HTML"), "text/html; charset=utf-8");
  EXPECT_EQ(mimeTypeForExtension("Png"), "image/png");
  EXPECT_EQ(mimeTypeForPath("/IMG/PHOTO.JPEG"), "image/jpeg");
}

TEST(MimeTypes, UnknownIsOctetStream) {
  EXPECT_EQ(mimeTypeForExtension(""), kDefaultMimeType);
  EXPECT_EQ(mimeTypeForExtension("exe-ish"), "application/octet-stream");
  EXPECT_EQ(mimeTypeForExtension("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"), kDefaultMimeType);
  EXPECT_EQ(mimeTypeForExtension("html "), kDefaultMimeType);
  EXPECT_EQ(mimeTypeForPath("/LICENSE"), kDefaultMimeType);
}

TEST(MimeTypes, ExtensionOfTheLastSegmentOnly) {
  EXPECT_EQ(pathExtension("a/b.min.js"), "js");
  EXPECT_EQ(pathExtension("/dir.d/README"), "");
  EXPECT_EQ(pathExtension(".htaccess"), "");
  EXPECT_EQ(pathExtension("/x/.env"), "");
  EXPECT_EQ(pathExtension("archive.tar.gz"), "gz");
  EXPECT_EQ(pathExtension("trailing."), "");
  EXPECT_EQ(mimeTypeForPath("/dir.html/file"), kDefaultMimeType);
  EXPECT_EQ(mimeTypeForPath("/assets/app.css"), "text/css; charset=utf-8");
}

}  // namespace
}  // namespace portico::origin
