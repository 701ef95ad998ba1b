#include "cache/object_codec.h"

#include <chrono>
#include <new>
#include <utility>

namespace portico::cache {
namespace {

constexpr std::string_view kMagic = "PTC";
constexpr std::uint8_t kFlagMustRevalidate = 0x01;
constexpr std::uint8_t kFlagNoCache = 0x02;
constexpr std::uint8_t kKnownFlags = kFlagMustRevalidate | kFlagNoCache;
constexpr std::size_t kMaxVarintBytes = 10;  // ceil(64 / 7)

// The widest unix-ms values WallTime (nanoseconds in an int64 on libstdc++) can represent:
// decoding a time outside them would overflow the conversion.
constexpr std::int64_t kMaxMillis =
    std::chrono::duration_cast<std::chrono::milliseconds>(core::WallTime::duration::max()).count();
constexpr std::int64_t kMinMillis =
    std::chrono::duration_cast<std::chrono::milliseconds>(core::WallTime::duration::min()).count();

std::uint64_t zigzag(std::int64_t v) {
  return (static_cast<std::uint64_t>(v) << 1) ^ static_cast<std::uint64_t>(v >> 63);
}
std::int64_t unzigzag(std::uint64_t u) {
  return static_cast<std::int64_t>((u >> 1) ^ (~(u & 1) + 1));
}

// ---- encoding

class Writer {
 public:
  explicit Writer(std::size_t reserve) { out_.reserve(reserve); }

  void byte(std::uint8_t b) { out_.push_back(static_cast<char>(b)); }
  void varint(std::uint64_t v) {
    while (v >= 0x80) {
      byte(static_cast<std::uint8_t>(v | 0x80));
      v >>= 7;
    }
    byte(static_cast<std::uint8_t>(v));
  }
  void signedVarint(std::int64_t v) { varint(zigzag(v)); }
  void str(std::string_view s) {
    varint(s.size());
    out_.append(s);
  }
  void raw(std::string_view s) { out_.append(s); }
  std::string take() { return std::move(out_); }

 private:
  std::string out_;
};

// An upper bound of the encoded size, so that a large body is copied once, without regrowth.
std::size_t encodedSizeBound(const CachedObject& o) {
  constexpr std::size_t v = kMaxVarintBytes;
  std::size_t n = kMagic.size() + 1 + v + v + o.head.reason.size() + v;
  for (const auto& [name, value] : o.head.headers) n += 2 * v + name.size() + value.size();
  n += 6 * v + 1 + 2 * v + o.meta.etag.size() + o.meta.last_modified.size() + v;
  for (const std::string& name : o.meta.vary) n += v + name.size();
  return n + v + o.bodySize();
}

// ---- decoding

bool validFieldName(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (c == '\r' || c == '\n' || c == '\0' || c == ' ' || c == '\t' || c == ':') return false;
  }
  return true;
}

bool validFieldValue(std::string_view s) {
  for (char c : s) {
    if (c == '\r' || c == '\n' || c == '\0') return false;
  }
  return true;
}

// Reads fields from the front of the input. Every read checks the remaining length first and
// returns false rather than reading past the end; once a read fails the decode is abandoned.
class Reader {
 public:
  explicit Reader(std::string_view in) : in_(in) {}

  std::size_t remaining() const { return in_.size() - pos_; }
  bool atEnd() const { return pos_ == in_.size(); }

  bool byte(std::uint8_t& out) {
    if (pos_ >= in_.size()) return false;
    out = static_cast<std::uint8_t>(in_[pos_++]);
    return true;
  }

  bool varint(std::uint64_t& out) {
    std::uint64_t v = 0;
    for (std::size_t i = 0; i < kMaxVarintBytes; ++i) {
      std::uint8_t b = 0;
      if (!byte(b)) return false;
      if (i == kMaxVarintBytes - 1 && b > 0x01) return false;  // more than 64 bits
      v |= static_cast<std::uint64_t>(b & 0x7F) << (7 * i);
      if ((b & 0x80) == 0) {
        if (b == 0 && i > 0) return false;  // non-canonical: a trailing zero group
        out = v;
        return true;
      }
    }
    return false;
  }

  bool signedVarint(std::int64_t& out) {
    std::uint64_t u = 0;
    if (!varint(u)) return false;
    out = unzigzag(u);
    return true;
  }

  // A length-prefixed string, as a view into the input (copied by the caller). The length is
  // checked against what is left before anything is allocated.
  bool str(std::string_view& out) {
    std::uint64_t len = 0;
    if (!varint(len) || len > remaining()) return false;
    out = in_.substr(pos_, static_cast<std::size_t>(len));
    pos_ += static_cast<std::size_t>(len);
    return true;
  }

  // An element count, bounded by kMaxCodecFields and by what the remaining input could hold
  // when each element takes at least `min_bytes` bytes (so reserve() is bounded by the input).
  bool count(std::size_t min_bytes, std::size_t& out) {
    std::uint64_t n = 0;
    if (!varint(n) || n > kMaxCodecFields || n > remaining() / min_bytes) return false;
    out = static_cast<std::size_t>(n);
    return true;
  }

