#include "proxy/pipeline/shared_tier.h"

#include <charconv>
#include <chrono>
#include <random>

#include "cache/object_codec.h"
#include "cache/redis_cluster.h"
#include "cache/policy.h"
#include "proxy/pipeline/cache_fill.h"
#include "proxy/pipeline/cache_runtime.h"

namespace portico::proxy {

namespace {

constexpr std::string_view kMarkerMagic{"PTCV\x01", 5};

std::int64_t unixMs(core::WallTime t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

std::string lockKey(const SharedTierState& state, const std::string& primary_key) {
  return "ptc:lock|" + state.redisKey(primary_key);
}

}  // namespace

std::string_view scopeOfKey(std::string_view key) {
  int fields = 0;
  if (key.starts_with("site|")) {
    fields = 2;
  } else if (key.starts_with("api|")) {
    fields = 3;
  } else {
    return {};
  }
  std::size_t n = fieldsPrefixLength(key, fields);
  if (n == std::string_view::npos) return {};
  return key.substr(0, n);
}

std::string markerBytes(const cache::CachedObject& marker) {
  std::string out(kMarkerMagic);
  out += std::to_string(unixMs(marker.meta.response_time));
  for (const std::string& name : marker.meta.vary) {
    out += '\n';
    out += name;
  }
  return out;
}

cache::CachedObjectPtr markerFromBytes(std::string_view bytes) {
  if (!bytes.starts_with(kMarkerMagic)) return nullptr;
  bytes.remove_prefix(kMarkerMagic.size());
  const std::size_t nl = bytes.find('\n');
  const std::string_view since = bytes.substr(0, nl);
  std::int64_t ms = 0;
  auto [end, ec] = std::from_chars(since.data(), since.data() + since.size(), ms);
  if (ec != std::errc() || end != since.data() + since.size() || ms < 0) return nullptr;
  std::vector<std::string> vary;
  std::string_view rest = nl == std::string_view::npos ? std::string_view() : bytes.substr(nl + 1);
  while (nl != std::string_view::npos) {
    const std::size_t next = rest.find('\n');
    const std::string_view name = rest.substr(0, next);
    // Names as ObjectMeta::vary holds them: lower-case tokens.
    if (name.empty() || name.size() > 256) return nullptr;
    for (const char c : name) {
      if (!(std::islower(static_cast<unsigned char>(c)) || std::isdigit(static_cast<unsigned char>(c)) ||
            c == '-' || c == '_' || c == '.')) {
        return nullptr;
      }
    }
    vary.emplace_back(name);
    if (vary.size() > 64) return nullptr;
    if (next == std::string_view::npos) break;
    rest.remove_prefix(next + 1);
  }
  if (vary.empty()) return nullptr;
  return makeVaryMarker(vary, core::WallTime(std::chrono::milliseconds(ms)));
}

std::uint64_t sharedTtlMs(const cache::ObjectMeta& meta, core::WallTime now) {
  const std::int64_t extra = std::max(meta.stale_while_revalidate_s, meta.stale_if_error_s);
  const std::int64_t left = meta.freshness_lifetime_s + (meta.must_revalidate ? 0 : extra) -
                            cache::currentAge(meta, now);
  if (meta.no_cache || left <= 0) return 0;
  return static_cast<std::uint64_t>(left) * 1000;
}

// ---- SharedTierState ----------------------------------------------------------------------

SharedTierState::SharedTierState(cache::RedisOptions options, bool cluster, std::uint64_t max_object)
    : options_(std::move(options)), cluster_(cluster), max_object_(max_object) {
  std::random_device rd;
  const std::uint64_t id = (static_cast<std::uint64_t>(rd()) << 32) ^ rd();
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(id));
  node_id_ = buf;
}

std::unique_ptr<cache::RedisExecutor> SharedTierState::connect(uv_loop_t* loop) const {
  if (cluster_) return std::make_unique<cache::RedisCluster>(loop, options_);
  return std::make_unique<cache::RedisClient>(loop, options_);
}

std::string SharedTierState::redisKey(std::string_view key) const {
  std::string out = "ptc:";
  out += generation(scopeOfKey(key));
  out += '|';
  out += key;
  return out;
}

std::string SharedTierState::generation(std::string_view scope) const {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = generations_.find(scope);
  return it == generations_.end() ? std::string("0") : it->second;
}

void SharedTierState::setGeneration(std::string_view scope, std::string generation) {
  std::lock_guard<std::mutex> lock(mutex_);
  ++updates_;
  generations_.insert_or_assign(std::string(scope), std::move(generation));
}

void SharedTierState::pollGeneration(std::string_view scope, std::string generation, std::uint64_t seen) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (updates_ != seen) return;
  generations_.insert_or_assign(std::string(scope), std::move(generation));
}

std::uint64_t SharedTierState::updateCount() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return updates_;
}

// ---- SharedTier ---------------------------------------------------------------------------

SharedTier::SharedTier(uv_loop_t* loop, SharedTierState& state) : state_(state), redis_(state.connect(loop)) {}

SharedTier::~SharedTier() = default;

bool SharedTier::usable() const { return state_.ready() && redis_->connected(); }

