#pragma once
// What a request pipeline needs from its worker. Loop thread only.
#include <uv.h>

#include "proxy/core/defer_queue.h"
#include "proxy/core/metrics.h"
#include "proxy/pipeline/cache_runtime.h"
#include "proxy/snapshot.h"

namespace portico::proxy {

class PipelineContext {
 public:
  virtual ~PipelineContext() = default;
  virtual uv_loop_t* loop() = 0;
  // The current view (snapshot + origins). A pipeline keeps the one it started with.
  virtual WorkerViewPtr view() = 0;
  virtual core::MetricsShard& metrics() = 0;
  virtual core::DeferQueue& deferQueue() = 0;
  // The HTTP cache, or null when the worker runs without one (tests of the pass-through path).
  virtual CacheRuntime* cache() { return nullptr; }
};

}  // namespace portico::proxy
