// The metrics of the MariaDB sink, labelled sink="mariadb" (rollups) or sink="mariadb_readings":
// declared once here, read back by the dashboard and the tests through these names.
#pragma once

#include "common/metrics.h"

namespace mare::sink_metrics {

inline constexpr metrics::Metric kRecordsRead{"mare_sink_records_read_total", "Records read from the log (a batch read again after a failed transaction counts again)"};
inline constexpr metrics::Metric kRecordsSkipped{"mare_sink_records_skipped_total", "Records that could not be read, logged and skipped"};
inline constexpr metrics::Metric kRowsWritten{"mare_sink_rows_written_total", "Rows upserted (rollups) or inserted (readings)"};
inline constexpr metrics::Metric kDuplicatesDropped{"mare_sink_duplicates_dropped_total", "Raw records repeating the sensor and timestamp of one appended within the horizon before (log.dedup), not written"};
inline constexpr metrics::Metric kErrors{"mare_sink_errors_total", "Failed connections or transactions (retried)"};
inline constexpr metrics::Metric kOpenConnections{"mare_sink_open_connections", "1 while connected to the database"};
inline constexpr metrics::Metric kLagRecords{"mare_sink_lag_records", "Records in the topic not yet committed by the sink"};
inline constexpr metrics::Metric kCommitSeconds{"mare_sink_commit_seconds", "Time to write and commit one batch"};

}  // namespace mare::sink_metrics
