#include "origin/dir_origin.h"

#include <fcntl.h>
#include <sys/stat.h>

#include <algorithm>
#include <cassert>
#include <cstdint>
#include <memory>
#include <string_view>
#include <utility>

#include "origin/dir_conditional.h"
#include "origin/dir_path.h"
#include "origin/mime_types.h"
#include "proxy/core/http_date.h"
#include "proxy/core/uv_util.h"

namespace portico::origin {
namespace {

constexpr std::size_t kReadChunk = 64 * 1024;
constexpr std::string_view kAllow = "GET, HEAD";

// One fetch from the dir origin. Lifecycle (one driver per phase, transitions asserted):
//
//   Idle -> Deferred                           fixed answer decided in fetch() (400/403/404/405,
//                                              204, 500); delivered from a 0 ms timer
//   Idle -> Resolving -> Opening -> Stating    one uv_fs_t in flight at a time
//   Stating -> Done                            304, HEAD, 416, empty body, or an error head
//   Stating -> Reading <-> Paused              head delivered; a read in flight / sink paused
//   Reading -> Failing -> Done                 a read could not even be submitted: the
//                                              Internal done goes out from the timer
//   Reading -> Done                            last chunk delivered, or a read failed
//   any -> Done                                cancel(): the Fetch was destroyed
//
// Ownership: the DirFetch handle holds a shared_ptr; while a uv_fs_t is in flight the job also
// holds itself (in_flight_), so the threadpool never writes into freed memory and the callback
// finds a live job. cancel() nulls sink_; from then on no sink method is called and the file is
// closed as soon as no request is using it. The Timer is owned by the job, so it cannot fire
// after the job is gone.
class DirJob : public std::enable_shared_from_this<DirJob> {
 public:
  enum class Phase { Idle, Deferred, Resolving, Opening, Stating, Reading, Paused, Failing, Done };

  DirJob(uv_loop_t* loop, ResponseSink& sink, std::string root, OriginRequest request)
      : loop_(loop), sink_(&sink), root_(std::move(root)), request_(std::move(request)) {
    req_.data = this;
  }

  ~DirJob() {
    // Normally closed already; a job is never destroyed with a request in flight.
    if (fd_ >= 0) closeFileAsync();
  }

  DirJob(const DirJob&) = delete;
  DirJob& operator=(const DirJob&) = delete;

  // Called once, from fetch(). Never calls the sink.
  void start() {
    assert(phase_ == Phase::Idle);
    const std::string& method = request_.head.method;
    is_head_ = method == "HEAD";
    if (method == "OPTIONS") {
      core::ResponseHead head;
      head.status = 204;
      head.headers.set("Allow", kAllow);
      return deferAnswer(std::move(head), {});
    }
    if (method != "GET" && !is_head_) {
      auto [head, body] = textAnswer(405, "Method Not Allowed\n");
      head.headers.set("Allow", kAllow);
      return deferAnswer(std::move(head), std::move(body));
    }
    if (root_.empty()) return deferText(500, "Origin root unavailable\n");
    MappedPath mapped = mapObjectPath(request_.path);
    switch (mapped.verdict) {
      case PathVerdict::BadRequest: return deferText(400, "Bad Request\n");
      case PathVerdict::Forbidden: return deferText(403, "Forbidden\n");
      case PathVerdict::Directory: return deferText(404, "Not Found\n");
      case PathVerdict::Ok: break;
    }
    relative_ = std::move(mapped.relative);
    const std::string full = root_ == "/" ? root_ + relative_ : root_ + "/" + relative_;
    phase_ = Phase::Resolving;
    submitted(uv_fs_realpath(loop_, &req_, full.c_str(), &DirJob::onFs));
  }

  // The Fetch was destroyed: detach the sink; release the file unless a request still uses it.
  void cancel() {
    sink_ = nullptr;
    timer_.reset();
    phase_ = Phase::Done;
    if (!in_flight_ && fd_ >= 0) closeFileAsync();
  }

  // Fetch::resume(). Only a paused body restarts; otherwise nothing to do.
  void resume() {
    if (phase_ != Phase::Paused || sink_ == nullptr) return;
    phase_ = Phase::Reading;
    readNext();
  }

