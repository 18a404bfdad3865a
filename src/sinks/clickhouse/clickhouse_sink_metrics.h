// The metrics of the ClickHouse sink, labelled topic="raw" (table readings) or topic="rollups":
// declared once here, read back by the tests through these names.
#pragma once

#include "common/metrics.h"

namespace mare::clickhouse_sink_metrics {

inline constexpr metrics::Metric kRecordsRead{"mare_sink_clickhouse_records_read_total", "Records read from the log"};
inline constexpr metrics::Metric kRowsWritten{"mare_sink_clickhouse_rows_written_total", "Rows ClickHouse acknowledged (a resend after a restart counts again)"};
inline constexpr metrics::Metric kRowsDeadLettered{"mare_sink_clickhouse_rows_dead_lettered_total", "Records sent to the dead-letter file: unreadable, not representable, or refused by ClickHouse"};
inline constexpr metrics::Metric kInserts{"mare_sink_clickhouse_inserts_total", "INSERT requests ClickHouse acknowledged"};
inline constexpr metrics::Metric kDuplicatesDropped{"mare_sink_clickhouse_duplicates_dropped_total", "Raw records repeating the sensor and timestamp of one appended within the horizon before (log.dedup), not written"};
inline constexpr metrics::Metric kErrors{"mare_sink_clickhouse_errors_total", "Failed attempts: ClickHouse unreachable or answering an error (retried)"};
inline constexpr metrics::Metric kUp{"mare_sink_clickhouse_up", "1 while the last request to ClickHouse got an answer"};
inline constexpr metrics::Metric kLagRecords{"mare_sink_clickhouse_lag_records", "Records in the topic not yet committed by the sink"};
inline constexpr metrics::Metric kBatchSeconds{"mare_sink_clickhouse_batch_seconds", "Time from a batch's first record to its committed position"};
inline constexpr metrics::Metric kPartitions{"mare_sink_clickhouse_assigned_partitions", "Partitions of the topic this sink owns: all of them, or on Kafka its share in the consumer group"};
inline constexpr metrics::Metric kRebalances{"mare_sink_clickhouse_rebalances_total", "Assignments the Kafka consumer group gave this sink (each read its partitions' positions from ClickHouse)"};
inline constexpr metrics::Metric kRequestBytes{"mare_sink_clickhouse_request_bytes_total", "Request bodies sent, as on the wire"};

}  // namespace mare::clickhouse_sink_metrics
