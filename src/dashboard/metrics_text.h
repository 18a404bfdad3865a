// Reading mare's metrics back. The dashboard's pipeline view parses the registry's text
// exposition (metrics::Registry::Render, the text /metrics serves), so it shows exactly what a
// Prometheus scrape would see, from every component, without hooks into any of them.
//
//   MetricSet m(ParseMetricsText(registry.Render()));
//   double udp_accepted = m.Sum("mare_source_readings_accepted_total", {{"source", "udp"}});
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/metrics.h"

namespace mare::dashboard {

struct MetricSample {
  std::string name;  // histogram series keep their suffix: mare_log_fsync_seconds_bucket
  metrics::Labels labels;
  double value = 0;

  // The value of one label, or "" when the sample has none of that name.
  const std::string& Label(std::string_view key) const;
};

// Samples of the text format 0.0.4: comments and malformed lines are skipped.
std::vector<MetricSample> ParseMetricsText(std::string_view text);

class MetricSet {
 public:
  explicit MetricSet(std::vector<MetricSample> samples) : samples_(std::move(samples)) {}

  // The sum over every series of `name` whose labels include all of `match`.
  double Sum(std::string_view name, const metrics::Labels& match = {}) const;
  // The value of the first matching series, if there is one.
  std::optional<double> Find(std::string_view name, const metrics::Labels& match = {}) const;
  // The distinct values of label `key` among the series of `name`, in order of appearance.
  std::vector<std::string> LabelValues(std::string_view name, std::string_view key) const;

 private:
  static bool Matches(const MetricSample& s, const metrics::Labels& match);
  std::vector<MetricSample> samples_;
};

}  // namespace mare::dashboard