 private:
  // ---- plumbing ------------------------------------------------------------------------------

  // Bookkeeping after a uv_fs_* submission: while it is pending the job keeps itself alive.
  void submitted(int rc) {
    if (rc == 0) {
      in_flight_ = shared_from_this();
      return;
    }
    // Not queued (out of memory or threadpool refusal): no callback will come. Answer from the
    // timer so the sink is still never called synchronously.
    uv_fs_req_cleanup(&req_);
    if (phase_ == Phase::Reading) {
      phase_ = Phase::Failing;
      startTimer();
    } else {
      phase_ = Phase::Idle;  // Resolving/Opening/Stating: no head yet
      deferText(500, "Internal Server Error\n");
    }
  }

  static void onFs(uv_fs_t* req) {
    auto* job = static_cast<DirJob*>(req->data);
    std::shared_ptr<DirJob> self = std::move(job->in_flight_);  // alive until we return
    const ssize_t result = req->result;
    switch (job->phase_) {
      case Phase::Resolving: job->onResolved(result); break;
      case Phase::Opening: job->onOpened(result); break;
      case Phase::Stating: job->onStat(result); break;
      case Phase::Reading: job->onRead(result); break;
      case Phase::Done: job->onCancelledResult(result); break;
      default: assert(false && "fs callback in a phase without a request"); break;
    }
  }

  static void closeCallback(uv_fs_t* req) {
    uv_fs_req_cleanup(req);
    delete req;
  }

  // Fire-and-forget close: the request owns only itself, so it may finish after the job.
  void closeFileAsync() {
    auto* req = new uv_fs_t;
    if (uv_fs_close(loop_, req, fd_, &DirJob::closeCallback) != 0) delete req;
    fd_ = -1;
  }

  void startTimer() {
    if (!timer_) timer_ = std::make_unique<core::Timer>(loop_);
    timer_->start(0, [this] { onTimer(); });
  }

  void onTimer() {
    std::shared_ptr<DirJob> self = shared_from_this();  // the sink may destroy the Fetch
    if (phase_ == Phase::Deferred) {
      phase_ = Phase::Done;
      deliverAnswer(std::move(deferred_head_), std::move(deferred_body_));
    } else if (phase_ == Phase::Failing) {
      finish(FetchError::Internal);
    }
  }

  // ---- answers -------------------------------------------------------------------------------

  static std::pair<core::ResponseHead, std::string> textAnswer(int status, std::string_view text) {
    core::ResponseHead head;
    head.status = status;
    head.headers.set("Content-Type", "text/plain; charset=utf-8");
    head.headers.set("Content-Length", std::to_string(text.size()));
    return {std::move(head), std::string(text)};
  }

  void deferAnswer(core::ResponseHead head, std::string body) {
    assert(phase_ == Phase::Idle);
    phase_ = Phase::Deferred;
    deferred_head_ = std::move(head);
    deferred_body_ = std::move(body);
    startTimer();
  }

  void deferText(int status, std::string_view text) {
    auto [head, body] = textAnswer(status, text);
    deferAnswer(std::move(head), std::move(body));
  }

  // A complete answer: head, the body (not for HEAD), done. Only from a callback.
  void deliverAnswer(core::ResponseHead head, std::string body) {
    phase_ = Phase::Done;
    if (sink_ == nullptr) return;
    sink_->onOriginHead(std::move(head));
    if (sink_ == nullptr) return;
    // The whole answer is one small chunk: its return value cannot pause anything.
    if (!is_head_ && !body.empty()) sink_->onOriginBody(body);
    finish(FetchError::None);
  }

  void answerText(int status, std::string_view text) {
    auto [head, body] = textAnswer(status, text);
    deliverAnswer(std::move(head), std::move(body));
  }

  // Exactly one onOriginDone; the sink may destroy the Fetch inside it.
  void finish(FetchError error) {
    phase_ = Phase::Done;
    if (fd_ >= 0) closeFileAsync();
    ResponseSink* sink = sink_;
    sink_ = nullptr;
    if (sink != nullptr) sink->onOriginDone(error);
  }