  bool time(core::WallTime& out) {
    std::int64_t ms = 0;
    if (!signedVarint(ms) || ms > kMaxMillis || ms < kMinMillis) return false;
    out = core::WallTime(std::chrono::duration_cast<core::WallTime::duration>(
        std::chrono::milliseconds(ms)));
    return true;
  }

 private:
  std::string_view in_;
  std::size_t pos_ = 0;
};

bool decodeHead(Reader& r, core::ResponseHead& head) {
  std::uint64_t status = 0;
  if (!r.varint(status) || status < 100 || status > 999) return false;
  head.status = static_cast<int>(status);
  std::string_view reason;
  if (!r.str(reason) || !validFieldValue(reason)) return false;
  head.reason.assign(reason);

  std::size_t n = 0;
  if (!r.count(2, n)) return false;  // each field: two lengths of at least one byte
  auto& entries = head.headers.entries();
  entries.reserve(n);
  for (std::size_t i = 0; i < n; ++i) {
    std::string_view name, value;
    if (!r.str(name) || !validFieldName(name)) return false;
    if (!r.str(value) || !validFieldValue(value)) return false;
    entries.push_back(core::HeaderMap::Entry{std::string(name), std::string(value)});
  }
  return true;
}

bool decodeMeta(Reader& r, ObjectMeta& m) {
  if (!r.time(m.request_time) || !r.time(m.response_time)) return false;
  if (!r.signedVarint(m.corrected_initial_age_s) || !r.signedVarint(m.freshness_lifetime_s) ||
      !r.signedVarint(m.stale_while_revalidate_s) || !r.signedVarint(m.stale_if_error_s)) {
    return false;
  }
  std::uint8_t flags = 0;
  if (!r.byte(flags) || (flags & ~kKnownFlags) != 0) return false;
  m.must_revalidate = (flags & kFlagMustRevalidate) != 0;
  m.no_cache = (flags & kFlagNoCache) != 0;

  std::string_view etag, last_modified;
  if (!r.str(etag) || !validFieldValue(etag)) return false;
  if (!r.str(last_modified) || !validFieldValue(last_modified)) return false;
  m.etag.assign(etag);
  m.last_modified.assign(last_modified);

  std::size_t n = 0;
  if (!r.count(1, n)) return false;
  m.vary.reserve(n);
  for (std::size_t i = 0; i < n; ++i) {
    std::string_view name;
    if (!r.str(name)) return false;
    m.vary.emplace_back(name);
  }
  return true;
}

CachedObjectPtr decodeChecked(std::string_view bytes) {
  if (bytes.size() < kMagic.size() + 1 || bytes.substr(0, kMagic.size()) != kMagic) return nullptr;
  if (static_cast<std::uint8_t>(bytes[kMagic.size()]) != kObjectCodecVersion) return nullptr;
  Reader r(bytes.substr(kMagic.size() + 1));

  auto object = std::make_shared<CachedObject>();
  if (!decodeHead(r, object->head) || !decodeMeta(r, object->meta)) return nullptr;
  std::string_view body;
  if (!r.str(body) || !r.atEnd()) return nullptr;
  object->body = std::make_shared<const std::string>(body);
  return object;
}

}  // namespace

std::string encodeObject(const CachedObject& object) {
  Writer w(encodedSizeBound(object));
  w.raw(kMagic);
  w.byte(kObjectCodecVersion);

  // A negative status would wrap to a huge varint, which the decoder refuses (documented).
  w.varint(static_cast<std::uint64_t>(object.head.status));
  w.str(object.head.reason);
  w.varint(object.head.headers.size());
  for (const auto& [name, value] : object.head.headers) {
    w.str(name);
    w.str(value);
  }

  const ObjectMeta& m = object.meta;
  w.signedVarint(core::toUnixMillis(m.request_time));
  w.signedVarint(core::toUnixMillis(m.response_time));
  w.signedVarint(m.corrected_initial_age_s);
  w.signedVarint(m.freshness_lifetime_s);
  w.signedVarint(m.stale_while_revalidate_s);
  w.signedVarint(m.stale_if_error_s);
  w.byte(static_cast<std::uint8_t>((m.must_revalidate ? kFlagMustRevalidate : 0) |
                                   (m.no_cache ? kFlagNoCache : 0)));
  w.str(m.etag);
  w.str(m.last_modified);
  w.varint(m.vary.size());
  for (const std::string& name : m.vary) w.str(name);

  w.str(object.bodyView());
  return w.take();
}

CachedObjectPtr decodeObject(std::string_view bytes) {
  // Every allocation is bounded by the input size; only a genuinely exhausted heap can throw,
  // and to the L2 caller that is one more miss.
  try {
    return decodeChecked(bytes);
  } catch (const std::bad_alloc&) {
    return nullptr;
  }
}

}  // namespace portico::cache
