// portico_cache_sim: measurements for the memory tier (cache/memory_store.h).
//
//  1. Memory per object: RSS growth for 100k small objects (1 KiB body, typical headers), split
//     into the objects themselves and what the store adds on top (map node, key, policy node).
//  2. Eviction: a Zipf(alpha) trace replayed against MemoryStore with LRU and with S3-FIFO at
//     cache sizes of 1/5/10/25% of the trace's working set; object and byte hit ratios.
//  3. Throughput: two threads doing lookups (+ inserts on miss) on a Zipf trace.
//
// Usage: portico_cache_sim [--requests N] [--universe N] [--quick]
// Not a test: it asserts nothing and prints tables (numbers vary with the machine).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <unistd.h>
#include <vector>

#include "cache/memory_store.h"

namespace {

using portico::cache::CachedObject;
using portico::cache::CachedObjectPtr;
using portico::cache::EvictionKind;
using portico::cache::MemoryStore;
using portico::cache::MemoryStoreOptions;

std::uint64_t rssBytes() {
  std::ifstream statm("/proc/self/statm");
  std::uint64_t size = 0, resident = 0;
  statm >> size >> resident;
  return resident * static_cast<std::uint64_t>(sysconf(_SC_PAGESIZE));
}

std::string keyFor(std::uint64_t id) {
  return "www\x1fwww.example.test\x1f/static/assets/object-" + std::to_string(id) + ".js\x1e";
}

// A typical small static-site answer.
CachedObjectPtr typicalObject(std::uint64_t id, std::string body) {
  auto o = std::make_shared<CachedObject>();
  o->head.status = 200;
  auto& h = o->head.headers;
  h.add("Content-Type", "application/javascript");
  h.add("Content-Length", std::to_string(body.size()));
  h.add("ETag", "\"" + std::to_string(id * 2654435761u) + "-5f3e2a1b\"");
  h.add("Last-Modified", "Tue, 03 Sep 2024 10:00:00 GMT");
  h.add("Cache-Control", "public, max-age=3600");
  h.add("Date", "Wed, 04 Sep 2024 12:00:00 GMT");
  o->body = std::make_shared<const std::string>(std::move(body));
  o->meta.etag = std::string(*h.get("ETag"));
  o->meta.last_modified = "Tue, 03 Sep 2024 10:00:00 GMT";
  o->meta.freshness_lifetime_s = 3600;
  return o;
}

void measureMemory(std::size_t n) {
  std::printf("== Memory per cached object: %zu objects, 1 KiB body, 6 headers ==\n", n);
  std::vector<std::string> keys;  // the caller's keys: not part of what is measured
  keys.reserve(n);
  for (std::size_t i = 0; i < n; ++i) keys.push_back(keyFor(i));
  std::vector<CachedObjectPtr> objects;
  objects.reserve(n);
  const std::uint64_t rss0 = rssBytes();
  for (std::size_t i = 0; i < n; ++i)
    objects.push_back(typicalObject(i, std::string(1024, static_cast<char>('a' + i % 26))));
  const std::uint64_t rss1 = rssBytes();
  MemoryStoreOptions opt;
  opt.capacity_bytes = 4ull << 30;
  opt.max_object_bytes = 1 << 20;
  MemoryStore store(opt);
  for (std::size_t i = 0; i < n; ++i) store.insert(keys[i], objects[i]);
  const std::uint64_t rss2 = rssBytes();
  const auto st = store.stats();
  const double per_obj = static_cast<double>(rss1 - rss0) / static_cast<double>(n);
  const double per_entry = static_cast<double>(rss2 - rss1) / static_cast<double>(n);
  std::printf("  objects stored                      %llu (evictions %llu)\n",
              static_cast<unsigned long long>(st.objects),
              static_cast<unsigned long long>(st.evictions));
  std::printf("  RSS / object, object itself         %8.0f B  (1024 B body + head + meta)\n", per_obj);
  std::printf("  RSS / object, store entry (+key)    %8.0f B  (map node, key copy, policy node)\n",
              per_entry);
  std::printf("  RSS / object, total                 %8.0f B\n", per_obj + per_entry);
  std::printf("  charged (budget) / object           %8.0f B  (CachedObject::chargedBytes)\n",
              static_cast<double>(st.bytes) / static_cast<double>(st.objects));
  std::printf("  key length                          %8zu B\n\n", keys[n / 2].size());
}

// Zipf(alpha) over ranks 0..n-1 by inverse CDF.
class Zipf {
 public:
  Zipf(std::size_t n, double alpha) : cdf_(n) {
    double sum = 0;
    for (std::size_t i = 0; i < n; ++i) cdf_[i] = (sum += 1.0 / std::pow(static_cast<double>(i + 1), alpha));
    for (auto& c : cdf_) c /= sum;
  }
  template <typename Rng>
  std::size_t operator()(Rng& rng) {
    const double u = std::uniform_real_distribution<double>(0.0, 1.0)(rng);
    return static_cast<std::size_t>(std::lower_bound(cdf_.begin(), cdf_.end(), u) - cdf_.begin());
  }

