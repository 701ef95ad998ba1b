#pragma once
// Hand-pumped libuv loops for component tests (style.md G5, G8): run a real loop turn by turn
// until a predicate holds, bounded in turns and wall time so a broken test fails instead of
// hanging, and close it at the end asserting that nothing was leaked (libuv's
// MAKE_VALGRIND_HAPPY: every handle closed, uv_loop_close() == 0).
//
// None of these waits for a duration to pass as a way of making something happen: they run
// the loop until an event the test expects has been observed, or give up at the bound.
#include <gtest/gtest.h>
#include <uv.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>

#include "proxy/core/uv_util.h"

namespace portico::test {

namespace detail {
// A repeating, unreferenced timer: it bounds how long one UV_RUN_ONCE turn can block in poll
// without keeping an otherwise idle loop alive.
class Ticker {
 public:
  explicit Ticker(uv_loop_t* loop) : timer_(new uv_timer_t) {
    uv_timer_init(loop, timer_);
    uv_timer_start(
        timer_, [](uv_timer_t*) {}, kTickMs, kTickMs);
    uv_unref(reinterpret_cast<uv_handle_t*>(timer_));
  }
  ~Ticker() {
    uv_timer_stop(timer_);
    // Freed by the next loop turn (expectLoopClean runs it at the latest). No turn here: the
    // caller decides when the loop runs.
    core::closeAndDelete(timer_);
  }
  Ticker(const Ticker&) = delete;
  Ticker& operator=(const Ticker&) = delete;
  static constexpr std::uint64_t kTickMs = 5;

 private:
  uv_timer_t* timer_;
};
}  // namespace detail

// Runs `loop` one turn at a time until `pred()` holds (checked before every turn) or `budget`
// of wall time has passed. Returns pred().
inline bool pumpUntil(uv_loop_t* loop, const std::function<bool()>& pred,
                      std::chrono::milliseconds budget = std::chrono::seconds(10)) {
  detail::Ticker ticker(loop);
  const auto deadline = std::chrono::steady_clock::now() + budget;
  while (!pred()) {
    if (std::chrono::steady_clock::now() >= deadline) return pred();
    uv_run(loop, UV_RUN_ONCE);
  }
  return true;
}

// Runs exactly `turns` loop turns; each blocks in poll for at most a few milliseconds.
inline void pumpTurns(uv_loop_t* loop, int turns) {
  detail::Ticker ticker(loop);
  for (int i = 0; i < turns; ++i) uv_run(loop, UV_RUN_ONCE);
}

// Lets handles that are already closing finish, then fails the test for every handle that is
// still open (a leak: its owner never closed it), closes those too and asserts that the loop
// closes. Call after destroying everything that lives on the loop.
inline void expectLoopClean(uv_loop_t* loop) {
  for (int i = 0; i < 10; ++i) uv_run(loop, UV_RUN_NOWAIT);
  std::string open;
  uv_walk(
      loop,
      [](uv_handle_t* h, void* arg) {
        if (uv_is_closing(h)) return;
        auto* list = static_cast<std::string*>(arg);
        *list += std::string(uv_handle_type_name(uv_handle_get_type(h))) + " ";
        uv_close(h, nullptr);  // leaked memory, but the loop can close
      },
      &open);
  EXPECT_TRUE(open.empty()) << "handles left open on the loop: " << open;
  for (int i = 0; i < 10; ++i) uv_run(loop, UV_RUN_NOWAIT);
  EXPECT_EQ(uv_loop_close(loop), 0) << "uv_loop_close failed: requests or handles remain";
}

}  // namespace portico::test
