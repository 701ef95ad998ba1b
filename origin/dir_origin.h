#pragma once
// DirOriginClient: the `dir` origin, a local folder served as if it were a bucket. The embedded
// default origin (brief.md): `[origins.x] type = "dir", root = "..."`.
//
// It answers like an object store, not like a web server:
//  - GET/HEAD of a regular file under the root: 200 with Content-Type (mime_types.h),
//    Content-Length, a strong ETag, Last-Modified and Accept-Ranges; conditional requests give
//    304, one byte range gives 206 (416 if unsatisfiable). See dir_conditional.h.
//  - A "folder" (a path ending in '/', or naming a directory) is not an object: 404. There are
//    no directory listings; the pipeline rewrites "/" to the index document before asking.
//  - A path that tries to leave the root (dir_path.h, or a symlink resolving outside it): 403
//    with no detail. A malformed path (bad %-escape, NUL): 400. Missing: 404.
//  - Other methods: 405 with "Allow: GET, HEAD"; OPTIONS: 204 with the same Allow.
//  - Error answers (4xx/5xx) are a head plus a short text/plain body, then
//    onOriginDone(FetchError::None): the pipeline decides about error pages from the status.
//  - A file that fails while its body is streaming: onOriginDone(FetchError::Internal) after
//    the head (body cut short). A failure before the head: a 500 head.
//
// Threading and I/O: one client per worker, used only on that worker's loop thread (origin
// contract, origin_client.h). Every file operation is libuv's async fs API (realpath, open,
// fstat, read, close run on the threadpool; their callbacks run on the loop), so the loop never
// blocks on the disk. Bodies are read and delivered in 64 KiB chunks, never whole, and reading
// stops while the sink has asked to pause. The one blocking call is the constructor's
// realpath() of the root, made once when the worker starts.
//
// Lifetime: each fetch is a shared job that every in-flight uv_fs_t request keeps alive.
// Destroying the returned Fetch detaches the sink, so a request that completes later touches
// only the job (and closes the file) and calls nothing. Fetches may outlive the client.
#include <uv.h>

#include <string>

#include "conf/config.h"
#include "origin/origin_client.h"

namespace portico::origin {

class DirOriginClient final : public OriginClient {
 public:
  // Resolves cfg.root with realpath (blocking, once). If the root cannot be resolved (missing,
  // unreadable), every fetch answers 500: a misconfigured origin, not a missing object.
  DirOriginClient(uv_loop_t* loop, const conf::DirOrigin& cfg);
  ~DirOriginClient() override = default;
  DirOriginClient(const DirOriginClient&) = delete;
  DirOriginClient& operator=(const DirOriginClient&) = delete;

  // OriginClient. Never calls `sink` before returning. A request body (has_body) is accepted
  // and discarded: no method this origin serves takes one.
  FetchPtr fetch(OriginRequest request, ResponseSink& sink) override;

  // The resolved root ("" if it could not be resolved).
  const std::string& root() const { return root_; }

 private:
  uv_loop_t* loop_;
  std::string root_;  // realpath of configured_root_, no trailing '/' (unless it is "/")
};

}  // namespace portico::origin