 private:
  std::vector<double> cdf_;
};

struct Universe {
  std::vector<std::string> keys;
  std::vector<std::uint32_t> size_class;  // index into bodies
  std::vector<std::shared_ptr<const std::string>> bodies;  // geometric size classes, shared
  std::vector<CachedObjectPtr> objects;   // one per key, built lazily
};

// Object sizes: log-normal, median 4 KiB, sigma 1.2, clamped to [200 B, 256 KiB] (web-like:
// many small assets, a long tail of large ones), independent of popularity. Bodies are shared
// by size class (2% steps) so the simulation itself needs little memory; the store charges
// each object its full size.
Universe makeUniverse(std::size_t n, std::uint64_t seed) {
  Universe u;
  std::mt19937_64 rng(seed);
  std::lognormal_distribution<double> size(std::log(4096.0), 1.2);
  std::map<std::uint32_t, std::uint32_t> class_of;
  for (std::size_t i = 0; i < n; ++i) {
    const double s = std::clamp(size(rng), 200.0, 262144.0);
    const auto cls = static_cast<std::uint32_t>(std::log(s / 200.0) / std::log(1.02));
    auto [it, fresh] = class_of.try_emplace(cls, static_cast<std::uint32_t>(u.bodies.size()));
    if (fresh) u.bodies.push_back(std::make_shared<const std::string>(
        static_cast<std::size_t>(200.0 * std::pow(1.02, cls)), 'b'));
    u.size_class.push_back(it->second);
    u.keys.push_back(keyFor(i));
  }
  u.objects.resize(n);
  for (std::size_t i = 0; i < n; ++i) {
    auto o = std::make_shared<CachedObject>();
    o->head.headers.add("Content-Type", "application/octet-stream");
    o->head.headers.add("ETag", "\"x\"");
    o->body = u.bodies[u.size_class[i]];
    u.objects[i] = std::move(o);
  }
  return u;
}

struct SimResult {
  double object_hit = 0, byte_hit = 0;
  std::size_t shards = 0;
  std::uint64_t evictions = 0;
};

SimResult simulate(const Universe& u, const std::vector<std::uint32_t>& trace, EvictionKind kind,
                   std::uint64_t capacity) {
  MemoryStoreOptions opt;
  opt.capacity_bytes = capacity;
  opt.max_object_bytes = 300 << 10;
  opt.eviction = kind;
  MemoryStore store(opt);
  std::uint64_t hits = 0, bytes = 0, hit_bytes = 0;
  for (std::uint32_t id : trace) {
    const std::uint64_t b = u.objects[id]->body->size();
    bytes += b;
    if (store.lookup(u.keys[id]) != nullptr) {
      ++hits;
      hit_bytes += b;
    } else {
      store.insert(u.keys[id], u.objects[id]);
    }
  }
  SimResult r;
  r.object_hit = static_cast<double>(hits) / static_cast<double>(trace.size());
  r.byte_hit = static_cast<double>(hit_bytes) / static_cast<double>(bytes);
  r.shards = store.shardCount();
  r.evictions = store.stats().evictions;
  return r;
}

void evictionTable(std::size_t universe, std::size_t requests) {
  std::printf("== Hit ratios: Zipf trace, %zu requests over %zu keys, sizes log-normal ==\n",
              requests, universe);
  std::printf("   (cold misses included; cache size = %% of the bytes of distinct keys requested)\n");
  std::printf("%-6s %-6s %-7s | %-17s | %-17s | %s\n", "alpha", "size", "shards",
              "LRU  obj / byte", "S3FIFO obj / byte", "S3FIFO - LRU (obj, byte)");
  const Universe u = makeUniverse(universe, 42);
  for (double alpha : {0.8, 0.9, 1.0}) {
    Zipf zipf(universe, alpha);
    std::mt19937_64 rng(7 + static_cast<std::uint64_t>(alpha * 10));
    // Ranks are shuffled onto ids so popularity is unrelated to size and key order.
    std::vector<std::uint32_t> perm(universe);
    for (std::size_t i = 0; i < universe; ++i) perm[i] = static_cast<std::uint32_t>(i);
    std::shuffle(perm.begin(), perm.end(), rng);
    std::vector<std::uint32_t> trace(requests);
    std::vector<bool> seen(universe);
    std::uint64_t working_set = 0;
    for (auto& t : trace) {
      t = perm[zipf(rng)];
      if (!seen[t]) {
        seen[t] = true;
        working_set += u.objects[t]->chargedBytes();
      }
    }
    for (int pct : {1, 5, 10, 25}) {
      const std::uint64_t cap = working_set * static_cast<std::uint64_t>(pct) / 100;
      const SimResult lru = simulate(u, trace, EvictionKind::Lru, cap);
      const SimResult s3 = simulate(u, trace, EvictionKind::S3Fifo, cap);
      std::printf("%-6.1f %4d%%  %-7zu | %6.2f%% / %6.2f%% | %6.2f%% / %6.2f%% | %+6.2f, %+6.2f\n",
                  alpha, pct, lru.shards, lru.object_hit * 100, lru.byte_hit * 100,
                  s3.object_hit * 100, s3.byte_hit * 100, (s3.object_hit - lru.object_hit) * 100,
                  (s3.byte_hit - lru.byte_hit) * 100);
    }
  }
  std::printf("\n");
}

void throughput(std::size_t universe, std::size_t ops_per_thread) {
  std::printf("== Throughput: 2 threads, Zipf 0.9, lookup then insert on miss, cache 10%% ==\n");
  const Universe u = makeUniverse(universe, 43);
  std::uint64_t ws = 0;
  for (const auto& o : u.objects) ws += o->chargedBytes();
  for (EvictionKind kind : {EvictionKind::Lru, EvictionKind::S3Fifo}) {
    MemoryStoreOptions opt;
    opt.capacity_bytes = ws / 10;
    opt.max_object_bytes = 300 << 10;
    opt.eviction = kind;
    MemoryStore store(opt);
    Zipf zipf(universe, 0.9);
    std::vector<std::vector<std::uint32_t>> traces(2);
    for (int t = 0; t < 2; ++t) {
      std::mt19937_64 rng(100 + t);
      traces[t].resize(ops_per_thread);
      for (auto& id : traces[t]) id = static_cast<std::uint32_t>(zipf(rng));
    }
    const auto start = std::chrono::steady_clock::now();
    std::vector<std::thread> threads;
    for (int t = 0; t < 2; ++t) {
      threads.emplace_back([&, t] {
        for (std::uint32_t id : traces[t])
          if (store.lookup(u.keys[id]) == nullptr) store.insert(u.keys[id], u.objects[id]);
      });
    }
    for (auto& th : threads) th.join();
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    const auto st = store.stats();
    std::printf("  %-7s %5.2f M ops/s  (%zu shards, hit ratio %.1f%%)\n",
                std::string(portico::cache::toString(kind)).c_str(),
                2.0 * static_cast<double>(ops_per_thread) / secs / 1e6, store.shardCount(),
                100.0 * static_cast<double>(st.hits) / static_cast<double>(st.hits + st.misses));
  }
  std::printf("\n");
}

}  // namespace

int main(int argc, char** argv) {
  std::size_t requests = 1'000'000, universe = 100'000;
  bool quick = false;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--requests") == 0 && i + 1 < argc) {
      requests = std::strtoull(argv[++i], nullptr, 10);
    } else if (std::strcmp(argv[i], "--universe") == 0 && i + 1 < argc) {
      universe = std::strtoull(argv[++i], nullptr, 10);
    } else if (std::strcmp(argv[i], "--quick") == 0) {
      quick = true;
    } else {
      std::fprintf(stderr, "usage: %s [--requests N] [--universe N] [--quick]\n", argv[0]);
      return 2;
    }
  }
  if (quick) {
    requests = std::min<std::size_t>(requests, 100'000);
    universe = std::min<std::size_t>(universe, 10'000);
  }
  if (universe == 0 || requests == 0) {
    std::fprintf(stderr, "--requests and --universe must be positive\n");
    return 2;
  }
  measureMemory(quick ? 10'000 : 100'000);  // first: a fresh heap measures best
  evictionTable(universe, requests);
  throughput(universe, quick ? 200'000 : 2'000'000);
  return 0;
}
