#pragma once
// Metrics (style.md G9): each worker owns a MetricsShard and is its only writer, so the hot path
// takes no lock and no contended atomic (a relaxed load + store on a cache line the worker owns).
// The admin thread reads every shard with relaxed loads and sums them into Prometheus text.
//
// Series are identified by family name plus a rendered label set, e.g.
//   family "portico_requests_total", labels R"(kind="site",name="www",code="2xx")".
// counter()/histogram() return pointers that stay valid for the shard's lifetime, so callers may
// cache them.
#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace portico::core {

class Counter {
 public:
  void add(std::uint64_t n = 1) { v_.store(v_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed); }
  // Gauges written by one thread may go up and down (two's complement wrap on read).
  void sub(std::uint64_t n = 1) { v_.store(v_.load(std::memory_order_relaxed) - n, std::memory_order_relaxed); }
  std::uint64_t value() const { return v_.load(std::memory_order_relaxed); }

 private:
  std::atomic<std::uint64_t> v_{0};
};

// Fixed-bucket histogram of seconds.
class Histogram {
 public:
  static constexpr double kBounds[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                       0.1,    0.25,  0.5,    1,     2.5,  5,     10};
  static constexpr std::size_t kBuckets = sizeof(kBounds) / sizeof(kBounds[0]);
  void observe(double seconds);
  std::uint64_t bucket(std::size_t i) const { return buckets_[i].value(); }  // i == kBuckets: +Inf
  std::uint64_t count() const { return count_.value(); }
  double sum() const { return static_cast<double>(sum_us_.value()) / 1e6; }

 private:
  Counter buckets_[kBuckets + 1];
  Counter count_;
  Counter sum_us_;
};

enum class MetricType { Counter, Gauge, Histogram };

class MetricsShard {
 public:
  // Owner thread only.
  Counter* counter(std::string_view family, std::string_view labels = {},
                   MetricType type = MetricType::Counter);
  Counter* gauge(std::string_view family, std::string_view labels = {}) {
    return counter(family, labels, MetricType::Gauge);
  }
  Histogram* histogram(std::string_view family, std::string_view labels = {});

 private:
  friend class MetricsRegistry;
  struct Key {
    std::string family;
    std::string labels;
  };
  // Transparent: the per-request lookup compares string_views and allocates nothing.
  struct KeyLess {
    using is_transparent = void;
    using View = std::pair<std::string_view, std::string_view>;
    static View view(const Key& k) { return {k.family, k.labels}; }
    static View view(const View& v) { return v; }
    template <class A, class B>
    bool operator()(const A& a, const B& b) const { return view(a) < view(b); }
  };
  mutable std::mutex mu_;  // held by the owner while inserting and by readers while iterating
  std::map<Key, std::pair<MetricType, std::unique_ptr<Counter>>, KeyLess> counters_;
  std::map<Key, std::unique_ptr<Histogram>, KeyLess> histograms_;
};

// Holds every shard; thread-safe.
class MetricsRegistry {
 public:
  MetricsShard* addShard();
  // Prometheus text exposition format 0.0.4, shards summed.
  std::string renderPrometheus() const;
  // Sum of one series over all shards (tests, admin).
  std::uint64_t sum(std::string_view family, std::string_view labels = {}) const;

 private:
  mutable std::mutex mu_;
  std::vector<std::unique_ptr<MetricsShard>> shards_;
};

// Escapes a Prometheus label value.
std::string promEscape(std::string_view v);

}  // namespace portico::core
