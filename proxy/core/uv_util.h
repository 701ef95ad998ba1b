#pragma once
// libuv lifetime helpers. The libuv rule: a handle's memory may be freed only in its close
// callback. closeAndDelete() hands ownership to libuv, which deletes the handle there.
#include <uv.h>

#include <functional>
#include <memory>

namespace portico::core {

// Closes `handle` (if not already closing) and deletes it in the close callback. `T` is the
// concrete handle type that was allocated with `new`.
template <typename T>
void closeAndDelete(T* handle) {
  if (handle == nullptr) return;
  auto* h = reinterpret_cast<uv_handle_t*>(handle);
  if (uv_is_closing(h)) return;
  h->data = nullptr;
  uv_close(h, [](uv_handle_t* closed) { delete reinterpret_cast<T*>(closed); });
}

// Timer: an RAII one-shot or repeating uv_timer_t. Must be created, used and destroyed on the
// loop's thread. The callback never fires after stop() or destruction.
class Timer {
 public:
  explicit Timer(uv_loop_t* loop);
  ~Timer();
  Timer(const Timer&) = delete;
  Timer& operator=(const Timer&) = delete;

  void start(std::uint64_t timeout_ms, std::function<void()> fn, std::uint64_t repeat_ms = 0);
  void stop();
  bool active() const;

 private:
  static void onTimer(uv_timer_t* t);
  uv_timer_t* handle_;
  std::function<void()> fn_;
};

// Runs one loop iteration at a time until nothing is pending, then closes every handle that is
// still open and runs the loop until they are gone. Returns uv_loop_close's result.
int closeLoop(uv_loop_t* loop);

}  // namespace portico::core
