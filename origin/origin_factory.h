#pragma once
// Builds the OriginClient for one configured origin on one worker (style.md §4.2 origin_router:
// OriginConfig -> the right client instance for this worker).
//
// Threading: call on the worker's loop thread; the client, and every Fetch it returns, lives on
// that loop. `ctx.loop` and `ctx.curl` (the worker's) must outlive the client.
#include <uv.h>

#include "conf/config.h"
#include "origin/curl_multi.h"
#include "origin/origin_client.h"

namespace portico::origin {

struct OriginContext {
  uv_loop_t* loop = nullptr;
  CurlMulti* curl = nullptr;  // required by http and lambda origins
};

// Chooses by cfg.spec's alternative: dir -> DirOriginClient, http -> HttpOriginClient,
// lambda -> LambdaOriginClient, s3 -> S3OriginClient. Returns nullptr when a curl-based origin
// (http, lambda, s3) is asked for without ctx.curl; the caller treats nullptr as a
// configuration it cannot serve (an error at startup). Every type is implemented today; a
// future type without an implementation would also answer nullptr.
OriginClientPtr makeOriginClient(const conf::OriginConfig& cfg, const OriginContext& ctx);

}  // namespace portico::origin
