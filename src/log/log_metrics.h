// The metrics of the log (the embedded log, labelled topic="raw", ...; and the Kafka producer):
// declared once here, read back by the dashboard, the benchmarks and the tests through these names.
#pragma once

#include "common/metrics.h"

namespace mare::log_metrics {

inline constexpr metrics::Metric kFsyncSeconds{"mare_log_fsync_seconds", "Time spent in fdatasync of log segments"};
inline constexpr metrics::Metric kBytesTruncated{"mare_log_bytes_truncated_total", "Bytes cut from segment tails by recovery (torn tails and repairs)"};
inline constexpr metrics::Metric kRecordsAppended{"mare_log_records_appended_total", "Records appended"};
inline constexpr metrics::Metric kBytesAppended{"mare_log_bytes_appended_total", "Bytes appended (encoded batches, as stored: compressed when the topic's codec is)"};
inline constexpr metrics::Metric kUncompressedBytesAppended{"mare_log_uncompressed_bytes_appended_total", "Bytes appended before compression (the encoded batches as they would be stored uncompressed; equal to mare_log_bytes_appended_total on an uncompressed topic)"};
inline constexpr metrics::Metric kBatchesAppended{"mare_log_batches_appended_total", "Batches appended"};
inline constexpr metrics::Metric kSegmentsDeleted{"mare_log_segments_deleted_total", "Segments deleted by retention"};
inline constexpr metrics::Metric kCompactedSegments{"mare_log_compacted_segments_total", "Segments rewritten (or removed, nothing left) by compaction"};
inline constexpr metrics::Metric kCompactedRecordsRemoved{"mare_log_compacted_records_removed_total", "Records removed by compaction (a newer record of their key is kept)"};
inline constexpr metrics::Metric kCompactedBytesRemoved{"mare_log_compacted_bytes_removed_total", "Bytes of segment files freed by compaction"};
inline constexpr metrics::Metric kCompactionPasses{"mare_log_compaction_passes_total", "Compaction passes over a partition that found something to compact"};
inline constexpr metrics::Metric kDiskBytes{"mare_log_disk_bytes", "Bytes of segment files on disk"};
inline constexpr metrics::Metric kEndOffset{"mare_log_end_offset", "Offset the next appended record will get"};
inline constexpr metrics::Metric kKafkaRecordsProduced{"mare_log_kafka_records_produced_total", "Records acknowledged by the Kafka brokers"};
inline constexpr metrics::Metric kKafkaAppendsFailed{"mare_log_kafka_appends_failed_total", "Appends the Kafka brokers did not acknowledge"};
inline constexpr metrics::Metric kKafkaAppendsRerun{"mare_log_kafka_appends_rerun_total", "Appends together (HTTP ingest requests) run again in a new transaction after the brokers refused records of their transaction for good (each run counted; when the brokers do not say whose records, every call of it runs again alone, the one at fault included)"};
inline constexpr metrics::Metric kKafkaTransactions{"mare_log_kafka_transactions_total", "Transactions of appends to several partitions together (HTTP ingest requests), by outcome"};

}  // namespace mare::log_metrics
