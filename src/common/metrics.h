// Prometheus metrics for every component, rendered in the text exposition format (0.0.4).
//
// Names follow mare_<component>_<what>_<unit>. Look a series up once, at start-up, and keep
// the reference: updates are a relaxed atomic add, cheap enough for hot paths (add per batch,
// not per reading, where you can).
//
//   auto& accepted = registry.GetCounter("mare_source_readings_accepted_total",
//                                        "Readings accepted", {{"source", "udp"}});
//   accepted.Add(n);
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <initializer_list>
#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace mare::metrics {

using Labels = std::vector<std::pair<std::string, std::string>>;

class Counter {
 public:
  void Add(uint64_t n = 1) { value_.fetch_add(n, std::memory_order_relaxed); }
  uint64_t value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> value_{0};
};

class Gauge {
 public:
  void Set(double v) { value_.store(v, std::memory_order_relaxed); }
  void Add(double v);
  double value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0};
};

// Cumulative histogram with fixed upper bounds (seconds, bytes, ...).
class Histogram {
 public:
  explicit Histogram(std::vector<double> bounds);
  void Observe(double v);
  const std::vector<double>& bounds() const { return bounds_; }
  uint64_t bucket(size_t i) const { return buckets_[i].load(std::memory_order_relaxed); }
  uint64_t count() const { return count_.load(std::memory_order_relaxed); }
  double sum() const { return sum_.load(std::memory_order_relaxed); }

 private:
  std::vector<double> bounds_;
  std::deque<std::atomic<uint64_t>> buckets_;  // one per bound; +Inf is count_
  std::atomic<uint64_t> count_{0};
  std::atomic<double> sum_{0};
};

// Latency buckets from 50 microseconds to 10 seconds.
std::vector<double> LatencyBuckets();

class Registry {
 public:
  // Returns the series with these labels, creating it on first use. References stay valid
  // for the registry's lifetime.
  Counter& GetCounter(const std::string& name, const std::string& help, const Labels& labels = {});
  Gauge& GetGauge(const std::string& name, const std::string& help, const Labels& labels = {});
  Histogram& GetHistogram(const std::string& name, const std::string& help, const Labels& labels = {},
                          std::vector<double> bounds = LatencyBuckets());

  // A function run before each render, to refresh gauges that are cheaper to read on demand
  // (bytes on disk, kernel drop counters, ...).
  void AddRefresher(std::function<void()> refresh);

  // The text exposition format, one family after another, sorted by name.
  std::string Render();

  // The process-wide registry served on /metrics.
  static Registry& Global();

 private:
  enum class Type { kCounter, kGauge, kHistogram };
  struct Family {
    Type type;
    std::string help;
    std::map<std::string, Counter*> counters;  // key: rendered label set
    std::map<std::string, Gauge*> gauges;
    std::map<std::string, Histogram*> histograms;
  };
  Family& GetFamily(const std::string& name, const std::string& help, Type type);

  std::mutex mu_;
  std::map<std::string, Family> families_;
  std::deque<Counter> counter_store_;
  std::deque<Gauge> gauge_store_;
  std::deque<Histogram> histogram_store_;
  std::vector<std::function<void()>> refreshers_;
};

// {a="1",b="x"} with Prometheus escaping; empty string for no labels.
std::string RenderLabels(const Labels& labels);

}  // namespace mare::metrics
