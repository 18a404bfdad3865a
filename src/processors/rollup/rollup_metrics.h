// The metrics of the rollup processor: declared once here, read back by the dashboard,
// `mare stream`'s status line, the benchmarks and the tests through these names.
#pragma once

#include "common/metrics.h"

namespace mare::rollup_metrics {

inline constexpr metrics::Metric kReadingsCounted{"mare_rollup_readings_counted_total", "Raw readings counted into rollups"};
inline constexpr metrics::Metric kMessagesEmitted{"mare_rollup_messages_emitted_total", "Rollup messages appended to the rollups topic"};
inline constexpr metrics::Metric kLateReadingsDropped{"mare_rollup_late_readings_dropped_total", "Readings older than the watermark by more than the allowed lateness, not counted"};
inline constexpr metrics::Metric kDuplicatesDropped{"mare_rollup_duplicates_dropped_total", "Raw records repeating the sensor and timestamp of one appended within the horizon before (log.dedup), not counted"};
inline constexpr metrics::Metric kWatermarkSeconds{"mare_rollup_watermark_seconds", "Rollup watermark, Unix seconds"};
inline constexpr metrics::Metric kLagRecords{"mare_rollup_lag_records", "Raw records not yet read by the rollup processor"};
inline constexpr metrics::Metric kOpenWindows{"mare_rollup_open_windows", "Rollup windows not yet closed"};
inline constexpr metrics::Metric kCheckpointSeconds{"mare_rollup_checkpoint_seconds", "Time to write a rollup checkpoint"};
inline constexpr metrics::Metric kConsumerUp{"mare_rollup_consumer_up", "1 while the rollup processor consumes, 0 while it retries a failed step or stopped"};
inline constexpr metrics::Metric kStepsFailed{"mare_rollup_steps_failed_total", "Failed steps of the rollup processor (a full disk, say), each retried from the last checkpoint unless permanent"};

}  // namespace mare::rollup_metrics
