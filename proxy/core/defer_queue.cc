#include "proxy/core/defer_queue.h"

#include "proxy/core/uv_util.h"

namespace portico::core {

DeferQueue::DeferQueue(uv_loop_t* loop) : idle_(new uv_idle_t) {
  uv_idle_init(loop, idle_);
  idle_->data = this;
}

DeferQueue::~DeferQueue() {
  uv_idle_stop(idle_);
  closeAndDelete(idle_);
}

void DeferQueue::defer(std::function<void()> fn) {
  queue_.push_back(std::move(fn));
  if (queue_.size() == 1) uv_idle_start(idle_, &DeferQueue::onIdle);
}

void DeferQueue::runAll() {
  while (!queue_.empty()) {
    std::vector<std::function<void()>> batch;
    batch.swap(queue_);
    for (auto& fn : batch) fn();
  }
  uv_idle_stop(idle_);
}

void DeferQueue::onIdle(uv_idle_t* idle) {
  auto* self = static_cast<DeferQueue*>(idle->data);
  if (self == nullptr) return;
  std::vector<std::function<void()>> batch;
  batch.swap(self->queue_);
  for (auto& fn : batch) fn();
  if (self->queue_.empty()) uv_idle_stop(self->idle_);
}

}  // namespace portico::core
