#pragma once
// ObjectCodec: the binary encoding of a CachedObject for the shared Redis tier (L2).
//
// The bytes are the contract between edges of different versions that share one Redis: an edge
// must decode what an older or newer edge wrote, or recognise that it cannot and treat the entry
// as a miss. Any change to the layout below needs a new kObjectCodecVersion; a decoder refuses
// every version it does not know (null = miss), so a mixed fleet degrades to L2 misses during a
// rolling upgrade, never to misread objects.
//
// Encoding, version 1, in order, nothing between the fields:
//
//   offset 0  "PTC"          3 bytes, magic 0x50 0x54 0x43
//   offset 3  version        1 byte, 0x01
//   then, each field a varint (V), a signed varint (S), one byte (B) or a string (STR):
//     status                 V   100..999
//     reason                 STR "" = the standard phrase for the status
//     header count           V   <= kMaxCodecFields
//     count x { name STR, value STR }   in the stored order, duplicates and empty values kept
//     request_time           S   unix milliseconds (ObjectMeta::request_time, truncated to ms)
//     response_time          S   unix milliseconds
//     corrected_initial_age  S   seconds
//     freshness_lifetime     S   seconds
//     stale_while_revalidate S   seconds
//     stale_if_error         S   seconds
//     flags                  B   bit 0 must_revalidate, bit 1 no_cache; bits 2..7 must be 0
//     etag                   STR
//     last_modified          STR
//     vary count             V   <= kMaxCodecFields
//     count x { name STR }
//     body length            V
//     body                   body length bytes, raw (binary-safe)
//   and then the end of the input: trailing bytes are an error.
//
//   V   unsigned LEB128: 7 bits per byte, least significant group first, high bit set on every
//       byte but the last; at most 10 bytes, canonical (no trailing 0x00 group, value < 2^64).
//       0 = 0x00, 127 = 0x7F, 128 = 0x80 0x01, 300 = 0xAC 0x02.
//   S   a signed 64-bit integer zigzag-mapped to V: 0->0, -1->1, 1->2, -2->3, ... (so small
//       negative numbers stay short).
//   STR a V byte length, then that many raw bytes.
//
// Varints rather than fixed widths: a typical head has a dozen fields whose lengths fit in one
// byte, and the ms timestamps fit in 6; the body dominates anyway, so the format stays simple.
//
// Decoding is strict (any deviation is null): wrong magic, unknown version, truncation anywhere,
// a length or count past the end of the input (checked before anything is allocated, so memory
// stays bounded by the input size), more than kMaxCodecFields headers or vary names, a status
// outside 100..999, a time outside what WallTime can hold, unknown flag bits, trailing bytes, and
// bytes that could split an HTTP message if sent on again: an empty header name or one with
// CR, LF, NUL, SP, HTAB or ':', and CR, LF or NUL in a header value, the reason, the etag or
// Last-Modified (the last two go back to the origin in conditional requests). Redis is shared
// by every edge, so its content is treated as untrusted input.
//
// Pure functions: no I/O, no clock, callable from any thread.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "cache/cached_object.h"

namespace portico::cache {

inline constexpr std::uint8_t kObjectCodecVersion = 1;
// Upper bound on header fields and on vary names in a decoded object.
inline constexpr std::size_t kMaxCodecFields = 10000;

// Encodes `object` (format above). Times are truncated to whole milliseconds. Never fails; an
// object whose status is outside 100..999 encodes to bytes that decode to null.
std::string encodeObject(const CachedObject& object);

// Decodes bytes written by encodeObject (any edge, this format version). Null on any malformed
// input (see above); never throws (a failed allocation also gives null) and never reads outside
// `bytes`. The result owns its data: the body is a fresh BodyPtr, and
// nothing refers to `bytes` after the call returns.
CachedObjectPtr decodeObject(std::string_view bytes);

}  // namespace portico::cache
