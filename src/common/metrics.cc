#include "common/metrics.h"

#include <fmt/format.h>

#include <algorithm>
#include <stdexcept>

namespace mare::metrics {

void Gauge::Add(double v) {
  double cur = value_.load(std::memory_order_relaxed);
  while (!value_.compare_exchange_weak(cur, cur + v, std::memory_order_relaxed)) {
  }
}

Histogram::Histogram(std::vector<double> bounds) : bounds_(std::move(bounds)), buckets_(bounds_.size()) {
  std::sort(bounds_.begin(), bounds_.end());
}

void Histogram::Observe(double v) {
  auto it = std::lower_bound(bounds_.begin(), bounds_.end(), v);
  if (it != bounds_.end()) buckets_[static_cast<size_t>(it - bounds_.begin())].fetch_add(1, std::memory_order_relaxed);
  count_.fetch_add(1, std::memory_order_relaxed);
  double cur = sum_.load(std::memory_order_relaxed);
  while (!sum_.compare_exchange_weak(cur, cur + v, std::memory_order_relaxed)) {
  }
}

std::vector<double> LatencyBuckets() {
  return {0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
}

std::string RenderLabels(const Labels& labels) {
  if (labels.empty()) return "";
  std::string out = "{";
  for (size_t i = 0; i < labels.size(); ++i) {
    if (i) out += ',';
    out += labels[i].first;
    out += "=\"";
    for (char c : labels[i].second) {
      if (c == '\\') out += "\\\\";
      else if (c == '"') out += "\\\"";
      else if (c == '\n') out += "\\n";
      else out += c;
    }
    out += '"';
  }
  out += '}';
  return out;
}

Registry::Family& Registry::GetFamily(const std::string& name, const std::string& help, Type type) {
  auto [it, inserted] = families_.try_emplace(name);
  if (inserted) {
    it->second.type = type;
    it->second.help = help;
  } else if (it->second.type != type) {
    throw std::logic_error("metric " + name + " registered with two types");
  }
  return it->second;
}

Counter& Registry::GetCounter(const std::string& name, const std::string& help, const Labels& labels) {
  std::lock_guard lock(mu_);
  Family& f = GetFamily(name, help, Type::kCounter);
  Series<Counter>& c = f.counters[RenderLabels(labels)];
  if (!c.metric) c = {labels, &counter_store_.emplace_back()};
  return *c.metric;
}

Gauge& Registry::GetGauge(const std::string& name, const std::string& help, const Labels& labels) {
  std::lock_guard lock(mu_);
  Family& f = GetFamily(name, help, Type::kGauge);
  Series<Gauge>& g = f.gauges[RenderLabels(labels)];
  if (!g.metric) g = {labels, &gauge_store_.emplace_back()};
  return *g.metric;
}

Histogram& Registry::GetHistogram(const std::string& name, const std::string& help, const Labels& labels,
                                  std::vector<double> bounds) {
  std::lock_guard lock(mu_);
  Family& f = GetFamily(name, help, Type::kHistogram);
  Series<Histogram>& h = f.histograms[RenderLabels(labels)];
  if (!h.metric) h = {labels, &histogram_store_.emplace_back(std::move(bounds))};
  return *h.metric;
}

void Registry::AddRefresher(std::function<void()> refresh) {
  std::lock_guard lock(mu_);
  refreshers_.push_back(std::move(refresh));
}

namespace {

// Inserts an extra label into a rendered label set: {a="1"} + le="0.5" -> {a="1",le="0.5"}.
std::string WithLabel(const std::string& rendered, const std::string& extra) {
  if (rendered.empty()) return "{" + extra + "}";
  return rendered.substr(0, rendered.size() - 1) + "," + extra + "}";
}

}  // namespace

void Registry::Refresh() {
  std::vector<std::function<void()>> refreshers;
  {
    std::lock_guard lock(mu_);
    refreshers = refreshers_;
  }
  for (auto& r : refreshers) r();  // outside mu_: a refresher sets gauges it looked up before
}

std::string Registry::Render() {
  Refresh();

  std::lock_guard lock(mu_);
  std::string out;
  for (const auto& [name, f] : families_) {
    const char* type = f.type == Type::kCounter ? "counter" : f.type == Type::kGauge ? "gauge" : "histogram";
    out += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, f.help, name, type);
    for (const auto& [labels, c] : f.counters) out += fmt::format("{}{} {}\n", name, labels, c.metric->value());
    for (const auto& [labels, g] : f.gauges) out += fmt::format("{}{} {}\n", name, labels, g.metric->value());
    for (const auto& [labels, series] : f.histograms) {
      const Histogram* h = series.metric;
      uint64_t cumulative = 0;
      for (size_t i = 0; i < h->bounds().size(); ++i) {
        cumulative += h->bucket(i);
        out += fmt::format("{}_bucket{} {}\n", name, WithLabel(labels, fmt::format("le=\"{}\"", h->bounds()[i])), cumulative);
      }
      out += fmt::format("{}_bucket{} {}\n", name, WithLabel(labels, "le=\"+Inf\""), h->count());
      out += fmt::format("{}_sum{} {}\n{}_count{} {}\n", name, labels, h->sum(), name, labels, h->count());
    }
  }
  return out;
}

namespace {

bool Includes(const Labels& labels, const Labels& match) {
  return std::all_of(match.begin(), match.end(), [&](const auto& want) {
    return std::find(labels.begin(), labels.end(), want) != labels.end();
  });
}

}  // namespace

template <typename F>
void Registry::ForEachSeries(std::string_view name, F visit) {
  std::lock_guard lock(mu_);
  auto it = families_.find(name);
  if (it == families_.end()) return;
  for (const auto& [key, c] : it->second.counters) visit(c.labels, static_cast<double>(c.metric->value()));
  for (const auto& [key, g] : it->second.gauges) visit(g.labels, g.metric->value());
}

double Registry::Sum(std::string_view name, const Labels& match) {
  double total = 0;
  ForEachSeries(name, [&](const Labels& labels, double value) {
    if (Includes(labels, match)) total += value;
  });
  return total;
}

std::optional<double> Registry::Find(std::string_view name, const Labels& match) {
  std::optional<double> found;
  ForEachSeries(name, [&](const Labels& labels, double value) {
    if (!found && Includes(labels, match)) found = value;
  });
  return found;
}

std::vector<std::string> Registry::LabelValues(std::string_view name, std::string_view key) {
  std::vector<std::string> out;
  ForEachSeries(name, [&](const Labels& labels, double) {
    for (const auto& [k, v] : labels) {
      if (k == key && !v.empty() && std::find(out.begin(), out.end(), v) == out.end()) out.push_back(v);
    }
  });
  return out;
}

std::vector<Registry::Sample> Registry::Samples(std::string_view name) {
  std::vector<Sample> out;
  ForEachSeries(name, [&](const Labels& labels, double value) { out.push_back({labels, value}); });
  return out;
}

std::vector<std::string> Registry::Names() {
  std::lock_guard lock(mu_);
  std::vector<std::string> out;
  for (const auto& [name, f] : families_) out.push_back(name);
  return out;
}

Registry& Registry::Global() {
  static Registry* registry = new Registry();
  return *registry;
}

}  // namespace mare::metrics
