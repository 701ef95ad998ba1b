#include "proxy/shared_tier_sync.h"

#include <nlohmann/json.hpp>

#include "cache/cache_key.h"
#include "proxy/stats/log.h"

namespace portico::proxy {

namespace {

std::string generationKey(std::string_view scope) { return "ptc:gen:" + std::string(scope); }

std::string scopeOf(const PurgeNews& news) {
  return news.site.empty() ? cache::apiStagePrefix(news.api, news.stage) : cache::sitePrefix(news.site);
}

}  // namespace

SharedTierSync::SharedTierSync(uv_loop_t* loop, SharedTierState& state,
                               std::function<void(const PurgeNews&)> on_remote_purge)
    : state_(state), on_remote_purge_(std::move(on_remote_purge)), redis_(state.connect(loop)), timer_(loop) {
  redis_->subscribe(kPurgeChannel, [this](std::string_view message) { onMessage(message); });
  timer_.start(0, [this] { poll(); }, kPollMs);
}

SharedTierSync::~SharedTierSync() { *alive_ = false; }

void SharedTierSync::setScopes(std::vector<std::string> scopes) { scopes_ = std::move(scopes); }

void SharedTierSync::poll() {
  if (polling_) return;  // the last round is still out (bounded by the command timeout)
  if (!redis_->connected()) {
    state_.setReady(false);
    return;
  }
  if (scopes_.empty()) {
    state_.setReady(true);
    return;
  }
  polling_ = true;
  struct Round {
    std::size_t left;
    bool ok = true;
    std::uint64_t seen;
  };
  auto round = std::make_shared<Round>(Round{scopes_.size(), true, state_.updateCount()});
  std::weak_ptr<bool> alive = alive_;
  for (const std::string& scope : scopes_) {
    redis_->command({"GET", generationKey(scope)}, [this, alive, round, scope](cache::RedisReply r) {
      if (alive.expired()) return;
      if (r.status == cache::RedisStatus::Ok) {
        state_.pollGeneration(scope, r.value, round->seen);
      } else if (r.status == cache::RedisStatus::Nil) {
        state_.pollGeneration(scope, "0", round->seen);
      } else {
        round->ok = false;
      }
      if (--round->left == 0) {
        polling_ = false;
        if (state_.ready() != round->ok) {
          logEvent(round->ok ? "info" : "warn",
                   round->ok ? "shared tier (redis) in use" : "shared tier (redis) unreachable: skipped");
        }
        state_.setReady(round->ok);
      }
    });
  }
}

void SharedTierSync::publish(const PurgeNews& news) {
  const std::string scope = scopeOf(news);
  // Until Redis names the new generation, this edge uses one of its own that no key has yet:
  // a request right after the purge must not find the purged object in L2 and put it back in
  // L1 (writes meanwhile go to keys nobody reads: harmless).
  state_.setGeneration(scope, "purging-" + state_.nodeId() + "-" + std::to_string(++purges_));
  std::weak_ptr<bool> alive = alive_;
  redis_->command({"INCR", generationKey(scope)}, [this, alive, news, scope](cache::RedisReply r) {
    if (alive.expired()) return;
    if (r.status != cache::RedisStatus::Ok) {
      ++counters_.publish_errors;
      logEvent("warn", "purge not shared: redis unreachable", {{"scope", scope}, {"error", r.value}});
      return;
    }
    const std::string gen = std::to_string(r.integer);
    state_.setGeneration(scope, gen);
    nlohmann::json m = {{"node", state_.nodeId()}, {"scope", scope}, {"gen", gen}};
    if (news.site.empty()) {
      m["api"] = news.api;
      m["stage"] = news.stage;
    } else {
      m["site"] = news.site;
      m["paths"] = news.paths;
    }
    redis_->command({"PUBLISH", kPurgeChannel, m.dump()}, [this, alive](cache::RedisReply p) {
      if (alive.expired()) return;
      if (p.status == cache::RedisStatus::Ok) {
        ++counters_.published;
      } else {
        ++counters_.publish_errors;
      }
    });
  });
}

void SharedTierSync::onMessage(std::string_view message) {
  // Another edge's news (or ours, echoed): Redis is shared, so the message is untrusted input.
  nlohmann::json m = nlohmann::json::parse(message, nullptr, false);
  if (m.is_discarded() || !m.is_object()) return;
  auto str = [&m](const char* key) -> std::string {
    auto it = m.find(key);
    return it != m.end() && it->is_string() ? it->get<std::string>() : std::string();
  };
  PurgeNews news;
  news.site = str("site");
  news.api = str("api");
  news.stage = str("stage");
  if (auto it = m.find("paths"); it != m.end() && it->is_array()) {
    for (const auto& p : *it) {
      if (p.is_string()) news.paths.push_back(p.get<std::string>());
    }
  }
  const std::string gen = str("gen");
  if ((news.site.empty() && (news.api.empty() || news.stage.empty())) || gen.empty()) return;
  state_.setGeneration(scopeOf(news), gen);
  if (str("node") == state_.nodeId()) return;  // our own purge: L1 already done
  ++counters_.received;
  on_remote_purge_(news);
}

}  // namespace portico::proxy
