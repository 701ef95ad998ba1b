#include "proxy/core/json_writer.h"

#include <charconv>
#include <cstring>

namespace portico::core {

std::size_t utf8SequenceLength(std::string_view s, std::size_t i) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const std::size_t n = s.size();
  const unsigned char c = p[i];
  if (c < 0x80) return 1;
  std::size_t len = 0;
  unsigned char lo = 0x80, hi = 0xBF;  // allowed range of the second byte
  if (c >= 0xC2 && c <= 0xDF) {
    len = 2;
  } else if (c >= 0xE0 && c <= 0xEF) {
    len = 3;
    if (c == 0xE0) lo = 0xA0;  // no overlongs
    if (c == 0xED) hi = 0x9F;  // no surrogates
  } else if (c >= 0xF0 && c <= 0xF4) {
    len = 4;
    if (c == 0xF0) lo = 0x90;  // no overlongs
    if (c == 0xF4) hi = 0x8F;  // nothing above U+10FFFF
  } else {
    return 0;
  }
  if (i + len > n) return 0;
  if (p[i + 1] < lo || p[i + 1] > hi) return 0;
  for (std::size_t k = 2; k < len; ++k) {
    if (p[i + k] < 0x80 || p[i + k] > 0xBF) return 0;
  }
  return len;
}

bool isValidUtf8(std::string_view s) {
  for (std::size_t i = 0; i < s.size();) {
    std::size_t len = utf8SequenceLength(s, i);
    if (len == 0) return false;
    i += len;
  }
  return true;
}

namespace {

// Eight bytes at a time: true when one of them needs more than a copy ('"', '\\', a control
// character or a non-ASCII byte). SWAR as in simdjson's fallback kernel: a byte b < n shows as
// the high bit of (b - n) & ~b; equality to c as a byte of (b ^ c) below 1.
bool wordNeedsWork(std::uint64_t w) {
  constexpr std::uint64_t kOnes = 0x0101010101010101ull;
  constexpr std::uint64_t kHigh = 0x8080808080808080ull;
  auto below = [&](std::uint64_t x, std::uint64_t n) { return (x - kOnes * n) & ~x & kHigh; };
  const std::uint64_t quote = w ^ (kOnes * '"');
  const std::uint64_t backslash = w ^ (kOnes * '\\');
  return ((w & kHigh) | below(w, 0x20) | below(quote, 1) | below(backslash, 1)) != 0;
}

bool plainByte(unsigned char c) { return c >= 0x20 && c != '"' && c != '\\' && c < 0x80; }

// How many leading bytes of `s` go into a JSON string as they are.
std::size_t plainPrefix(std::string_view s) {
  const std::size_t n = s.size();
  std::size_t i = 0;
  while (i + 8 <= n) {
    std::uint64_t w;
    std::memcpy(&w, s.data() + i, 8);
    if (wordNeedsWork(w)) break;
    i += 8;
  }
  while (i < n && plainByte(static_cast<unsigned char>(s[i]))) ++i;
  return i;
}

void appendEscaped(std::string& out, std::string_view s, std::size_t i, char suffix);

// `s` quoted, then `suffix` if not NUL. The common case (a header, a path, a member name):
// nothing to escape, one resize and one copy.
void appendQuoted(std::string& out, std::string_view s, char suffix) {
  const std::size_t n = s.size();
  const std::size_t i = plainPrefix(s);
  if (i != n) return appendEscaped(out, s, i, suffix);
  const std::size_t at = out.size();
  out.resize(at + n + (suffix != '\0' ? 3 : 2));
  char* p = out.data() + at;
  *p++ = '"';
  if (n != 0) std::memcpy(p, s.data(), n);  // an empty view may have a null data()
  p += n;
  *p++ = '"';
  if (suffix != '\0') *p = suffix;
}

// appendQuoted's slow path: s[i] needs escaping or a UTF-8 check (kept out of line so that the
// fast path stays a leaf with a short prologue).
[[gnu::noinline]] void appendEscaped(std::string& out, std::string_view s, std::size_t i, char suffix) {
  static constexpr char kHex[] = "0123456789abcdef";
  const std::size_t n = s.size();
  out.reserve(out.size() + n + 3);
  out += '"';
  std::size_t run = 0;  // start of the pending run of bytes copied as they are
  auto flush = [&](std::size_t end) { out.append(s.data() + run, end - run); };
  while (i < n) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (plainByte(c)) {
      ++i;
      continue;
    }
    if (c >= 0x80) {
      std::size_t len = utf8SequenceLength(s, i);
      if (len != 0) {
        i += len;
        continue;
      }
      flush(i);
      out += "\xEF\xBF\xBD";  // U+FFFD for the invalid byte
      run = ++i;
      continue;
    }
    flush(i);
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        out += "\\u00";
        out += kHex[c >> 4];
        out += kHex[c & 0xF];
    }
    run = ++i;
  }
  flush(n);
  out += '"';
  if (suffix != '\0') out += suffix;
}

}  // namespace

void appendJsonString(std::string& out, std::string_view s) { appendQuoted(out, s, '\0'); }

void JsonWriter::separate() {
  if (after_key_) {
    after_key_ = false;
    return;
  }
  if (!first_.empty()) {
    if (first_.back() == 0) out_ += ',';
    first_.back() = 0;
  }
}

void JsonWriter::open(char c) {
  separate();
  out_ += c;
  first_.push_back(1);
}

void JsonWriter::close(char c) {
  out_ += c;
  if (!first_.empty()) first_.pop_back();
}

void JsonWriter::key(std::string_view name) {
  separate();
  appendQuoted(out_, name, ':');
  after_key_ = true;
}

void JsonWriter::value(std::string_view s) {
  separate();
  appendJsonString(out_, s);
}

void JsonWriter::value(std::int64_t n) {
  separate();
  char buf[24];
  auto r = std::to_chars(buf, buf + sizeof buf, n);
  out_.append(buf, r.ptr);
}

void JsonWriter::value(bool b) {
  separate();
  out_ += b ? "true" : "false";
}

void JsonWriter::null() {
  separate();
  out_ += "null";
}

}  // namespace portico::core
