// The pipeline's health as the dashboard shows it: ingest rates and totals by source, rejects
// by reason, the log's size and retention, consumer lags, the rollups, the store and the sinks.
// Read from the metrics registry once a second (Sample), with rates over the last few seconds
// and ten minutes of history for the ingest chart. When the roles run apart (on Kafka), the
// other roles' figures come from their status records (role_status.h) and are merged in, and
// "roles" lists every process with the age of its newest status.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <functional>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "common/metrics.h"
#include "dashboard/role_status.h"

namespace mare::dashboard {

// The settings the health view shows beside the metrics (filled by the command that runs the
// pipeline from its config: the dashboard does not read the config itself).
struct PipelineSettings {
  std::string log_fsync = "interval";
  int64_t log_retention_us = 0;
  int64_t log_retention_bytes = 0;
  bool rollup_enabled = false;
  int64_t rollup_lateness_us = 0;
  bool store_enabled = false;
  int64_t store_retention_us = 0;  // 0: keeps everything
  // This process's role and instance (the "roles" list), and, when the roles run apart, the
  // other roles' newest statuses (RoleStatusReader::Others); null: this process is the pipeline.
  std::string role = "run";
  std::string instance;
  std::function<std::vector<RoleStatus>()> other_roles;
  int64_t stale_after_us = RoleStatusOptions{}.stale_after_us;
};

class PipelineHealth {
 public:
  PipelineHealth(metrics::Registry* registry, const PipelineSettings& settings);

  // Reads the registry. `unattributed_rejects`: dead-letter entries that name no sensor.
  void Sample(int64_t now_us, int64_t unattributed_rejects);

  // The last sample as JSON (the "pipeline" object of docs/api/openapi.yaml).
  std::string Json() const;
  // {"now": Json(), "history": [{"t":..,"accepted_per_s":..,"rejected_per_s":..}, ...]}
  std::string HistoryJson() const;
  double accepted_per_s() const;

  // The metric families the view reads: what a role publishes in its status for the others.
  static const std::vector<metrics::Metric>& Metrics();

  static constexpr int64_t kHistoryUs = 600'000'000;  // ten minutes
  static constexpr int64_t kRateWindowUs = 5'000'000;

 private:
  struct Totals {
    double accepted = 0, rejected = 0;
  };
  struct Point {
    int64_t t_us;
    Totals all;
    double accepted_per_s, rejected_per_s;
    std::vector<std::pair<std::string, Totals>> by_source;  // each source that is on, as registered
  };
  // Per second from `base`'s totals to `now`'s (0 without a base): over a few seconds, steadier
  // than second to second. A counter never goes back, so neither does a rate below 0.
  static std::pair<double, double> Rates(const Totals& now, const Totals& base, double secs);

  // The registry to read this sample from: this process's own, or, with other roles, a copy of
  // its families with the others' series added (labelled process=<key>, so none adds into another).
  metrics::Registry* Merged(const std::vector<RoleStatus>& others, std::unique_ptr<metrics::Registry>* merged);

  metrics::Registry* registry_;
  const PipelineSettings settings_;
  const int64_t started_us_;
  mutable std::mutex mu_;
  std::deque<Point> history_;
  std::string json_ = "null";
};

}  // namespace mare::dashboard
