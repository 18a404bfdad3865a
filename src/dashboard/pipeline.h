// The pipeline's health as the dashboard shows it: ingest rates and totals by source, rejects
// by reason, the log's size and retention, consumer lags, the rollups, the store and the sinks.
// Read from the metrics registry once a second (Sample), with rates over the last few seconds
// and ten minutes of history for the ingest chart.
#pragma once

#include <cstdint>
#include <deque>
#include <mutex>
#include <string>

#include "common/metrics.h"
#include "config/config.h"

namespace mare::dashboard {

class PipelineHealth {
 public:
  PipelineHealth(metrics::Registry* registry, const Config& config);

  // Reads the registry. `unattributed_rejects`: dead-letter entries that name no sensor.
  void Sample(int64_t now_us, int64_t unattributed_rejects);

  // The last sample as JSON (the "pipeline" object of docs/api/openapi.yaml).
  std::string Json() const;
  // {"now": Json(), "history": [{"t":..,"accepted_per_s":..,"rejected_per_s":..}, ...]}
  std::string HistoryJson() const;
  double accepted_per_s() const;

  static constexpr int64_t kHistoryUs = 600'000'000;  // ten minutes
  static constexpr int64_t kRateWindowUs = 5'000'000;

 private:
  struct Point {
    int64_t t_us;
    double accepted, rejected;  // totals
    double accepted_per_s, rejected_per_s;
  };

  metrics::Registry* registry_;
  const Config config_;
  const int64_t started_us_;
  mutable std::mutex mu_;
  std::deque<Point> history_;
  std::string json_ = "null";
};

}  // namespace mare::dashboard
