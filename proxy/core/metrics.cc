#include "proxy/core/metrics.h"

#include <cstdio>

#include "proxy/core/header_map.h"

namespace portico::core {

void Histogram::observe(double seconds) {
  std::size_t i = 0;
  while (i < kBuckets && seconds > kBounds[i]) ++i;
  buckets_[i].add();
  count_.add();
  sum_us_.add(static_cast<std::uint64_t>(seconds < 0 ? 0 : seconds * 1e6));
}

Counter* MetricsShard::counter(std::string_view family, std::string_view labels,
                               MetricType type) {
  // Lookup without the lock is safe: only this (owner) thread inserts.
  auto it = counters_.find(KeyLess::View{family, labels});
  if (it != counters_.end()) return it->second.second.get();
  std::lock_guard<std::mutex> lock(mu_);
  auto [pos, _] = counters_.emplace(Key{std::string(family), std::string(labels)}, std::make_pair(type, std::make_unique<Counter>()));
  return pos->second.second.get();
}

Histogram* MetricsShard::histogram(std::string_view family, std::string_view labels) {
  auto it = histograms_.find(KeyLess::View{family, labels});
  if (it != histograms_.end()) return it->second.get();
  std::lock_guard<std::mutex> lock(mu_);
  auto [pos, _] = histograms_.emplace(Key{std::string(family), std::string(labels)}, std::make_unique<Histogram>());
  return pos->second.get();
}

MetricsShard* MetricsRegistry::addShard() {
  std::lock_guard<std::mutex> lock(mu_);
  shards_.push_back(std::make_unique<MetricsShard>());
  return shards_.back().get();
}

namespace {
std::string series(const std::string& family, const std::string& labels,
                   const std::string& extra = {}) {
  std::string out = family;
  if (labels.empty() && extra.empty()) return out;
  out += '{';
  out += labels;
  if (!labels.empty() && !extra.empty()) out += ',';
  out += extra;
  out += '}';
  return out;
}
}  // namespace

std::string MetricsRegistry::renderPrometheus() const {
  struct Hist {
    std::uint64_t buckets[Histogram::kBuckets + 1] = {};
    std::uint64_t count = 0;
    double sum = 0;
  };
  std::map<std::string, std::pair<MetricType, std::map<std::string, std::uint64_t>>> counters;
  std::map<std::string, std::map<std::string, Hist>> hists;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& shard : shards_) {
      std::lock_guard<std::mutex> shard_lock(shard->mu_);
      for (const auto& [key, entry] : shard->counters_) {
        auto& fam = counters[key.family];
        fam.first = entry.first;
        fam.second[key.labels] += entry.second->value();
      }
      for (const auto& [key, h] : shard->histograms_) {
        Hist& out = hists[key.family][key.labels];
        for (std::size_t i = 0; i <= Histogram::kBuckets; ++i) out.buckets[i] += h->bucket(i);
        out.count += h->count();
        out.sum += h->sum();
      }
    }
  }
  std::string out;
  for (const auto& [family, fam] : counters) {
    out += "# TYPE " + family + (fam.first == MetricType::Gauge ? " gauge\n" : " counter\n");
    for (const auto& [labels, v] : fam.second) {
      out += series(family, labels) + ' ' +
             std::to_string(fam.first == MetricType::Gauge ? static_cast<std::int64_t>(v)
                                                           : static_cast<std::int64_t>(v)) +
             '\n';
    }
  }
  for (const auto& [family, byLabels] : hists) {
    out += "# TYPE " + family + " histogram\n";
    for (const auto& [labels, h] : byLabels) {
      std::uint64_t cumulative = 0;
      for (std::size_t i = 0; i <= Histogram::kBuckets; ++i) {
        cumulative += h.buckets[i];
        char le[32];
        if (i < Histogram::kBuckets) {
          std::snprintf(le, sizeof le, "le=\"%g\"", Histogram::kBounds[i]);
        } else {
          std::snprintf(le, sizeof le, "le=\"+Inf\"");
        }
        out += series(family + "_bucket", labels, le) + ' ' + std::to_string(cumulative) + '\n';
      }
      char sum[64];
      std::snprintf(sum, sizeof sum, "%.6f", h.sum);
      out += series(family + "_sum", labels) + ' ' + sum + '\n';
      out += series(family + "_count", labels) + ' ' + std::to_string(h.count) + '\n';
    }
  }
  return out;
}

std::uint64_t MetricsRegistry::sum(std::string_view family, std::string_view labels) const {
  std::uint64_t total = 0;
  std::lock_guard<std::mutex> lock(mu_);
  MetricsShard::Key key{std::string(family), std::string(labels)};
  for (const auto& shard : shards_) {
    std::lock_guard<std::mutex> shard_lock(shard->mu_);
    auto it = shard->counters_.find(key);
    if (it != shard->counters_.end()) total += it->second.second->value();
  }
  return total;
}

std::string promEscape(std::string_view v) {
  // Names from the conf rarely hold anything to escape: then one copy (this runs for every
  // request's metric labels).
  if (!hasAnyOf(v, "\\\"\n")) return std::string(v);
  std::string out;
  out.reserve(v.size() + 2);
  for (char c : v) {
    if (c == '\\' || c == '"') {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

}  // namespace portico::core
