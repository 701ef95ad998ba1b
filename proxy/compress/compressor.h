#pragma once
// Edge compression, the codec half: one-shot gzip / brotli of a whole body. This header and
// compressor.cc are the only code that knows about zlib and brotli (style.md G7); no library
// type crosses this interface.
#include <optional>
#include <string>
#include <string_view>

#include "proxy/compress/content_coding.h"

namespace portico::proxy {

inline constexpr int kGzipLevel = 6;        // zlib's default: the usual speed/size balance
inline constexpr int kBrotliQuality = 5;    // ~gzip-9 ratio at gzip-6 speed; the result is cached
inline constexpr int kBrotliWindowBits = 22;  // 4 MiB window, brotli's default

// One-shot compression of a whole body with `coding`:
// - Gzip: zlib deflate with a gzip wrapper (RFC 1952), level kGzipLevel.
// - Brotli: BrotliEncoderCompress, quality kBrotliQuality, lgwin kBrotliWindowBits.
// Compressing 10 MiB (kCompressMaxBytes) takes well under a second; it is done once per
// object, since the result is cached.
//
// Thread: any. There is no shared state, so it is meant to run on libuv's thread pool
// (uv_queue_work) while the loop keeps serving. `input` is only read, and only during the call.
// Returns std::nullopt when coding is Identity or the library fails (including out of memory);
// never throws. The size is not checked here: callers gate on compressionApplies().
std::optional<std::string> compressBody(ContentCoding coding, std::string_view input);

}  // namespace portico::proxy
