// The metrics of the columnar store and its feeder: declared once here, read back by the
// dashboard and the tests through these names.
#pragma once

#include "common/metrics.h"

namespace mare::store_metrics {

inline constexpr metrics::Metric kRowsAdded{"mare_store_rows_added_total", "Readings added to the store's memtable"};
inline constexpr metrics::Metric kFlushes{"mare_store_flushes_total", "Memtable flushes"};
inline constexpr metrics::Metric kCompactions{"mare_store_compactions_total", "Segment merges"};
inline constexpr metrics::Metric kBytesWritten{"mare_store_bytes_written_total", "Bytes of segments written (flushes and merges)"};
inline constexpr metrics::Metric kRowsExpired{"mare_store_rows_expired_total", "Readings dropped by the store's retention"};
inline constexpr metrics::Metric kReadingsReplaced{"mare_store_readings_replaced_total", "Readings that replaced a stored one of the same sensor and timestamp (the later wins)"};
inline constexpr metrics::Metric kDuplicatesDropped{"mare_store_duplicates_dropped_total", "Raw records repeating the sensor and timestamp of one appended within the horizon before (log.dedup), not stored"};
inline constexpr metrics::Metric kBlocksReopened{"mare_store_blocks_reopened_total", "Stored blocks moved back into the memtable because a reading replaced one of their rows"};
inline constexpr metrics::Metric kIndexCacheBytes{"mare_store_index_cache_bytes", "Bytes of segment block indexes held in the store's index cache (bounded by store.index_cache_bytes)"};
inline constexpr metrics::Metric kIndexCacheHits{"mare_store_index_cache_hits_total", "Segment block indexes found in the store's index cache"};
inline constexpr metrics::Metric kIndexCacheMisses{"mare_store_index_cache_misses_total", "Segment block indexes not in the store's index cache, read again from their file"};
inline constexpr metrics::Metric kIndexCacheEvictions{"mare_store_index_cache_evictions_total", "Segment block indexes dropped from the store's index cache to keep it within its bound"};
inline constexpr metrics::Metric kFlushSeconds{"mare_store_flush_seconds", "Time to write a memtable out"};
inline constexpr metrics::Metric kReadingsRejected{"mare_store_readings_rejected_total", "Raw readings the store could not parse (not stored)"};
inline constexpr metrics::Metric kLagRecords{"mare_store_lag_records", "Raw records not yet read by the store"};
inline constexpr metrics::Metric kDiskSegments{"mare_store_disk_segments", "Live store segments"};
inline constexpr metrics::Metric kDiskBytes{"mare_store_disk_bytes", "Bytes of live store segments"};
inline constexpr metrics::Metric kDiskRows{"mare_store_disk_rows", "Readings in store segments (the memtable excluded)"};
inline constexpr metrics::Metric kMemtableRows{"mare_store_memtable_rows", "Readings in the store's memtable, not yet flushed"};
inline constexpr metrics::Metric kConsumerUp{"mare_store_consumer_up", "1 while the store's feeder consumes, 0 while it retries a failed step or stopped"};
inline constexpr metrics::Metric kStepsFailed{"mare_store_steps_failed_total", "Failed steps of the store's feeder (a full disk, say), each retried unless permanent"};
inline constexpr metrics::Metric kForecastRows{"mare_store_forecast_rows", "Rows of SQL's table forecasts (one per sensor, field, issue and target hour)"};
inline constexpr metrics::Metric kForecastRowsExpired{"mare_store_forecast_rows_expired_total", "Rows of SQL's table forecasts dropped by store.forecast_retention"};
inline constexpr metrics::Metric kForecastLagRecords{"mare_store_forecast_lag_records", "Records of the forecasts topic not yet read by the store"};
inline constexpr metrics::Metric kForecastRecordsSkipped{"mare_store_forecast_records_skipped_total", "Records of the forecasts topic the store could not read as a forecast (not stored)"};

}  // namespace mare::store_metrics
