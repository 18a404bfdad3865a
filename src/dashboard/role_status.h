// A pipeline role's status record: what one process (`mare ingest`, `mare stream`, `mare store`,
// a sink, ...) publishes on the log's status topic so that the process serving the dashboard
// can show every role's stages when they run apart (docs/formats/role-status.md).
//
// The record carries the role's figures of the metric families the pipeline view reads
// (PipelineHealth::Metrics), as the role's own registry has them; the dashboard merges them
// with its own. One record per role instance and interval, keyed "<role>/<instance>" on a
// compacted topic, so the newest of each instance is what a reader starting later finds.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/metrics.h"
#include "common/status.h"

namespace mare::dashboard {

// The status topic's settings, owned here: every role uses these (publishers and readers must agree).
struct RoleStatusOptions {
  std::string topic = "status";              // under the log's topic prefix, one partition, compacted
  int64_t interval_us = 2'000'000;           // how often a role publishes
  int64_t stale_after_us = 10'000'000;       // a role whose newest status is older is shown stale
  int64_t retention_us = 86'400'000'000;     // a role killed without a word is forgotten after this
};

struct MetricSample {
  std::string name;
  metrics::Labels labels;
  double value = 0;
};

struct RoleStatus {
  std::string role;      // "ingest", "stream", "store", "run", "sink mariadb", ...
  std::string instance;  // unique among the role's processes: <host>-<pid>, or `mare stream --member`
  std::string host;
  int64_t pid = 0;
  int64_t time_us = 0;      // when the role sampled its figures (its wall clock)
  int64_t interval_us = 0;  // how often it publishes
  bool stopped = false;     // its last word on a clean stop: readers forget it
  std::vector<MetricSample> metrics;

  // The record's key: "<role>/<instance>".
  std::string Key() const { return role + "/" + instance; }
};

// The JSON value of docs/formats/role-status.md.
std::string EncodeRoleStatus(const RoleStatus& status);
// InvalidArgument naming what is wrong for anything but a record EncodeRoleStatus could write.
Result<RoleStatus> DecodeRoleStatus(std::string_view json);

// The samples of every family of `families` in `registry` (call Refresh first for refreshed gauges).
std::vector<MetricSample> SampleMetrics(metrics::Registry& registry, const std::vector<metrics::Metric>& families);

}  // namespace mare::dashboard
