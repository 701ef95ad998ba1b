#include "proxy/core/uv_util.h"

namespace portico::core {

Timer::Timer(uv_loop_t* loop) : handle_(new uv_timer_t) {
  uv_timer_init(loop, handle_);
  handle_->data = this;
}

Timer::~Timer() {
  uv_timer_stop(handle_);
  closeAndDelete(handle_);
}

void Timer::start(std::uint64_t timeout_ms, std::function<void()> fn, std::uint64_t repeat_ms) {
  fn_ = std::move(fn);
  uv_timer_start(handle_, &Timer::onTimer, timeout_ms, repeat_ms);
}

void Timer::stop() { uv_timer_stop(handle_); }

bool Timer::active() const {
  return uv_is_active(reinterpret_cast<const uv_handle_t*>(handle_)) != 0;
}

void Timer::onTimer(uv_timer_t* t) {
  auto* self = static_cast<Timer*>(t->data);
  if (self == nullptr || !self->fn_) return;
  // Copy: the callback may restart or destroy this timer.
  auto fn = self->fn_;
  fn();
}

int closeLoop(uv_loop_t* loop) {
  uv_walk(
      loop,
      [](uv_handle_t* h, void*) {
        if (!uv_is_closing(h)) uv_close(h, nullptr);
      },
      nullptr);
  uv_run(loop, UV_RUN_DEFAULT);
  return uv_loop_close(loop);
}

}  // namespace portico::core
