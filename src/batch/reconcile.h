// Reconcile: the stream's rollups (as the MariaDB tables or the rollups topic hold them) against
// a batch recompute from the store, window by window, with the likely cause of each difference.
// `mare batch reconcile` runs it; docs/formats/mariadb-tables.md says what --repair writes.
//
//   auto report = Reconcile(store, options, stream_rows, &registry);
//   for (const auto& d : report->differences) ... d.cause ...
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "batch/late_readings.h"
#include "batch/recompute.h"
#include "common/metrics.h"
#include "common/status.h"
#include "sinks/rollup_message.h"

namespace mare::batch {

// Rollups by key "<sensor_id>/<field>/<resolution>/<window_start_us>" (the rollups topic's).
using RollupsByKey = std::map<std::string, sinks::RollupMessage>;
std::string KeyOf(const sinks::RollupMessage& m);

// What the causes are judged from; each is optional.
struct Evidence {
  const LateReadings* late = nullptr;        // the dead-letter files' `late` entries
  const std::set<std::string>* topic_keys = nullptr;  // keys the rollups topic holds (when compared with MariaDB)
  // The event time of the oldest reading still in the raw topic, when its retention has dropped
  // older ones (nothing before it can be read again).
  std::optional<int64_t> raw_retained_since_us;
};

struct Difference {
  enum class Kind { kMissingInStream, kMissingInBatch, kCount, kValues };
  Kind kind = Kind::kValues;
  std::string key;
  std::optional<sinks::RollupMessage> stream;
  std::optional<sinks::RollupMessage> batch;
  std::string what;   // which numbers differ
  std::string cause;  // the likely cause, or "unknown"
};
const char* KindName(Difference::Kind kind);

struct ReconcileOptions {
  RecomputeOptions recompute;          // resolutions, period, sensors, progress
  double relative_tolerance = 1e-9;    // for mean and stddev (count, min, max, first, last: exact)
};

struct ReconcileReport {
  RecomputeSummary recompute;
  uint64_t compared = 0;  // windows on either side
  uint64_t equal = 0;
  std::vector<Difference> differences;
  RollupsByKey batch;  // the recompute, for --repair
};

// Compares `stream` (rows with window_start in the widened period) with the recompute. Sets the
// batch metrics (batch_metrics.h) in `registry` when given.
Result<ReconcileReport> Reconcile(const store::Store& store, const ReconcileOptions& options, const RollupsByKey& stream,
                                  const Evidence& evidence, metrics::Registry* registry = nullptr);

}  // namespace mare::batch