void SharedTier::count(const cache::RedisReply& reply) {
  const std::uint64_t reconnects = redis_->stats().reconnects;
  if (reconnects != reconnects_seen_) {
    state_.reconnects.fetch_add(reconnects - reconnects_seen_, std::memory_order_relaxed);
    reconnects_seen_ = reconnects;
  }
  switch (reply.status) {
    case cache::RedisStatus::Ok:
    case cache::RedisStatus::Nil:
      break;
    case cache::RedisStatus::Timeout:
      state_.counters.timeouts.fetch_add(1, std::memory_order_relaxed);
      break;
    case cache::RedisStatus::Error:
    case cache::RedisStatus::Disconnected:
      state_.counters.errors.fetch_add(1, std::memory_order_relaxed);
      break;
  }
}

void SharedTier::get(std::string key, std::function<void(cache::RedisReply)> cb) {
  redis_->command({"GET", std::move(key)}, [this, cb = std::move(cb)](cache::RedisReply reply) {
    count(reply);
    cb(std::move(reply));
  });
}

void SharedTier::lookup(const std::string& primary_key, const core::HeaderMap& request_headers,
                        std::function<void(Found)> cb) {
  auto miss = [this](const std::function<void(Found)>& done) {
    state_.counters.misses.fetch_add(1, std::memory_order_relaxed);
    done(Found{});
  };
  get(state_.redisKey(primary_key),
      [this, primary_key, headers = request_headers, cb = std::move(cb), miss](cache::RedisReply reply) mutable {
        if (reply.status != cache::RedisStatus::Ok) return miss(cb);
        if (cache::CachedObjectPtr object = cache::decodeObject(reply.value)) {
          state_.counters.hits.fetch_add(1, std::memory_order_relaxed);
          return cb(Found{std::move(object), nullptr, primary_key});
        }
        cache::CachedObjectPtr marker = markerFromBytes(reply.value);
        if (!marker) return miss(cb);  // garbage, or another version's entry: a miss
        std::string variant = variantStoreKey(primary_key, marker->meta.vary, headers);
        get(state_.redisKey(variant), [this, marker, variant, cb = std::move(cb), miss](cache::RedisReply r) {
          cache::CachedObjectPtr object;
          if (r.status == cache::RedisStatus::Ok) object = cache::decodeObject(r.value);
          // A variant from before the marker belongs to an invalidated URL (cache_runtime.h).
          if (!object || object->meta.request_time < marker->meta.response_time) return miss(cb);
          state_.counters.hits.fetch_add(1, std::memory_order_relaxed);
          cb(Found{std::move(object), marker, variant});
        });
      });
}

void SharedTier::lock(const std::string& primary_key, std::function<void(Lock)> cb) {
  redis_->command({"SET", lockKey(state_, primary_key), state_.nodeId(), "NX", "PX",
                   std::to_string(kLockTtlMs), "GET"},
                  [this, cb = std::move(cb)](cache::RedisReply reply) {
                    count(reply);
                    switch (reply.status) {
                      case cache::RedisStatus::Nil:
                        return cb(Lock::Acquired);
                      case cache::RedisStatus::Ok:
                        return cb(reply.value == "pass" ? Lock::Pass : Lock::Busy);
                      default:
                        return cb(Lock::Unavailable);
                    }
                  });
}

void SharedTier::unlock(const std::string& primary_key) {
  redis_->command({"DEL", lockKey(state_, primary_key)}, [this](cache::RedisReply r) { count(r); });
}

void SharedTier::remove(const std::string& primary_key) {
  if (!usable()) return;
  redis_->command({"DEL", state_.redisKey(primary_key)}, [this](cache::RedisReply r) { count(r); });
}

void SharedTier::pass(const std::string& primary_key, std::uint64_t ttl_ms) {
  redis_->command({"SET", lockKey(state_, primary_key), "pass", "PX", std::to_string(ttl_ms)},
                  [this](cache::RedisReply r) { count(r); });
}

bool SharedTier::write(const std::string& primary_key, const std::string& store_key,
                       const cache::CachedObject& object, const cache::CachedObject* marker,
                       core::WallTime now) {
  if (!usable()) {
    state_.counters.skipped.fetch_add(1, std::memory_order_relaxed);
    return false;
  }
  if (object.bodySize() > state_.maxObject()) {
    state_.counters.too_large.fetch_add(1, std::memory_order_relaxed);
    return false;
  }
  const std::uint64_t ttl = sharedTtlMs(object.meta, now);
  if (ttl == 0) return false;
  auto done = [this](cache::RedisReply r) { count(r); };
  if (marker != nullptr) {
    // The first marker stays (a newer one would hide the variants written before it, like
    // CacheFill::commit keeps L1's) and lives as long as its longest-lived variant.
    const std::string key = state_.redisKey(primary_key);
    redis_->command({"SET", key, markerBytes(*marker), "NX", "PX", std::to_string(ttl)}, done);
    redis_->command({"PEXPIRE", key, std::to_string(ttl), "GT"}, done);
  }
  redis_->command({"SET", state_.redisKey(store_key), cache::encodeObject(object), "PX", std::to_string(ttl)},
                  done);
  state_.counters.writes.fetch_add(1, std::memory_order_relaxed);
  return true;
}

bool shareStoredObject(SharedTier* shared, cache::Store& store, const std::string& primary_key,
                       const std::string& store_key, const cache::CachedObjectPtr& object) {
  if (shared == nullptr || !object) return false;
  cache::CachedObjectPtr marker;
  if (!object->meta.vary.empty()) {
    marker = store.lookup(primary_key);
    if (!marker || !isVaryMarker(*marker)) marker = makeVaryMarker(object->meta.vary, object->meta.request_time);
  }
  return shared->write(primary_key, store_key, *object, marker.get(), core::SystemClock::instance().wallNow());
}

}  // namespace portico::proxy
