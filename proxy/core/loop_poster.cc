#include "proxy/core/loop_poster.h"

#include "proxy/core/uv_util.h"

namespace portico::core {

LoopPoster::LoopPoster(uv_loop_t* loop) : async_(new uv_async_t) {
  uv_async_init(loop, async_, &LoopPoster::onAsync);
  async_->data = this;
}

LoopPoster::~LoopPoster() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    async_->data = nullptr;
  }
  closeAndDelete(async_);
}

void LoopPoster::post(std::function<void()> fn) {
  std::lock_guard<std::mutex> lock(mu_);
  queue_.push_back(std::move(fn));
  uv_async_send(async_);
}

void LoopPoster::unref() { uv_unref(reinterpret_cast<uv_handle_t*>(async_)); }

void LoopPoster::onAsync(uv_async_t* a) {
  auto* self = static_cast<LoopPoster*>(a->data);
  if (self != nullptr) self->drain();
}

void LoopPoster::drain() {
  std::vector<std::function<void()>> batch;
  {
    std::lock_guard<std::mutex> lock(mu_);
    batch.swap(queue_);
  }
  for (auto& fn : batch) fn();
}

}  // namespace portico::core
