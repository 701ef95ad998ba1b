#include "origin/mime_types.h"

#include <algorithm>
#include <array>
#include <cstddef>

namespace portico::origin {
namespace {

struct MimeEntry {
  std::string_view ext;  // lower case, no dot
  std::string_view type;
};

// Sorted by `ext` so lookup is a binary search (checked at compile time below).
constexpr std::array kMimeTable{
    MimeEntry{"7z", "application/x-7z-compressed"},
    MimeEntry{"aac", "audio/aac"},
    MimeEntry{"apng", "image/apng"},
    MimeEntry{"atom", "application/atom+xml; charset=utf-8"},
    MimeEntry{"avif", "image/avif"},
    MimeEntry{"bin", "application/octet-stream"},
    MimeEntry{"bmp", "image/bmp"},
    MimeEntry{"br", "application/x-brotli"},
    MimeEntry{"bz2", "application/x-bzip2"},
    MimeEntry{"cjs", "text/javascript; charset=utf-8"},
    MimeEntry{"css", "text/css; charset=utf-8"},
    MimeEntry{"csv", "text/csv; charset=utf-8"},
    MimeEntry{"eot", "application/vnd.ms-fontobject"},
    MimeEntry{"epub", "application/epub+zip"},
    MimeEntry{"flac", "audio/flac"},
    MimeEntry{"gif", "image/gif"},
    MimeEntry{"gz", "application/gzip"},
    MimeEntry{"heic", "image/heic"},
    MimeEntry{"htm", "text/html; charset=utf-8"},
    MimeEntry{"html", "text/html; charset=utf-8"},
    MimeEntry{"ico", "image/x-icon"},
    MimeEntry{"ics", "text/calendar; charset=utf-8"},
    MimeEntry{"jpeg", "image/jpeg"},
    MimeEntry{"jpg", "image/jpeg"},
    MimeEntry{"js", "text/javascript; charset=utf-8"},
    MimeEntry{"json", "application/json; charset=utf-8"},
    MimeEntry{"jsonld", "application/ld+json; charset=utf-8"},
    MimeEntry{"m4a", "audio/mp4"},
    MimeEntry{"manifest", "text/cache-manifest; charset=utf-8"},
    MimeEntry{"map", "application/json; charset=utf-8"},
    MimeEntry{"md", "text/markdown; charset=utf-8"},
    MimeEntry{"mjs", "text/javascript; charset=utf-8"},
    MimeEntry{"mov", "video/quicktime"},
    MimeEntry{"mp3", "audio/mpeg"},
    MimeEntry{"mp4", "video/mp4"},
    MimeEntry{"mpeg", "video/mpeg"},
    MimeEntry{"oga", "audio/ogg"},
    MimeEntry{"ogg", "audio/ogg"},
    MimeEntry{"ogv", "video/ogg"},
    MimeEntry{"opus", "audio/opus"},
    MimeEntry{"otf", "font/otf"},
    MimeEntry{"pdf", "application/pdf"},
    MimeEntry{"png", "image/png"},
    MimeEntry{"rss", "application/rss+xml; charset=utf-8"},
    MimeEntry{"rtf", "application/rtf"},
    MimeEntry{"svg", "image/svg+xml; charset=utf-8"},
    MimeEntry{"svgz", "image/svg+xml"},
    MimeEntry{"tar", "application/x-tar"},
    MimeEntry{"tif", "image/tiff"},
    MimeEntry{"tiff", "image/tiff"},
    MimeEntry{"toml", "application/toml; charset=utf-8"},
    MimeEntry{"ts", "video/mp2t"},
    MimeEntry{"tsv", "text/tab-separated-values; charset=utf-8"},
    MimeEntry{"ttf", "font/ttf"},
    MimeEntry{"txt", "text/plain; charset=utf-8"},
    MimeEntry{"vtt", "text/vtt; charset=utf-8"},
    MimeEntry{"wasm", "application/wasm"},
    MimeEntry{"wav", "audio/wav"},
    MimeEntry{"weba", "audio/webm"},
    MimeEntry{"webm", "video/webm"},
    MimeEntry{"webmanifest", "application/manifest+json; charset=utf-8"},
    MimeEntry{"webp", "image/webp"},
    MimeEntry{"woff", "font/woff"},
    MimeEntry{"woff2", "font/woff2"},
    MimeEntry{"xhtml", "application/xhtml+xml; charset=utf-8"},
    MimeEntry{"xml", "application/xml; charset=utf-8"},
    MimeEntry{"xz", "application/x-xz"},
    MimeEntry{"yaml", "application/yaml; charset=utf-8"},
    MimeEntry{"yml", "application/yaml; charset=utf-8"},
    MimeEntry{"zip", "application/zip"},
    MimeEntry{"zst", "application/zstd"},
};

static_assert(std::is_sorted(kMimeTable.begin(), kMimeTable.end(),
                             [](const MimeEntry& a, const MimeEntry& b) { return a.ext < b.ext; }),
              "kMimeTable must stay sorted by extension (binary search)");

// Longest extension in the table; longer ones cannot match, so they are never lower-cased.
constexpr std::size_t kMaxExtension = 16;

char asciiLower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

}  // namespace

std::string_view mimeTypeForExtension(std::string_view ext) {
  if (ext.empty() || ext.size() > kMaxExtension) return kDefaultMimeType;
  char buf[kMaxExtension];
  for (std::size_t i = 0; i < ext.size(); ++i) buf[i] = asciiLower(ext[i]);
  const std::string_view lower(buf, ext.size());
  const auto it = std::lower_bound(kMimeTable.begin(), kMimeTable.end(), lower,
                                   [](const MimeEntry& e, std::string_view k) { return e.ext < k; });
  if (it != kMimeTable.end() && it->ext == lower) return it->type;
  return kDefaultMimeType;
}

std::string_view pathExtension(std::string_view path) {
  const std::size_t slash = path.find_last_of('/');
  const std::string_view name = slash == std::string_view::npos ? path : path.substr(slash + 1);
  const std::size_t dot = name.find_last_of('.');
  if (dot == std::string_view::npos || dot == 0) return {};
  return name.substr(dot + 1);
}

std::string_view mimeTypeForPath(std::string_view path) {
  return mimeTypeForExtension(pathExtension(path));
}
}  // namespace portico::origin
