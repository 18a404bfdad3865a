// Prometheus metrics for every component, rendered in the text exposition format (0.0.4).
//
// Each component declares its metrics once, name and help together, in its own
// <component>_metrics.h (sources/source_metrics.h, store/store_metrics.h, ...); registration and
// every reader use those constants, never a literal. Names follow mare_<component>_<what>_<unit>
// (README.md, "Metrics"). Look a series up once, at start-up, and keep the reference: updates
// are a relaxed atomic add, cheap enough for hot paths (add per batch, not per reading).
//
//   auto& accepted = registry.GetCounter(source_metrics::kReadingsAccepted, {{"source", "udp"}});
//   accepted.Add(n);
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <initializer_list>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace mare::metrics {

using Labels = std::vector<std::pair<std::string, std::string>>;

// A metric family as its component declares it: the name /metrics and every reader use, and
// the help text /metrics shows.
struct Metric {
  std::string_view name;
  std::string_view help;
};

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
  Counter& GetCounter(const Metric& m, const Labels& labels = {}) {
    return GetCounter(std::string(m.name), std::string(m.help), labels);
  }
  Gauge& GetGauge(const Metric& m, const Labels& labels = {}) {
    return GetGauge(std::string(m.name), std::string(m.help), labels);
  }
  Histogram& GetHistogram(const Metric& m, const Labels& labels = {}, std::vector<double> bounds = LatencyBuckets()) {
    return GetHistogram(std::string(m.name), std::string(m.help), labels, std::move(bounds));
  }

  // A function run before each render, to refresh gauges that are cheaper to read on demand
  // (bytes on disk, kernel drop counters, ...).
  void AddRefresher(std::function<void()> refresh);

  // The text exposition format, one family after another, sorted by name. Runs the refreshers.
  std::string Render();

  // Reading the registry back (the dashboard, the commands' status lines) without going through
  // the text format. Counters and gauges only: a histogram family reads as absent. Series are
  // visited in the order /metrics lists them. Call Refresh first for the refreshed gauges.
  void Refresh();
  // The sum over every series of `name` whose labels include all of `match`; 0 when none.
  double Sum(std::string_view name, const Labels& match = {});
  // The value of the first series of `name` whose labels include all of `match`, if any.
  std::optional<double> Find(std::string_view name, const Labels& match = {});
  // The distinct non-empty values of label `key` among the series of `name`.
  std::vector<std::string> LabelValues(std::string_view name, std::string_view key);
  double Sum(const Metric& m, const Labels& match = {}) { return Sum(m.name, match); }
  std::optional<double> Find(const Metric& m, const Labels& match = {}) { return Find(m.name, match); }
  std::vector<std::string> LabelValues(const Metric& m, std::string_view key) { return LabelValues(m.name, key); }
  // Every counter and gauge series of `name` with its labels, in the order /metrics lists them
  // (for copying a process's figures elsewhere: the pipeline status other roles read).
  struct Sample {
    Labels labels;
    double value = 0;
  };
  std::vector<Sample> Samples(std::string_view name);
  std::vector<Sample> Samples(const Metric& m) { return Samples(m.name); }
  // The name of every family registered so far, sorted.
  std::vector<std::string> Names();

  // The process-wide registry served on /metrics.
  static Registry& Global();

 private:
  enum class Type { kCounter, kGauge, kHistogram };
  template <typename T>
  struct Series {
    Labels labels;
    T* metric = nullptr;
  };
  struct Family {
    Type type;
    std::string help;
    std::map<std::string, Series<Counter>> counters;  // key: rendered label set
    std::map<std::string, Series<Gauge>> gauges;
    std::map<std::string, Series<Histogram>> histograms;
  };
  Family& GetFamily(const std::string& name, const std::string& help, Type type);
  // Calls visit(labels, value) for each counter or gauge series of `name`, under mu_.
  template <typename F>
  void ForEachSeries(std::string_view name, F visit);

  std::mutex mu_;
  std::map<std::string, Family, std::less<>> families_;
  std::deque<Counter> counter_store_;
  std::deque<Gauge> gauge_store_;
  std::deque<Histogram> histogram_store_;
  std::vector<std::function<void()>> refreshers_;
};

// {a="1",b="x"} with Prometheus escaping; empty string for no labels.
std::string RenderLabels(const Labels& labels);

}  // namespace mare::metrics
