#pragma once
// DeferQueue: run a function later on the same loop, from a fresh stack (after the current
// callback chain unwinds). Used to destroy objects and to start the next pipelined request
// without re-entering the code that asked for it (h2o's _delay_free idea). Functions run in
// order, before the loop blocks again: what an I/O callback defers runs in the check phase of
// the same iteration, right after the poll that delivered it (no extra epoll_wait); what is
// deferred elsewhere (timers, the check phase itself) in the idle phase of the next iteration,
// which keeps the poll from blocking while anything is queued. Loop thread only.
#include <uv.h>

#include <functional>
#include <vector>

namespace portico::core {

class DeferQueue {
 public:
  explicit DeferQueue(uv_loop_t* loop);
  ~DeferQueue();
  DeferQueue(const DeferQueue&) = delete;
  DeferQueue& operator=(const DeferQueue&) = delete;

  void defer(std::function<void()> fn);
  // Runs everything queued now (and what those queue), e.g. before shutting a loop down.
  void runAll();

 private:
  static void onIdle(uv_idle_t* idle);
  static void onPrepare(uv_prepare_t* prepare);
  static void onCheck(uv_check_t* check);
  void runBatch();

  uv_idle_t* idle_;
  uv_prepare_t* prepare_;  // marks the start of the poll phase
  uv_check_t* check_;      // runs what the poll phase's callbacks deferred
  bool in_poll_ = false;   // between prepare and check: I/O callbacks are running
  std::vector<std::function<void()>> queue_;
  std::vector<std::function<void()>> spare_;  // an empty vector with capacity, for runBatch()
};

}  // namespace portico::core