  // An fs error before the head, as an answer that leaks nothing about the filesystem.
  void answerFsError(ssize_t err) {
    switch (err) {
      case UV_ENOENT:
      case UV_ENOTDIR:
      case UV_ENAMETOOLONG:
      case UV_EISDIR: return answerText(404, "Not Found\n");
      case UV_EACCES:
      case UV_EPERM:
      case UV_ELOOP: return answerText(403, "Forbidden\n");
      default: return answerText(500, "Internal Server Error\n");
    }
  }

  // ---- the fs chain --------------------------------------------------------------------------

  // A request finished after cancel(): only release what it produced.
  void onCancelledResult(ssize_t result) {
    const bool opened = req_.fs_type == UV_FS_OPEN && result >= 0;
    uv_fs_req_cleanup(&req_);
    if (opened) fd_ = static_cast<uv_file>(result);
    if (fd_ >= 0) closeFileAsync();
  }

  void onResolved(ssize_t result) {
    std::string resolved;
    if (result == 0 && req_.ptr != nullptr) resolved = static_cast<const char*>(req_.ptr);
    uv_fs_req_cleanup(&req_);
    if (result < 0) return answerFsError(result);
    // A symlink may lead anywhere; only what resolves inside the root is served.
    if (!isWithinRoot(root_, resolved)) return answerText(403, "Forbidden\n");
    phase_ = Phase::Opening;
    // O_NOFOLLOW: `resolved` has no symlink left, so one appearing now is a swap -> refused.
    // O_NONBLOCK: opening a FIFO must not park a threadpool thread waiting for a writer.
    submitted(uv_fs_open(loop_, &req_, resolved.c_str(),
                         O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK, 0, &DirJob::onFs));
  }

  void onOpened(ssize_t result) {
    uv_fs_req_cleanup(&req_);
    if (result < 0) return answerFsError(result);
    fd_ = static_cast<uv_file>(result);
    phase_ = Phase::Stating;
    submitted(uv_fs_fstat(loop_, &req_, fd_, &DirJob::onFs));
  }

  void onStat(ssize_t result) {
    const uv_stat_t st = req_.statbuf;
    uv_fs_req_cleanup(&req_);
    if (result < 0) return answerText(500, "Internal Server Error\n");
    // A folder is not an object (S3 semantics); devices, FIFOs and sockets are not files.
    if (S_ISDIR(st.st_mode)) return answerText(404, "Not Found\n");
    if (!S_ISREG(st.st_mode)) return answerText(403, "Forbidden\n");

    const std::uint64_t size = st.st_size;
    const auto mtime_s = static_cast<std::int64_t>(st.st_mtim.tv_sec);
    const std::string etag = makeFileEtag(mtime_s, st.st_mtim.tv_nsec, size);
    const std::string last_modified = core::formatHttpDate(mtime_s);
    const core::HeaderMap& req_headers = request_.head.headers;

    core::ResponseHead head;
    if (evaluateConditional(req_headers, etag, mtime_s) == Conditional::NotModified) {
      head.status = 304;
      head.headers.set("ETag", etag);
      head.headers.set("Last-Modified", last_modified);
      return deliverAnswer(std::move(head), {});
    }
    // RFC 9110 §14.2: Range applies to GET only.
    const ByteRange range =
        is_head_ ? ByteRange{} : requestedRange(req_headers, size, etag, mtime_s);
    if (range.kind == RangeKind::Unsatisfiable) {
      auto [h, body] = textAnswer(416, "Range Not Satisfiable\n");
      h.headers.set("Content-Range", "bytes */" + std::to_string(size));
      h.headers.set("ETag", etag);
      h.headers.set("Last-Modified", last_modified);
      return deliverAnswer(std::move(h), std::move(body));
    }
    offset_ = 0;
    remaining_ = size;
    head.status = 200;
    if (range.kind == RangeKind::Single) {
      head.status = 206;
      offset_ = range.first;
      remaining_ = range.length();
      head.headers.set("Content-Range", "bytes " + std::to_string(range.first) + "-" +
                                            std::to_string(range.last) + "/" +
                                            std::to_string(size));
    }
    head.headers.set("Content-Type", mimeTypeForPath(relative_));
    head.headers.set("Content-Length", std::to_string(remaining_));
    head.headers.set("ETag", etag);
    head.headers.set("Last-Modified", last_modified);
    head.headers.set("Accept-Ranges", "bytes");
    if (is_head_ || remaining_ == 0) return deliverAnswer(std::move(head), {});

    phase_ = Phase::Reading;
    sink_->onOriginHead(std::move(head));
    if (sink_ == nullptr) return;  // cancelled inside onOriginHead: cancel() closed the file
    readNext();
  }

