#include "proxy/compress/compressor.h"

#include <brotli/encode.h>
// ZLIB_CONST makes z_stream::next_in a pointer to const, so no cast drops const below.
#define ZLIB_CONST
#include <zlib.h>

#include <algorithm>
#include <climits>
#include <cstdint>
#include <new>

namespace portico::proxy {
namespace {

// windowBits 15 (32 KiB, the maximum) + 16 asks zlib for the gzip wrapper instead of zlib's.
constexpr int kGzipWindowBits = 15 + 16;
constexpr int kZlibMemLevel = 8;  // zlib's default

// Owns a z_stream between deflateInit2 and deflateEnd, so every exit path frees it.
class Deflater {
 public:
  Deflater() = default;
  Deflater(const Deflater&) = delete;
  Deflater& operator=(const Deflater&) = delete;
  ~Deflater() {
    if (initialized_) deflateEnd(&zs_);
  }

  bool init() {
    initialized_ = deflateInit2(&zs_, kGzipLevel, Z_DEFLATED, kGzipWindowBits, kZlibMemLevel,
                                Z_DEFAULT_STRATEGY) == Z_OK;
    return initialized_;
  }
  z_stream& stream() { return zs_; }

 private:
  z_stream zs_{};  // zalloc/zfree/opaque null: zlib's malloc/free
  bool initialized_ = false;
};

std::optional<std::string> gzipCompress(std::string_view input) {
  Deflater deflater;
  if (!deflater.init()) return std::nullopt;
  z_stream& zs = deflater.stream();
  // deflateBound is exact enough that one pass normally fits; the loop below still grows the
  // buffer if not, and feeds input in uInt-sized slices so any size_t length works.
  std::string out;
  out.resize(static_cast<std::size_t>(deflateBound(&zs, static_cast<uLong>(input.size()))));
  std::size_t produced = 0;
  std::size_t consumed = 0;
  int rc = Z_OK;
  while (rc != Z_STREAM_END) {
    if (zs.avail_in == 0 && consumed < input.size()) {
      std::size_t slice = std::min<std::size_t>(input.size() - consumed, UINT_MAX);
      zs.next_in = reinterpret_cast<const Bytef*>(input.data() + consumed);
      zs.avail_in = static_cast<uInt>(slice);
      consumed += slice;
    }
    if (produced == out.size()) out.resize(out.size() * 2 + 64);
    std::size_t room = std::min<std::size_t>(out.size() - produced, UINT_MAX);
    zs.next_out = reinterpret_cast<Bytef*>(out.data() + produced);
    zs.avail_out = static_cast<uInt>(room);
    int flush = consumed == input.size() ? Z_FINISH : Z_NO_FLUSH;
    rc = deflate(&zs, flush);
    produced += room - zs.avail_out;
    // Z_BUF_ERROR only means "no progress possible with this buffer": grow and retry.
    if (rc != Z_OK && rc != Z_STREAM_END && rc != Z_BUF_ERROR) return std::nullopt;
  }
  out.resize(produced);
  return out;
}

std::optional<std::string> brotliCompress(std::string_view input) {
  std::size_t bound = BrotliEncoderMaxCompressedSize(input.size());
  if (bound == 0) return std::nullopt;  // input too large for the size arithmetic
  std::string out;
  out.resize(bound);
  std::size_t encoded_size = out.size();
  BROTLI_BOOL ok = BrotliEncoderCompress(
      kBrotliQuality, kBrotliWindowBits, BROTLI_MODE_GENERIC, input.size(),
      reinterpret_cast<const std::uint8_t*>(input.data()), &encoded_size,
      reinterpret_cast<std::uint8_t*>(out.data()));
  if (ok != BROTLI_TRUE) return std::nullopt;
  out.resize(encoded_size);
  return out;
}

}  // namespace

std::optional<std::string> compressBody(ContentCoding coding, std::string_view input) {
  try {
    switch (coding) {
      case ContentCoding::Gzip:
        return gzipCompress(input);
      case ContentCoding::Brotli:
        return brotliCompress(input);
      case ContentCoding::Identity:
        break;
    }
  } catch (const std::bad_alloc&) {
    // Output buffer allocation failed: same outcome as a library failure, the caller serves
    // the identity body. Runs on a pool thread, where an escaping exception would terminate.
  }
  return std::nullopt;
}

}  // namespace portico::proxy
