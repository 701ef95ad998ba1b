#include "origin/curl_multi.h"

#include <curl/curl.h>

#include <algorithm>
#include <cassert>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <mutex>

#include <unistd.h>

#include "proxy/core/uv_util.h"

namespace portico::origin {

// One uv_poll_t per curl socket. `poll` is the first member so the handle pointer is the
// Watcher pointer (core::closeAndDelete<Watcher> deletes it in the close callback).
struct CurlMulti::Watcher {
  uv_poll_t poll;
  int fd = -1;
  CurlMulti* owner = nullptr;
  bool started = false;  // uv_poll_start'ed: the fd is registered with the loop's epoll
  int events = 0;        // ... for these UV_READABLE / UV_WRITABLE bits
  bool dormant = false;  // parked but still started (libcurl does not watch the fd now)
};

namespace {

CURLM* asMulti(void* p) { return static_cast<CURLM*>(p); }

void globalInitOnce() {
  static std::once_flag once;
  std::call_once(once, [] {
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
      std::fprintf(stderr, "portico: curl_global_init failed\n");
      std::abort();
    }
  });
}

}  // namespace

// The trampolines: libcurl and libuv call these; they recover `this` and forward. None of them
// calls user code directly.
struct CurlMultiCallbacks {
  static int onSocket(CURL* /*easy*/, curl_socket_t s, int what, void* userp, void* socketp) {
    static_cast<CurlMulti*>(userp)->watchSocket(static_cast<int>(s), what, socketp);
    return 0;
  }
  static int onCloseSocket(void* clientp, curl_socket_t s) {
    static_cast<CurlMulti*>(clientp)->closeSocket(static_cast<int>(s));
    return 0;
  }
  static int onCurlTimer(CURLM* /*multi*/, long timeout_ms, void* userp) {
    static_cast<CurlMulti*>(userp)->armTimer(timeout_ms);
    return 0;
  }
  static void onPoll(uv_poll_t* handle, int status, int events) {
    auto* w = reinterpret_cast<CurlMulti::Watcher*>(handle);
    if (w->owner == nullptr) return;
    if (w->dormant) {
      w->owner->onDormantEvent(w);
      return;
    }
    int flags = 0;
    if (status < 0) flags |= CURL_CSELECT_ERR;
    if (events & UV_READABLE) flags |= CURL_CSELECT_IN;
    if (events & UV_WRITABLE) flags |= CURL_CSELECT_OUT;
    // `w` may be closed by libcurl during the action (CURL_POLL_REMOVE): read it first.
    w->owner->socketAction(w->fd, flags);
  }
  static void onUvTimer(uv_timer_t* t) {
    auto* self = static_cast<CurlMulti*>(t->data);
    if (self != nullptr) self->socketAction(CURL_SOCKET_TIMEOUT, 0);
  }
  static void onIdle(uv_idle_t* idle) {
    auto* self = static_cast<CurlMulti*>(idle->data);
    if (self != nullptr) self->dispatchPending();
  }
};

// ---- CurlTransfer -------------------------------------------------------------------------

CurlTransfer::CurlTransfer(CurlMulti& multi) : multi_(&multi) { multi.registerTransfer(this); }

CurlTransfer::~CurlTransfer() {
  if (multi_ != nullptr) multi_->unregisterTransfer(this);
}

bool CurlTransfer::startEasy(void* easy) {
  if (multi_ == nullptr || easy_ != nullptr) return false;
  return multi_->addEasy(this, easy);
}

void CurlTransfer::detachEasy() {
  if (multi_ != nullptr) multi_->removeEasy(this);
}

void CurlTransfer::schedule() {
  if (multi_ != nullptr) multi_->schedule(this);
}

// ---- CurlMulti ----------------------------------------------------------------------------

CurlMulti::CurlMulti(uv_loop_t* loop)
    : loop_(loop), multi_(nullptr), timer_(new uv_timer_t), idle_(new uv_idle_t) {
  globalInitOnce();
  multi_ = curl_multi_init();
  if (multi_ == nullptr) {
    std::fprintf(stderr, "portico: curl_multi_init failed\n");
    std::abort();
  }
  uv_timer_init(loop_, timer_);
  timer_->data = this;
  uv_idle_init(loop_, idle_);
  idle_->data = this;
  CURLM* m = asMulti(multi_);
  curl_multi_setopt(m, CURLMOPT_SOCKETFUNCTION, &CurlMultiCallbacks::onSocket);
  curl_multi_setopt(m, CURLMOPT_SOCKETDATA, this);
  curl_multi_setopt(m, CURLMOPT_TIMERFUNCTION, &CurlMultiCallbacks::onCurlTimer);
  curl_multi_setopt(m, CURLMOPT_TIMERDATA, this);
  curl_multi_setopt(m, CURLMOPT_MAXCONNECTS, kMaxCachedConnections);
}

