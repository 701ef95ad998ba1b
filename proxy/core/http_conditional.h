#pragma once
// Entity tags, If-None-Match, If-Range and byte ranges (RFC 9110 §8.8.3, §13, §14): the pure
// pieces shared by the cache (answering hits) and the dir origin (answering like a bucket).
// Header values in, decisions out; no I/O, no clock.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace portico::core {

bool isWeakEtag(std::string_view tag);  // "W/..."
// RFC 9110 §8.8.3.2 weak comparison: the opaque tags are equal (whitespace trimmed); an empty
// tag equals nothing.
bool weakEtagEquals(std::string_view a, std::string_view b);
// RFC 9110 §13.1.2: an If-None-Match value ("*" or a list of entity tags, W/ allowed) matches
// `etag` by the weak comparison. "*" matches anything; an empty `etag` matches only "*". A
// malformed member ends the list (nothing matches from it on).
bool ifNoneMatchMatches(std::string_view list, std::string_view etag);

enum class RangeKind {
  None,           // no Range, or one to ignore (bad syntax, several ranges, other unit): 200
  Single,         // [first, last] inside the body: 206 with Content-Range
  Unsatisfiable,  // valid, but selects nothing: 416 with "Content-Range: bytes */size"
};

struct ByteRange {
  RangeKind kind = RangeKind::None;
  std::uint64_t first = 0;
  std::uint64_t last = 0;  // inclusive
  std::uint64_t length() const { return last - first + 1; }
};

// RFC 9110 §14.1.2 for one range: "bytes=a-b" (b clamped to size-1), "bytes=a-", "bytes=-n"
// (the last n bytes). Several ranges ("0-1,5-6") are ignored on purpose (answered 200 with the
// whole body: always allowed), as is anything malformed.
ByteRange parseByteRange(std::string_view value, std::uint64_t size);

// RFC 9110 §13.1.5: whether an If-Range value lets the Range apply: an entity tag equal to
// `etag` by the strong comparison (a weak tag on either side never is), or an HTTP-date equal
// to `last_modified_s` (nullopt: no usable Last-Modified, so no date matches).
bool ifRangeAllows(std::string_view if_range, std::string_view etag,
                   std::optional<std::int64_t> last_modified_s);

std::string contentRange(const ByteRange& range, std::uint64_t size);  // "bytes 0-9/100"
std::string unsatisfiedContentRange(std::uint64_t size);              // "bytes */100"

}  // namespace portico::core
