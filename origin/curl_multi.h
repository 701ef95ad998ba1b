#pragma once
// CurlMulti: the libcurl <-> libuv bridge, one per worker loop (style.md G7, §4.3; the model is
// curl's docs/examples/multi-uv.c).
//
//   CURLMOPT_SOCKETFUNCTION -> exactly one uv_poll_t per live curl socket (fd -> watcher map)
//   CURLMOPT_TIMERFUNCTION  -> one uv_timer_t
//   poll / timer fires      -> curl_multi_socket_action, then drain curl_multi_info_read, then
//                              dispatch the transfers that have something to deliver.
//
// The rule this class exists for: no user callback ever runs inside a libcurl callback (curl
// 7.88 rejects re-entrant multi calls with CURLM_RECURSIVE_API_CALL, and a sink may well start or
// cancel a fetch). libcurl callbacks (write/header/read) only buffer, set flags and call
// CurlTransfer::schedule(); the transfer's onDispatch() then runs from CurlMulti with no libcurl
// frame on the stack: right after socket_action returns, or from a uv_idle_t on a later turn.
//
// Threading: created, used and destroyed on the loop's thread only. libcurl handles are per
// worker (neither CURLM nor CURL may cross loops).
//
// Connection reuse: keep-alive connections live in the multi handle's connection cache
// (CURLMOPT_MAXCONNECTS), so one CurlMulti per worker, living as long as the worker, is the
// worker's upstream connection pool.
//
// Lifetime: the destructor removes every easy handle still added (their transfers are told
// nothing but onMultiGone(): no onCurlDone()/onDispatch() after that), detaches every
// registered transfer, cleans up the multi handle (which closes pooled connections) and closes
// its uv handles. The loop must run afterwards for the close callbacks (core::closeLoop does).
#include <uv.h>

#include <cstddef>
#include <deque>
#include <unordered_map>
#include <unordered_set>
#include <vector>

namespace portico::origin {

class CurlMulti;

// One unit of work driven by a CurlMulti: normally one easy handle (see http_origin.cc), but a
// transfer may also use the dispatch machinery alone to defer deliveries out of a call stack.
// Every method runs on the loop thread.
class CurlTransfer {
 public:
  CurlTransfer(const CurlTransfer&) = delete;
  CurlTransfer& operator=(const CurlTransfer&) = delete;

 protected:
  // Registers with `multi`, which must outlive this object or tell it (multi() turns nullptr).
  explicit CurlTransfer(CurlMulti& multi);
  // Removes the easy handle if still added, drops any scheduled dispatch and unregisters.
  // Derived destructors must call detachEasy() before curl_easy_cleanup().
  virtual ~CurlTransfer();

  // Adds the configured easy handle (a CURL*) to the multi. Sets CURLOPT_PRIVATE. The transfer
  // makes progress only from later loop turns (libcurl arms its timer; nothing runs now).
  // Returns false if libcurl refused the handle or the multi is gone.
  bool startEasy(void* easy);
  // Removes the easy handle from the multi if it is still added (idempotent). Outside libcurl
  // callbacks only. After it the transfer gets no onCurlDone().
  void detachEasy();
  // Asks for one onDispatch() call from outside libcurl: after the socket_action in progress, or
  // on a later loop turn. Idempotent until the dispatch starts; may be called from libcurl
  // callbacks. No-op once the multi is gone.
  void schedule();

  // nullptr once the CurlMulti has been destroyed.
  CurlMulti* multi() const { return multi_; }
  // The easy handle while it is added to the multi, else nullptr.
  void* easy() const { return easy_; }

  // The easy handle finished (CURLMSG_DONE) with CURLcode `result`. Called from the drain after
  // socket_action; the handle has already been removed from the multi. Record only: a dispatch
  // is scheduled right after.
  virtual void onCurlDone(int result) = 0;
  // Deliver whatever is buffered to the user. Runs outside libcurl; may destroy `this`.
  virtual void onDispatch() = 0;
  // The CurlMulti is being destroyed: the easy handle is already out and multi() is nullptr.
  // Release loop resources (timers) here; never call user code.
  virtual void onMultiGone() {}