CurlMulti::~CurlMulti() {
  assert(!in_action_ && !dispatching_ && "CurlMulti destroyed from one of its callbacks");
  CURLM* m = asMulti(multi_);
  // Transfers are told nothing: their easy handles leave the multi and they lose the pointer.
  for (CurlTransfer* t : transfers_) {
    if (t->easy_ != nullptr) curl_multi_remove_handle(m, static_cast<CURL*>(t->easy_));
    t->easy_ = nullptr;
    t->multi_ = nullptr;
    t->scheduled_ = false;
    t->onMultiGone();
  }
  transfers_.clear();
  pending_.clear();
  active_ = 0;
  for (void* e : easy_pool_) curl_easy_cleanup(static_cast<CURL*>(e));
  easy_pool_.clear();
  // Closes the pooled connections; libcurl may still report CURL_POLL_REMOVE for them here.
  curl_multi_cleanup(m);
  multi_ = nullptr;
  for (auto* set : {&watchers_, &parked_}) {
    for (auto& [fd, w] : *set) {
      stopWatcher(w);
      w->owner = nullptr;
      core::closeAndDelete(w);
    }
    set->clear();
  }
  uv_timer_stop(timer_);
  core::closeAndDelete(timer_);
  uv_idle_stop(idle_);
  core::closeAndDelete(idle_);
}

void CurlMulti::registerTransfer(CurlTransfer* t) { transfers_.insert(t); }

void* CurlMulti::acquireEasy() {
  CURL* e = nullptr;
  if (easy_pool_.empty()) {
    e = curl_easy_init();
    if (e == nullptr) return nullptr;
  } else {
    e = static_cast<CURL*>(easy_pool_.back());
    easy_pool_.pop_back();
  }
  // Every socket libcurl closes goes through closeSocket (a connection keeps the callback of
  // the handle that opened it, so this must be on every handle): see watchSocket.
  curl_easy_setopt(e, CURLOPT_CLOSESOCKETFUNCTION, &CurlMultiCallbacks::onCloseSocket);
  curl_easy_setopt(e, CURLOPT_CLOSESOCKETDATA, static_cast<void*>(this));
  return e;
}

void CurlMulti::releaseEasy(void* easy) {
  if (easy == nullptr) return;
  auto* e = static_cast<CURL*>(easy);
  if (easy_pool_.size() >= kMaxPooledEasy) {
    curl_easy_cleanup(e);
    return;
  }
  curl_easy_reset(e);
  easy_pool_.push_back(e);
}

void CurlMulti::unregisterTransfer(CurlTransfer* t) {
  removeEasy(t);
  if (t->scheduled_) {
    std::replace(pending_.begin(), pending_.end(), t, static_cast<CurlTransfer*>(nullptr));
  }
  t->scheduled_ = false;
  transfers_.erase(t);
  t->multi_ = nullptr;
}

bool CurlMulti::addEasy(CurlTransfer* t, void* easy) {
  assert(!in_action_ && "easy handle added from inside a libcurl callback");
  auto* e = static_cast<CURL*>(easy);
  curl_easy_setopt(e, CURLOPT_PRIVATE, static_cast<void*>(t));
  // libcurl arms its timer (timeout 0) from in here; the transfer starts on a later loop turn.
  if (curl_multi_add_handle(asMulti(multi_), e) != CURLM_OK) return false;
  t->easy_ = easy;
  ++active_;
  return true;
}

void CurlMulti::removeEasy(CurlTransfer* t) {
  if (t->easy_ == nullptr) return;
  assert(!in_action_ && "easy handle removed from inside a libcurl callback");
  curl_multi_remove_handle(asMulti(multi_), static_cast<CURL*>(t->easy_));
  t->easy_ = nullptr;
  --active_;
}

void CurlMulti::schedule(CurlTransfer* t) {
  if (!t->scheduled_) {
    t->scheduled_ = true;
    pending_.push_back(t);
  }
  // Idle handles make the loop poll without blocking: a dispatch scheduled outside
  // socket_action (resume(), a failed start) runs on the next turn. socketAction() dispatches
  // right away and stops it again when nothing is left.
  uv_idle_start(idle_, &CurlMultiCallbacks::onIdle);
}

