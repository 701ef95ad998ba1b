#include "proxy/core/defer_queue.h"

#include "proxy/core/uv_util.h"

namespace portico::core {

DeferQueue::DeferQueue(uv_loop_t* loop)
    : idle_(new uv_idle_t), prepare_(new uv_prepare_t), check_(new uv_check_t) {
  uv_idle_init(loop, idle_);
  idle_->data = this;
  // Prepare and check run on every iteration but do not keep the loop alive on their own.
  uv_prepare_init(loop, prepare_);
  prepare_->data = this;
  uv_prepare_start(prepare_, &DeferQueue::onPrepare);
  uv_unref(reinterpret_cast<uv_handle_t*>(prepare_));
  uv_check_init(loop, check_);
  check_->data = this;
  uv_check_start(check_, &DeferQueue::onCheck);
  uv_unref(reinterpret_cast<uv_handle_t*>(check_));
}

DeferQueue::~DeferQueue() {
  uv_idle_stop(idle_);
  closeAndDelete(idle_);
  uv_prepare_stop(prepare_);
  closeAndDelete(prepare_);
  uv_check_stop(check_);
  closeAndDelete(check_);
}

void DeferQueue::defer(std::function<void()> fn) {
  queue_.push_back(std::move(fn));
  // In the poll phase the check phase of this iteration comes before any blocking; elsewhere
  // the idle handle keeps the next poll from blocking.
  if (!in_poll_ && !uv_is_active(reinterpret_cast<uv_handle_t*>(idle_))) {
    uv_idle_start(idle_, &DeferQueue::onIdle);
  }
}

void DeferQueue::runAll() {
  while (!queue_.empty()) runBatch();
  uv_idle_stop(idle_);
}

// Runs what is queued now; what those functions queue waits for the next batch.
void DeferQueue::runBatch() {
  // The queue's storage changes hands with a spare of the last batch's, so neither side
  // allocates per batch (one batch or more per request). A nested runBatch() (runAll() from a
  // deferred function) finds no spare and simply allocates.
  std::vector<std::function<void()>> batch = std::move(spare_);  // empty: cleared when kept
  spare_ = {};
  batch.swap(queue_);
  for (auto& fn : batch) fn();
  batch.clear();
  if (batch.capacity() > spare_.capacity()) spare_ = std::move(batch);
}

void DeferQueue::onIdle(uv_idle_t* idle) {
  auto* self = static_cast<DeferQueue*>(idle->data);
  if (self == nullptr) return;
  self->runBatch();
  if (self->queue_.empty()) uv_idle_stop(self->idle_);
}

void DeferQueue::onPrepare(uv_prepare_t* prepare) {
  auto* self = static_cast<DeferQueue*>(prepare->data);
  if (self != nullptr) self->in_poll_ = true;
}

void DeferQueue::onCheck(uv_check_t* check) {
  auto* self = static_cast<DeferQueue*>(check->data);
  if (self == nullptr) return;
  self->in_poll_ = false;
  if (self->queue_.empty()) return;
  self->runBatch();
  // Deferred by the batch: the next iteration's idle phase.
  if (!self->queue_.empty() && !uv_is_active(reinterpret_cast<uv_handle_t*>(self->idle_))) {
    uv_idle_start(self->idle_, &DeferQueue::onIdle);
  }
}

}  // namespace portico::core
