#pragma once
// SharedTierSync: the main thread's side of the shared tier (proxy/pipeline/shared_tier.h).
//   - keeps SharedTierState's purge generations in step with Redis: loads them at start, polls
//     them every kPollMs (so an edge that missed a purge message catches up within a second),
//     and marks the tier not ready while Redis cannot be reached (workers then skip it);
//   - after a purge on this edge: INCRs the scope's generation and publishes the news;
//   - on news from another edge: adopts the generation and drops the purged objects from this
//     edge's L1 (through `on_remote_purge`).
// Main loop's thread only. Message (JSON, on kPurgeChannel):
//   {"node": "<edge id>", "scope": "<key prefix>", "gen": "<generation>",
//    "site": "<name>", "paths": ["/a", "/b*"]}        a site purge (no paths: all of it)
//   {"node": ..., "scope": ..., "gen": ..., "api": "<api>", "stage": "<stage>"}   a stage flush
#include <uv.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "cache/redis_executor.h"
#include "proxy/core/uv_util.h"
#include "proxy/pipeline/shared_tier.h"

namespace portico::proxy {

struct PurgeNews {
  std::string site;                // a site purge, or
  std::vector<std::string> paths;  //   (its paths; empty = everything)
  std::string api, stage;          // a stage flush
};

class SharedTierSync {
 public:
  static constexpr std::uint64_t kPollMs = 1000;

  SharedTierSync(uv_loop_t* loop, SharedTierState& state, std::function<void(const PurgeNews&)> on_remote_purge);
  ~SharedTierSync();

  // The scopes whose generations are kept (every site and stage of the conf): at start and
  // after each reload.
  void setScopes(std::vector<std::string> scopes);
  // Called after this edge purged its own L1: retires the scope's L2 entries and tells the
  // other edges. Fire-and-forget (Redis down: logged; the edges' L1 copies expire by TTL).
  void publish(const PurgeNews& news);

  struct Counters {
    std::uint64_t published = 0, received = 0, publish_errors = 0;
  };
  const Counters& counters() const { return counters_; }
  cache::RedisStats redisStats() const { return redis_->stats(); }

 private:
  void poll();
  void onMessage(std::string_view message);

  SharedTierState& state_;
  std::function<void(const PurgeNews&)> on_remote_purge_;
  std::unique_ptr<cache::RedisExecutor> redis_;
  core::Timer timer_;
  std::vector<std::string> scopes_;
  bool polling_ = false;
  std::uint64_t purges_ = 0;
  Counters counters_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace portico::proxy
