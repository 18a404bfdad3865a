// The metrics of the Elasticsearch sink, labelled topic="raw" (readings), topic="rollups" or
// topic="forecasts":
// declared once here, read back by the dashboard and the tests through these names.
#pragma once

#include "common/metrics.h"

namespace mare::elasticsearch_sink_metrics {

inline constexpr metrics::Metric kRecordsRead{"mare_sink_elasticsearch_records_read_total", "Records read from the log"};
inline constexpr metrics::Metric kDocumentsWritten{"mare_sink_elasticsearch_documents_written_total", "Documents Elasticsearch acknowledged (a resend after a restart counts again)"};
inline constexpr metrics::Metric kDocumentsDeadLettered{"mare_sink_elasticsearch_documents_dead_lettered_total", "Records sent to the dead-letter file: unreadable, or rejected by Elasticsearch (a mapping error)"};
inline constexpr metrics::Metric kDocumentsAlreadyThere{"mare_sink_elasticsearch_documents_already_there_total", "Bulk items answered 409, counted as written: the id is in the data stream already (a resend), or a rollup's newer revision is"};
inline constexpr metrics::Metric kItemsRetried{"mare_sink_elasticsearch_items_retried_total", "Bulk items answered 429 or 5xx (alone or with their whole request), sent again"};
inline constexpr metrics::Metric kDuplicatesDropped{"mare_sink_elasticsearch_duplicates_dropped_total", "Raw records repeating the sensor and timestamp of one appended within the horizon before (log.dedup), not written"};
inline constexpr metrics::Metric kErrors{"mare_sink_elasticsearch_errors_total", "Failed requests: Elasticsearch unreachable or answering an error (retried)"};
inline constexpr metrics::Metric kUp{"mare_sink_elasticsearch_up", "1 while the last request to Elasticsearch succeeded"};
inline constexpr metrics::Metric kLagRecords{"mare_sink_elasticsearch_lag_records", "Records in the topic not yet committed by the sink"};
inline constexpr metrics::Metric kBulkSeconds{"mare_sink_elasticsearch_bulk_seconds", "Time from a batch's first bulk request to its committed position"};
inline constexpr metrics::Metric kPartitions{"mare_sink_elasticsearch_assigned_partitions", "Partitions of the topic this sink owns: all of them, or on Kafka its share in the consumer group"};
inline constexpr metrics::Metric kRebalances{"mare_sink_elasticsearch_rebalances_total", "Assignments the Kafka consumer group gave this sink (each read its partitions' positions from Elasticsearch)"};
inline constexpr metrics::Metric kRequestBytes{"mare_sink_elasticsearch_request_bytes_total", "Request bodies sent, as on the wire (gzip-compressed)"};

}  // namespace mare::elasticsearch_sink_metrics
