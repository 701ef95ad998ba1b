#pragma once
// Path safety for the dir origin: URL path -> a path relative to the served root, or a refusal.
// Pure functions, no I/O, safe from any thread. The filesystem half of the check (symlinks
// that resolve outside the root) is isWithinRoot(), applied by DirOriginClient to realpath().
//
// Why so strict: the request path is attacker-controlled and the root is a real directory on
// the proxy's disk. Every way of naming something above the root is refused *before* any
// filesystem call, so no answer can depend on what exists outside the root:
//  - ".." in any form: raw, percent-encoded ("%2e%2e", "%2E%2e"), or reached through an encoded
//    slash ("..%2fx" decodes to "../x");
//  - ".." between backslashes ("..\\x"): a backslash is an ordinary filename character on
//    POSIX, but a name that would climb on another OS is refused anyway;
//  - an empty segment ("//etc/passwd", "/a//b"): an absolute path spelled inside the path;
//  - NUL, raw or "%00" (C APIs would truncate the name there), and malformed escapes.
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace portico::origin {

enum class PathVerdict {
  Ok,          // `relative` names an object ("a/b.html")
  Directory,   // "/" or a path ending in '/' (or "/."): a "folder", never an object -> 404
  BadRequest,  // not a path: no leading '/', malformed %-escape, NUL, too long -> 400
  Forbidden,   // tries to leave the root -> 403 (the answer names no detail)
};
std::string_view toString(PathVerdict v);

struct MappedPath {
  PathVerdict verdict = PathVerdict::BadRequest;
  // With Ok: decoded, normalised ('.' segments dropped), no leading or trailing '/', never
  // empty, never containing "..", "//" or NUL.
  std::string relative;
};

// Longest decoded path accepted (PATH_MAX on Linux); longer is BadRequest.
inline constexpr std::size_t kMaxDecodedPath = 4096;

// Percent-decodes a URL path ('+' stays '+': it is only special in queries). nullopt on a
// malformed escape ("%", "%4", "%zz") or on a NUL byte, raw or encoded.
std::optional<std::string> percentDecodePath(std::string_view encoded);

// `encoded_path` is OriginRequest::path: percent-encoded, should start with '/'.
MappedPath mapObjectPath(std::string_view encoded_path);

// True if `resolved` (a realpath) is `root` (a realpath) or lies under it. The comparison is on
// whole segments: root "/srv/site" does not contain "/srv/site2/x".
bool isWithinRoot(std::string_view root, std::string_view resolved);

}  // namespace portico::origin
