#pragma once
// Edge compression of stored objects (a behavior's `compress = true`), as CloudFront does it:
// the origin's identity answer is what gets stored; a gzip or br variant is made from it the
// first time a client that accepts one asks, stored next to it, and served from then on, so the
// compression work is done once per object and coding.
//
// Which objects: complete 200 answers of a compressible type between 1 KiB and 10 MiB that the
// origin did not encode itself and did not mark no-transform (proxy/compress/content_coding.h).
// Range requests are answered from the identity object (a range of the compressed bytes would
// be a range of a representation the client cannot validate against the identity's ETag).
// Every response for such an object carries Vary: Accept-Encoding, compressed or not.
//
// Variants live under the identity's store key + kVariantSeparator + "ce=<token>", so a purge
// of the URL reaches them. A variant is used only while it was made from the identity object
// currently stored (same request/response times); an identity replaced or refreshed since
// makes it stale, and the next request makes a new one.
//
// Threading: compression runs on libuv's thread pool (uv_queue_work); everything else, the
// store insert, the coalescer token and the callback, on the requesting worker's loop.
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include <uv.h>

#include "cache/cached_object.h"
#include "cache/coalescer.h"
#include "conf/config.h"
#include "proxy/compress/content_coding.h"
#include "proxy/core/http_message.h"
#include "proxy/pipeline/cache_runtime.h"

namespace portico::proxy {

struct CompressionPlan {
  bool applies = false;  // a compression candidate: its responses carry Vary: Accept-Encoding
  ContentCoding coding = ContentCoding::Identity;  // what this client gets
  std::string variant_key;  // where that coding's variant is stored ("" for identity)
};

// What `request` gets for the stored `identity` found under `store_key`.
CompressionPlan planCompression(const conf::Behavior& behavior, const core::RequestHead& request,
                                const cache::CachedObject& identity, std::string_view store_key);

// Whether an origin answer being stored should be held back until it is complete, so that the
// client that caused the miss already gets the compressed variant (it needs a Content-Length).
bool compressAfterFill(const conf::Behavior& behavior, const core::RequestHead& request,
                       const core::ResponseHead& origin_head);

// The stored variant for `plan` if it was made from `identity`, else null.
cache::CachedObjectPtr findCompressed(cache::Store& store, const CompressionPlan& plan,
                                      const cache::CachedObject& identity);

// Called on the loop with the variant (null if none could be made).
using CompressedCallback = std::function<void(cache::CachedObjectPtr)>;

// Compresses `identity` on the thread pool, then on `loop`: builds the variant (or, when the
// coding saves nothing, a variant that is the identity bytes with Vary added, so the work is
// not retried), inserts it under plan.variant_key, completes `token` with it (followers of the
// key are served from it), and calls `done` unless `alive` has expired by then (the request
// went away; the variant is stored all the same). `runtime` must outlive the job (it is the
// worker's, and a pending job keeps the worker's loop running).
void startCompression(uv_loop_t* loop, CacheRuntime& runtime, cache::CachedObjectPtr identity,
                      CompressionPlan plan, cache::LeaderToken token, std::weak_ptr<bool> alive,
                      CompressedCallback done);

}  // namespace portico::proxy