 private:
  friend class CurlMulti;
  CurlMulti* multi_;
  void* easy_ = nullptr;
  bool scheduled_ = false;
};

class CurlMulti {
 public:
  explicit CurlMulti(uv_loop_t* loop);
  ~CurlMulti();
  CurlMulti(const CurlMulti&) = delete;
  CurlMulti& operator=(const CurlMulti&) = delete;

  uv_loop_t* loop() const { return loop_; }
  // Easy handles currently added (for tests and metrics).
  std::size_t activeTransfers() const { return active_; }
  // Live watched sockets (for tests: one uv_poll_t each).
  std::size_t watchedSockets() const { return watchers_.size(); }
  // uv_poll_t handles kept for the fd numbers libcurl stopped watching (see watchSocket): at
  // most kMaxParkedWatchers. Those of open sockets stay registered with epoll (dormant).
  std::size_t parkedWatchers() const { return parked_.size(); }
  std::size_t dormantWatchers() const;  // parked and still registered with epoll
  // uv_poll_start calls so far (for tests: each one costs libuv an epoll_ctl DEL and ADD).
  std::size_t pollStarts() const { return poll_starts_; }
  static constexpr std::size_t kMaxParkedWatchers = 128;

  // Upper bound of idle keep-alive connections kept in the cache (CURLMOPT_MAXCONNECTS).
  static constexpr long kMaxCachedConnections = 64;
  // Upper bound of idle easy handles kept for reuse.
  static constexpr std::size_t kMaxPooledEasy = 256;

  // Easy handles are pooled: curl_easy_init() costs a large zeroed allocation and a dozen
  // small ones, which showed as a tenth of the pass-through profile. acquireEasy() hands out a
  // handle in its default state (a pooled one went through curl_easy_reset(), so no option,
  // credential or header list of an earlier transfer survives) or nullptr if libcurl cannot
  // make one. releaseEasy() takes back a handle that is not added to the multi; it is reset at
  // once (credentials do not linger) and kept, or cleaned up when the pool is full.
  void* acquireEasy();
  void releaseEasy(void* easy);

 private:
  friend class CurlTransfer;
  friend struct CurlMultiCallbacks;  // the libcurl / libuv trampolines in curl_multi.cc
  struct Watcher;

  void registerTransfer(CurlTransfer* t);
  void unregisterTransfer(CurlTransfer* t);
  bool addEasy(CurlTransfer* t, void* easy);
  void removeEasy(CurlTransfer* t);
  void schedule(CurlTransfer* t);

  // libcurl asks to watch / stop watching `fd`.
  void watchSocket(int fd, int what, void* socketp);
  // libcurl closes `fd` (CURLOPT_CLOSESOCKETFUNCTION): its watcher leaves epoll first.
  void closeSocket(int fd);
  // A dormant watcher saw an event (the peer closed an idle connection, or sent something).
  void onDormantEvent(Watcher* w);
  void stopWatcher(Watcher* w);
  void armTimer(long timeout_ms);
  // Drives libcurl for one event, then drains messages and dispatches (never re-entrant).
  void socketAction(int fd, int ev_bitmask);
  void drainMessages();
  void dispatchPending();

  uv_loop_t* loop_;
  void* multi_;  // CURLM*
  uv_timer_t* timer_;
  uv_idle_t* idle_;
  std::unordered_map<int, Watcher*> watchers_;
  std::unordered_map<int, Watcher*> parked_;  // unwatched by libcurl, by fd number: reused
  std::unordered_set<CurlTransfer*> transfers_;
  std::deque<CurlTransfer*> pending_;  // nullptr: unscheduled after queueing
  std::vector<void*> easy_pool_;       // idle CURL* handles, already reset
  std::size_t active_ = 0;
  std::size_t poll_starts_ = 0;
  bool in_action_ = false;
  bool dispatching_ = false;
};

}  // namespace portico::origin
