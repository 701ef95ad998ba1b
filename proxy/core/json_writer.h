#pragma once
// A streaming JSON writer for the hot path: appends straight to one string, no document tree.
// nlohmann::json stays the tool for JSON that is small or rare (admin answers, conf); the
// Lambda event is built once per function call, where building a tree of std::map nodes and
// dumping it cost more than the rest of the event (measured: about 8 us per event).
//
// Strings are escaped as RFC 8259 requires ('"', '\\', control characters) and bytes that are
// not well-formed UTF-8 (RFC 3629) are replaced by U+FFFD, one per invalid byte: the output is
// always valid JSON and valid UTF-8, whatever a client put into a header.
//
// Usage: the caller keeps the structure balanced; the writer only places the commas.
//   JsonWriter w(out);
//   w.beginObject(); w.key("a"); w.value(1); w.key("b"); w.beginArray(); w.value("x");
//   w.endArray(); w.endObject();   // {"a":1,"b":["x"]}

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace portico::core {

// The length (2-4, or 1 for ASCII) of the well-formed UTF-8 sequence starting at s[i], 0 if the
// bytes there are not one (overlongs, surrogates, code points above U+10FFFF, truncation).
std::size_t utf8SequenceLength(std::string_view s, std::size_t i);
// RFC 3629 well-formed UTF-8.
bool isValidUtf8(std::string_view s);

// `s` as a JSON string literal (quotes included), appended to `out`.
void appendJsonString(std::string& out, std::string_view s);

class JsonWriter {
 public:
  explicit JsonWriter(std::string& out) : out_(out) {}

  void beginObject() { open('{'); }
  void endObject() { close('}'); }
  void beginArray() { open('['); }
  void endArray() { close(']'); }
  // An object member's name; the next call writes its value.
  void key(std::string_view name);

  void value(std::string_view s);
  void value(const char* s) { value(std::string_view(s)); }
  void value(const std::string& s) { value(std::string_view(s)); }
  void value(std::int64_t n);
  void value(int n) { value(static_cast<std::int64_t>(n)); }
  void value(bool b);
  void null();

 private:
  void separate();  // a comma unless first in its container or right after a key
  void open(char c);
  void close(char c);

  std::string& out_;
  // Per open container, 1 while nothing was written in it yet. A string: up to 15 levels fit
  // in its inline buffer, so the writer allocates nothing of its own.
  std::string first_;
  bool after_key_ = false;
};

}  // namespace portico::core
