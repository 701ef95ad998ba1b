#pragma once
// DeferQueue: run a function later on the same loop, from a fresh stack (after the current
// callback chain unwinds). Used to destroy objects and to start the next pipelined request
// without re-entering the code that asked for it (h2o's _delay_free idea). Functions run in
// order, in the loop's idle phase of the next iteration (the loop does not block while any are
// queued). Loop thread only.
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
  uv_idle_t* idle_;
  std::vector<std::function<void()>> queue_;
};

}  // namespace portico::core