void CurlMulti::watchSocket(int fd, int what, void* /*socketp*/) {
  auto it = watchers_.find(fd);
  if (what == CURL_POLL_REMOVE) {
    if (it == watchers_.end()) return;
    // libcurl says REMOVE at the end of every transfer, also when the connection goes back to
    // its cache and the next transfer watches the same fd again. The handle is parked by fd
    // number and stays started ("dormant"): re-watching it with the same events then costs no
    // syscall, where stopping and starting it again cost an epoll_ctl DEL and ADD per transfer
    // (and a fresh uv_poll_init_socket an ioctl and two more). A dormant handle is stopped
    // when its fd shows an event nobody asked for (onDormantEvent: the server closed the idle
    // connection) and always before libcurl closes the fd (closeSocket, libcurl's close-socket
    // callback), so epoll never holds a closed fd whose number a new socket may get.
    Watcher* w = it->second;
    watchers_.erase(it);
    if (parked_.size() >= kMaxParkedWatchers) {
      stopWatcher(w);
      w->owner = nullptr;
      core::closeAndDelete(w);
    } else {
      w->dormant = w->started;
      parked_.emplace(fd, w);
    }
    return;
  }
  int events = 0;
  if (what & CURL_POLL_IN) events |= UV_READABLE;
  if (what & CURL_POLL_OUT) events |= UV_WRITABLE;
  Watcher* w = nullptr;
  if (it != watchers_.end()) {
    w = it->second;
  } else if (auto p = parked_.find(fd); p != parked_.end()) {
    // A parked handle holds only the fd number: reusing it for a new socket that got the
    // number of a closed one is the same as a fresh handle.
    w = p->second;
    parked_.erase(p);
    w->dormant = false;
    watchers_.emplace(fd, w);
  } else {
    w = new Watcher;
    w->fd = fd;
    w->owner = this;
    if (uv_poll_init_socket(loop_, &w->poll, fd) != 0) {
      // Cannot watch it: the transfer will run into its own timeout and fail cleanly.
      delete w;
      return;
    }
    w->poll.data = w;
    auto [pos, inserted] = watchers_.emplace(fd, w);
    assert(inserted && "two uv_poll_t for one fd");
    (void)pos;
    (void)inserted;
  }
  // libuv 1.44's uv_poll_start always stops the handle first, which takes the fd out of epoll
  // (EPOLL_CTL_DEL) for the next turn to put it back (ADD): skipped when a started handle keeps
  // its events, which is every transfer on a connection that was parked (two syscalls each).
  if (w->started && w->events == events) return;
  uv_poll_start(&w->poll, events, &CurlMultiCallbacks::onPoll);
  ++poll_starts_;
  w->started = true;
  w->events = events;
}

std::size_t CurlMulti::dormantWatchers() const {
  return static_cast<std::size_t>(
      std::count_if(parked_.begin(), parked_.end(), [](const auto& p) { return p.second->dormant; }));
}

void CurlMulti::stopWatcher(Watcher* w) {
  if (w->started) uv_poll_stop(&w->poll);
  w->started = false;
  w->events = 0;
  w->dormant = false;
}

void CurlMulti::onDormantEvent(Watcher* w) { stopWatcher(w); }

void CurlMulti::closeSocket(int fd) {
  if (auto it = watchers_.find(fd); it != watchers_.end()) {
    // Closed while watched (a failed transfer): libcurl may or may not say REMOVE later.
    Watcher* w = it->second;
    watchers_.erase(it);
    stopWatcher(w);
    if (parked_.size() >= kMaxParkedWatchers || !parked_.emplace(fd, w).second) {
      w->owner = nullptr;
      core::closeAndDelete(w);
    }
  } else if (auto p = parked_.find(fd); p != parked_.end()) {
    stopWatcher(p->second);
  }
  ::close(fd);
}

void CurlMulti::armTimer(long timeout_ms) {
  if (timeout_ms < 0) {
    uv_timer_stop(timer_);
    return;
  }
  // Even a 0 timeout goes through the timer: socket_action must not be called from in here.
  uv_timer_start(timer_, &CurlMultiCallbacks::onUvTimer, static_cast<std::uint64_t>(timeout_ms), 0);
}

void CurlMulti::socketAction(int fd, int ev_bitmask) {
  assert(!in_action_);
  int running = 0;
  in_action_ = true;
  curl_multi_socket_action(asMulti(multi_), static_cast<curl_socket_t>(fd), ev_bitmask, &running);
  in_action_ = false;
  drainMessages();
  dispatchPending();
}

void CurlMulti::drainMessages() {
  CURLM* m = asMulti(multi_);
  int left = 0;
  while (CURLMsg* msg = curl_multi_info_read(m, &left)) {
    if (msg->msg != CURLMSG_DONE) continue;
    CURL* easy = msg->easy_handle;
    const CURLcode result = msg->data.result;  // `msg` dies with remove_handle
    void* priv = nullptr;
    curl_easy_getinfo(easy, CURLINFO_PRIVATE, &priv);
    auto* t = static_cast<CurlTransfer*>(priv);
    curl_multi_remove_handle(m, easy);
    if (t != nullptr && t->easy_ == easy) {
      t->easy_ = nullptr;
      --active_;
      t->onCurlDone(static_cast<int>(result));
      schedule(t);
    }
  }
}

void CurlMulti::dispatchPending() {
  if (dispatching_) return;
  dispatching_ = true;
  // Only what is queued now: a transfer that re-schedules itself during its dispatch (e.g.
  // resume() from a body callback) runs on the next loop turn, so this loop is bounded.
  std::size_t n = pending_.size();
  for (std::size_t i = 0; i < n && !pending_.empty(); ++i) {
    CurlTransfer* t = pending_.front();
    pending_.pop_front();
    if (t == nullptr) continue;  // destroyed after it was queued
    t->scheduled_ = false;
    t->onDispatch();  // may destroy t or others (their slots turn nullptr), or queue more
  }
  while (!pending_.empty() && pending_.front() == nullptr) pending_.pop_front();
  dispatching_ = false;
  if (pending_.empty()) uv_idle_stop(idle_);
}

}  // namespace portico::origin