  void readNext() {
    assert(phase_ == Phase::Reading && remaining_ > 0 && fd_ >= 0);
    if (!buffer_) buffer_ = std::make_unique<char[]>(kReadChunk);
    const auto len = static_cast<unsigned>(std::min<std::uint64_t>(kReadChunk, remaining_));
    const uv_buf_t buf = uv_buf_init(buffer_.get(), len);
    submitted(uv_fs_read(loop_, &req_, fd_, &buf, 1, static_cast<std::int64_t>(offset_),
                         &DirJob::onFs));
  }

  void onRead(ssize_t result) {
    uv_fs_req_cleanup(&req_);
    // An error, or EOF before Content-Length bytes (the file shrank): the body is cut short.
    if (result <= 0) return finish(FetchError::Internal);
    const auto n = std::min<std::uint64_t>(static_cast<std::uint64_t>(result), remaining_);
    offset_ += n;
    remaining_ -= n;
    const bool more = sink_->onOriginBody(std::string_view(buffer_.get(), n));
    if (sink_ == nullptr) return;  // cancelled inside onOriginBody
    if (remaining_ == 0) return finish(FetchError::None);
    if (!more) {
      phase_ = Phase::Paused;  // resume() reads on
      return;
    }
    readNext();
  }

  uv_loop_t* loop_;
  ResponseSink* sink_;  // nullptr once done or cancelled
  const std::string root_;
  OriginRequest request_;
  Phase phase_ = Phase::Idle;
  bool is_head_ = false;
  std::string relative_;  // the object's path under the root, decoded and normalised

  uv_fs_t req_{};                        // the one request in flight (see in_flight_)
  std::shared_ptr<DirJob> in_flight_;    // self-reference while req_ is pending
  uv_file fd_ = -1;
  std::uint64_t offset_ = 0;             // next byte to read
  std::uint64_t remaining_ = 0;          // bytes still owed to the sink
  std::unique_ptr<char[]> buffer_;       // read target; the job outlives any pending read

  std::unique_ptr<core::Timer> timer_;   // next-turn delivery of decisions made synchronously
  core::ResponseHead deferred_head_;
  std::string deferred_body_;
};

class DirFetch final : public Fetch {
 public:
  explicit DirFetch(std::shared_ptr<DirJob> job) : job_(std::move(job)) {}
  ~DirFetch() override { job_->cancel(); }

  // Fetch. The origin serves no method that takes a body, so one is discarded as it comes.
  void sendBody(std::string_view) override {}
  void endBody() override {}
  std::size_t pendingBodyBytes() const override { return 0; }
  void resume() override { job_->resume(); }

 private:
  std::shared_ptr<DirJob> job_;
};

std::string resolveRoot(uv_loop_t* loop, const std::string& configured) {
  // Synchronous (no callback): runs once at worker start, before the loop serves anything.
  uv_fs_t req;
  std::string resolved;
  if (uv_fs_realpath(loop, &req, configured.c_str(), nullptr) == 0 && req.ptr != nullptr) {
    resolved = static_cast<const char*>(req.ptr);
  }
  uv_fs_req_cleanup(&req);
  return resolved;
}

}  // namespace

DirOriginClient::DirOriginClient(uv_loop_t* loop, const conf::DirOrigin& cfg)
    : loop_(loop), root_(resolveRoot(loop, cfg.root)) {}

FetchPtr DirOriginClient::fetch(OriginRequest request, ResponseSink& sink) {
  auto job = std::make_shared<DirJob>(loop_, sink, root_, std::move(request));
  job->start();
  return std::make_unique<DirFetch>(std::move(job));
}

}  // namespace portico::origin
