#pragma once
// Edge compression, the pure half: which content coding a response gets (RFC 9110 §12.5.3
// Accept-Encoding), whether a stored response may be transformed at all, and the header edits
// a transformed representation needs (Vary, weak ETag). No I/O, no clock, no library: every
// function is a pure function of its arguments, callable from any thread.
//
// The codec half (zlib / brotli) lives in proxy/compress/compressor.h.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "proxy/core/header_map.h"
#include "proxy/core/http_message.h"

namespace portico::proxy {

enum class ContentCoding { Identity, Gzip, Brotli };

// The Content-Encoding token: "identity", "gzip", "br".
std::string_view codingToken(ContentCoding c);

// Picks the coding for a response from the request's Accept-Encoding: all field lines joined
// with ", " (HeaderMap::getJoined), std::nullopt when the request has none.
//
// Rules (RFC 9110 §12.5.3, §12.4.2), decided here once:
// - Elements are `coding *( OWS ";" OWS name "=" value )`; empty list elements are skipped.
//   Coding and parameter names are case-insensitive; "x-gzip" is an alias of "gzip".
// - An element is malformed, and ignored as if absent, when its coding is not a token, a
//   parameter is not `token=value`, q appears twice, or q is not a valid qvalue
//   ("0"/"1" with at most three decimals, never above 1). So "br;q=1.5" is ignored, not clamped:
//   a client sending a nonsense weight has not said what it accepts. Other parameters are
//   ignored (extension room). Nothing ever throws.
// - A coding not listed takes the weight of "*" if present, else it is not acceptable.
// - If a coding is listed more than once (including gzip + x-gzip) the LOWEST weight counts:
//   identity is always decodable, so when the client contradicts itself we stay safe.
// - q=0 means not acceptable. Among acceptable gzip and br the higher weight wins; on a tie br
//   is preferred (CloudFront's choice).
// - Identity otherwise: header absent, empty, or neither gzip nor br acceptable. The weight of
//   "identity" itself is not compared (CloudFront compresses whenever gzip/br is accepted), and
//   "identity;q=0" still gets identity, because a cache has no better answer than the bytes it
//   holds (§12.5.3 allows it; 415 would be worse for every real client).
ContentCoding negotiateCoding(std::optional<std::string_view> accept_encoding);

// Media types worth compressing (roughly CloudFront's list): text/* except text/event-stream
// (a stream, never a complete object), JavaScript/JSON/XML types including any "+json" and
// "+xml" suffix, SVG, wasm, uncompressed font formats (ttf/otf/eot) and icons. Already
// compressed formats (images, video, woff/woff2, archives) are not listed. Parameters
// (";charset=utf-8"), surrounding whitespace and case are ignored; a value that is not
// `type/subtype` gives false.
bool isCompressibleType(std::string_view content_type);

inline constexpr std::uint64_t kCompressMinBytes = 1024;  // below this the saving is noise
inline constexpr std::uint64_t kCompressMaxBytes = 10ull * 1024 * 1024;  // bounds CPU per object

// Whether a complete stored response may be compressed at the edge: status 200, a compressible
// Content-Type, no Content-Encoding other than "identity" (we never stack codings), no
// "no-transform" in Cache-Control (RFC 9111 §5.2.2.6), no Content-Range, and
// kCompressMinBytes <= body_size <= kCompressMaxBytes.
bool compressionApplies(const core::ResponseHead& head, std::uint64_t body_size);

// Adds "Accept-Encoding" to Vary: creates `Vary: Accept-Encoding`, or appends
// ", Accept-Encoding" to the last Vary field line, unless some Vary line already lists it
// (case-insensitively) or lists "*" (which already varies on everything).
void addVaryAcceptEncoding(core::HeaderMap& headers);

// The entity-tag for a transformed representation: a strong tag becomes weak, as nginx does
// when gzipping ("\"abc\"" -> "W/\"abc\""); an already weak tag is returned unchanged. Anything
// that is not a valid entity-tag (RFC 9110 §8.8.3), including "", gives "": the caller then drops
// the ETag, since a malformed tag cannot be weakened meaningfully. Surrounding OWS is trimmed.
std::string weakenEtag(std::string_view etag);

}  // namespace portico::proxy
