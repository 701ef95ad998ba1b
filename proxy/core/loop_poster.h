#pragma once
// LoopPoster: run a function on a given loop's thread, posted from any thread (h2o multithread
// queue, Envoy dispatcher.post). Functions run in post order. Functions still queued when the
// poster is destroyed are dropped (destroyed without running).
#include <uv.h>

#include <functional>
#include <mutex>
#include <vector>

namespace portico::core {

class LoopPoster {
 public:
  // Must be constructed on the loop's thread (or before the loop runs).
  explicit LoopPoster(uv_loop_t* loop);
  // Must be destroyed on the loop's thread.
  ~LoopPoster();
  LoopPoster(const LoopPoster&) = delete;
  LoopPoster& operator=(const LoopPoster&) = delete;

  // Thread-safe. `fn` runs later on the loop's thread, never synchronously inside post().
  void post(std::function<void()> fn);
  // Keep the loop alive while idle (default) or not (uv_unref).
  void unref();

 private:
  static void onAsync(uv_async_t* a);
  void drain();

  uv_async_t* async_;
  std::mutex mu_;
  std::vector<std::function<void()>> queue_;
};

}  // namespace portico::core
