#pragma once
// Answering a request from a stored object (a hit, a refreshed hit, a stale copy): conditional
// requests (304), a single byte range (206 / 416), HEAD, and the cache's response fields
// (Age, X-Cache, Via). The body is the stored object's shared bytes; nothing is parsed again.
#include <cstdint>

#include "cache/cache_status.h"
#include "cache/cached_object.h"
#include "proxy/core/clock.h"
#include "proxy/h1/http1_connection.h"

namespace portico::proxy {

struct ServedObject {
  int status = 0;
  std::uint64_t body_bytes = 0;  // bytes of body handed to the exchange
  bool complete = true;          // false: the exchange is over its high-water mark; call
                                 // continueObject() from onWritable()
};

// Sends head and body (or as much body as the exchange takes; see ServedObject::complete).
// `offset` is updated to the next body byte to send.
// `vary_accept_encoding`: the object is an edge-compression candidate served as identity
// (proxy/pipeline/edge_compression.h); its answers say Vary: Accept-Encoding.
ServedObject serveObject(Exchange& exchange, const cache::CachedObject& object,
                         cache::CacheStatus status, core::WallTime now, std::uint64_t& offset,
                         std::uint64_t& end, bool vary_accept_encoding = false,
                         const core::HeaderMap* extra = nullptr);  // fields added to the answer

// Sends more of the body after backpressure. Returns true once everything is sent (the caller
// then ends the response).
bool continueObject(Exchange& exchange, const cache::CachedObject& object, std::uint64_t& offset,
                    std::uint64_t end, std::uint64_t& body_bytes);

// Fields the pipeline adds to every answer of a request (CORS grants, Warning): each replaces
// a field of that name the backend sent; Vary merges.
void addExtra(core::HeaderMap& headers, const core::HeaderMap& extra);

// Appends "1.1 portico" to the Via field (RFC 9110 §7.6.3).
void addVia(core::HeaderMap& headers);

}  // namespace portico::proxy
