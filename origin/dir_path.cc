#include "origin/dir_path.h"

#include <vector>

namespace portico::origin {
namespace {

int hexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// True if `segment`, split on backslashes, has a ".." part ("..", "..\\x", "a\\..").
bool climbs(std::string_view segment) {
  while (true) {
    const std::size_t bs = segment.find('\\');
    if (segment.substr(0, bs) == "..") return true;
    if (bs == std::string_view::npos) return false;
    segment.remove_prefix(bs + 1);
  }
}

}  // namespace

std::string_view toString(PathVerdict v) {
  switch (v) {
    case PathVerdict::Ok: return "ok";
    case PathVerdict::Directory: return "directory";
    case PathVerdict::BadRequest: return "bad_request";
    case PathVerdict::Forbidden: return "forbidden";
  }
  return "unknown";
}

std::optional<std::string> percentDecodePath(std::string_view encoded) {
  std::string out;
  out.reserve(encoded.size());
  for (std::size_t i = 0; i < encoded.size(); ++i) {
    char c = encoded[i];
    if (c == '%') {
      if (i + 2 >= encoded.size()) return std::nullopt;  // "%" or "%4" at the end
      const int hi = hexValue(encoded[i + 1]);
      const int lo = hexValue(encoded[i + 2]);
      if (hi < 0 || lo < 0) return std::nullopt;
      c = static_cast<char>(hi * 16 + lo);
      i += 2;
    }
    if (c == '\0') return std::nullopt;
    out.push_back(c);
  }
  return out;
}

MappedPath mapObjectPath(std::string_view encoded_path) {
  MappedPath result;
  // Three encoded bytes per decoded byte at most; anything longer cannot decode short enough.
  if (encoded_path.empty() || encoded_path.front() != '/' ||
      encoded_path.size() > 3 * kMaxDecodedPath) {
    return result;  // BadRequest
  }
  std::optional<std::string> decoded = percentDecodePath(encoded_path);
  if (!decoded || decoded->size() > kMaxDecodedPath) return result;

  // Split after the leading '/'. Decoding first means an encoded slash separates segments too,
  // so "..%2f" is seen as a ".." segment.
  std::string_view rest(*decoded);
  rest.remove_prefix(1);
  std::vector<std::string_view> segments;
  bool directory = rest.empty();
  while (!rest.empty()) {
    const std::size_t slash = rest.find('/');
    const std::string_view seg = rest.substr(0, slash);
    const bool last = slash == std::string_view::npos;
    if (seg.empty()) {
      // `rest` is non-empty, so an empty segment means "//": an absolute path in the path.
      result.verdict = PathVerdict::Forbidden;
      return result;
    }
    if (climbs(seg)) {
      result.verdict = PathVerdict::Forbidden;
      return result;
    }
    if (seg == ".") {
      if (last) directory = true;  // "/a/." names the folder a
    } else {
      segments.push_back(seg);
    }
    if (last) break;
    rest.remove_prefix(slash + 1);
    if (rest.empty()) directory = true;  // trailing '/'
  }
  if (directory || segments.empty()) {
    result.verdict = PathVerdict::Directory;
    return result;
  }
  for (std::string_view seg : segments) {
    if (!result.relative.empty()) result.relative.push_back('/');
    result.relative.append(seg);
  }
  result.verdict = PathVerdict::Ok;
  return result;
}

bool isWithinRoot(std::string_view root, std::string_view resolved) {
  if (root.empty() || resolved.size() < root.size()) return false;
  if (resolved.substr(0, root.size()) != root) return false;
  if (resolved.size() == root.size()) return true;
  // Root "/" contains everything absolute; otherwise the next byte must start a new segment.
  return root.back() == '/' || resolved[root.size()] == '/';
}

}  // namespace portico::origin
