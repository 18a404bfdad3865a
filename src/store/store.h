// Store: mare's columnar time-series store, one reading per sensor and timestamp (a later one
// replaces an earlier one, whether in memory or on disk). Readings land in an in-memory
// memtable (one RowBuffer per sensor and UTC hour) that queries see at once; a flush writes it out as one
// immutable segment (segment.h) whatever the hours it spans, its blocks grouped by hour; a
// background compaction merges a UTC day's segments, and packs small old ones together. The raw
// log topic is the write-ahead log: each flush records the raw position it covers, and after a
// restart ingestion resumes from there (StoreFeeder), so nothing is lost or counted twice.
// Layout, file format and compaction rules: docs/formats/store.md.
//
//   auto store = Store::Open(options, &registry);         // Result<unique_ptr<Store>>
//   (*store)->Write([&](Store::Batch& b) { b.Add(reading); });
//   (*store)->Flush(raw_next_offsets);
//   auto snap = (*store)->GetSnapshot({.sensors = {7}, .min_ts = t0, .max_ts = t1});
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "common/metrics.h"
#include "common/status.h"
#include "log/duplicate_filter.h"
#include "reading/reading.h"
#include "store/block.h"
#include "store/schema.h"
#include "store/forecast_table.h"
#include "store/index_cache.h"
#include "store/segment.h"
#include "store/sensor_summary.h"
#include "store/snapshot.h"

namespace mare::store {

struct StoreOptions {
  bool enabled = true;            // `mare run` keeps a store
  // The feeder stores no second copy of a reading found in the raw topic (log/duplicate_filter.h):
  // the first copy stays, as in the rollups and the sinks. Set by config/ from [log] dedup.
  log::DuplicateFilterOptions raw_dedup;
  std::string dir;                 // required: <data_dir>/store
  int64_t retention_us = 0;        // drop hours older than this (event time vs wall clock); 0 keeps all
  // SQL's table forecasts keeps an issue until all its target hours are older than this (than
  // the wall clock, or the newest issue held if earlier); 0 keeps all. 35 days: the 30-day skill window (the Stats view's MAE, a SQL check of
  // a month's forecasts against the hourly rollups) ending at the last complete day, with margin.
  int64_t forecast_retention_us = 35LL * 86'400'000'000;
  size_t flush_rows = 1'000'000;   // the memtable is flushed at this many rows (StoreFeeder)
  int64_t flush_interval_us = 10'000'000;  // ... or this long after its first row (StoreFeeder)
  size_t compaction_fanin = 4;     // merge a day's segments when this many are of similar size
  int64_t compaction_quiet_us = 30'000'000;  // merge all of a day's segments once it got no write this long
  // Quiet segments of fewer than a quarter of this many rows are merged with their neighbours
  // in time into segments of up to this many rows, whatever days they span (sparse old data).
  int64_t compaction_pack_rows = 1 << 20;
  bool compaction_thread = true;   // false: the caller runs Compact() (import, tests)
  // Reads what is there without the lock, cleaning nothing up (`mare query --data-dir`). A
  // writer holds <dir>/LOCK: a second writer is refused.
  bool read_only = false;
  // Segments keep only a summary in memory (with a per-sensor one: ~64 bytes per sensor per
  // segment, sensor_summary.h); their block indexes (about 550 bytes per block of five columns,
  // so ~130 MB a day at 10,000 sensors) are loaded on demand into a cache of at most this many
  // bytes, least recently used out first. Queries hold the indexes of the hours they read until
  // they end. 512 MiB: ~4 days of 10,000 sensors, years of a hundred. The sensor list reads no
  // index (the segments' sensor summaries), whatever this is.
  size_t index_cache_bytes = 512u << 20;
};

class Store {
 public:
  static Result<std::unique_ptr<Store>> Open(const StoreOptions& options, metrics::Registry* registry);
  ~Store();  // stops compaction; does not flush (the log has what the memtable holds)

  // Adding readings: one writer thread, under the write lock taken by Write().
  class Batch {
   public:
    void Add(const Reading& reading);
    // Adds one sensor's readings at once (a bulk load's: its parser built the columns), as Add
    // would one by one in the buffer's order: a row replaces a stored reading of its time, and
    // a later row an earlier one. Its column indexes are the store's field ids (schema()). When
    // its rows are of one UTC hour, strictly increasing and newer than anything stored for that
    // sensor (an archive in time order), it costs one lookup and a copy per column, or none
    // when the memtable has no rows of that sensor and hour yet; otherwise row by row.
    // replaced_inside: rows its builder already replaced within it (a line repeating an
    // earlier one's sensor and time), counted as replaced readings.
    void AddRows(RowBuffer&& rows, size_t replaced_inside = 0);

   private:
    friend class Store;
    explicit Batch(Store* store) : store_(store) {}
    Store* store_;
    size_t added_ = 0;
  };
  void Write(const std::function<void(Batch&)>& f);

  size_t memtable_rows() const { return memtable_rows_.load(); }
  int64_t memtable_age_us() const;  // since its first row; 0 when empty

  // Writes the memtable out as one segment that records `raw_offsets` (the raw topic's next
  // offset per partition once it is in), then empties it. Also writes the position file; if
  // only that fails, the segment stands (it records the position) and the error is returned.
  // before_hour: only the hours before it (import, whose input is in time order); the position
  // then must not move (pass no offsets).
  Status Flush(const std::vector<int64_t>& raw_offsets, int64_t before_hour = std::numeric_limits<int64_t>::max());
  // Bulk loading (import): takes the memtable's hours before `before_hour` out of it, to be
  // written by WriteTaken on another thread while readings keep coming. Their rows are not
  // visible to queries in between, so this is for loading, not for a live store.
  struct TakenHour {
    int64_t hour = 0;
    std::vector<RowBuffer> buffers;
    std::vector<BlockRef> hides;  // blocks on disk whose rows these buffers now hold
  };
  std::vector<TakenHour> TakeHoursBefore(int64_t before_hour);
  // Writes the taken hours as one segment (recording no raw position) and makes it live.
  Status WriteTaken(std::vector<TakenHour>* hours);

  // The raw position everything durable reflects (-1 per partition never written).
  std::vector<int64_t> raw_offsets() const;

  // Merges segments as the options say (the background thread calls it). all=true takes every
  // day and every small segment as quiet (import, tests).
  Status Compact(bool all = false);
  // Drops hours older than the retention (wall clock): at once from what queries see; a segment
  // file goes once all its hours are past, and one with at least half its rows past is
  // rewritten without them. Returns the readings dropped.
  Result<int64_t> ApplyRetention(int64_t now_us);

  std::shared_ptr<Snapshot> GetSnapshot(const SnapshotFilter& filter) const;
  // The visible blocks of a lazy snapshot's segment within its hours, as pinned views appended
  // to *out (none, if it has none there); an error when its index cannot be loaded.
  static Status PinVisible(const LazySegment& segment, std::vector<std::shared_ptr<const Segment>>* out);
  // The forecasts, SQL's table `forecasts` (fed by ForecastFeeder from the forecasts topic).
  ForecastTable& forecasts() { return *forecasts_; }
  const ForecastTable& forecasts() const { return *forecasts_; }
  Schema& schema() { return schema_; }
  const Schema& schema() const { return schema_; }
  const StoreOptions& options() const { return options_; }
  const IndexCache& index_cache() const { return *index_cache_; }

  // Every sensor's figures over what queries see (segments within the retention, without their
  // hidden blocks, and the memtable), by sensor id: the sensor list's. From the segments'
  // resident sensor summaries, reading no block index (but for a segment that still holds hours
  // past the retention, until ApplyRetention views it). scan=true: from every visible block's
  // index entry instead, as the sensor list did before the summaries (tests and the bench
  // compare with it). A segment whose index cannot be read is left out, and logged.
  std::vector<SensorFigures> Sensors(bool scan = false) const;

  struct Stats {
    int64_t segments = 0, blocks = 0, rows = 0, bytes = 0, memtable_rows = 0;
    int64_t sensor_summary_bytes = 0;  // the segments' sensor summaries and overrides (sensor_summary.h)
  };
  Stats GetStats() const;

 private:
  explicit Store(const StoreOptions& options, metrics::Registry* registry);
  Status Recover();
  struct BufferKey;
  struct MemBuffer;
  void AddLocked(const Reading& reading);
  void AddRowsLocked(RowBuffer&& rows, size_t replaced_inside);
  // The memtable buffer of sensor's hour holding ts (created when new), through recent_.
  MemBuffer* BufferFor(uint32_t sensor, int64_t ts, BufferKey* key);
  // Points the buffer's current row at a new reading of ts: the row of a stored copy (in the
  // memtable, or pulled from disk), cleared, or a new row.
  void StartRow(const BufferKey& key, int64_t ts, MemBuffer* buffer);
  // A reading of (sensor, ts) may be on disk already: finds the live block holding ts, moves
  // its rows into the memtable buffer and hides the block, so the reading replaces its row.
  bool PullBlockWith(const BufferKey& key, int64_t ts, MemBuffer* buffer);
  bool Hidden(uint64_t segment, size_t file_index) const;
  // The (pinned) view without its hidden blocks (sorted file indexes; null: none), as the views
  // of the runs between them.
  static void AppendVisible(const std::shared_ptr<const Segment>& view, const std::vector<uint32_t>* hidden,
                            std::vector<std::shared_ptr<const Segment>>* out);
  void NoteBlocks(const Segment& segment);  // disk_max_ts_ of its sensors (from its summary, else its blocks: pinned)
  // Recomputes hidden_sensors_ of these sensors in the (pinned) live view, from its visible blocks.
  void NoteHiddenSensors(const Segment& view, std::vector<uint32_t> sensors);
  // Does it for the blocks PullBlockWith hid in this Write's batch: once a batch, not once a
  // block (a re-imported archive hides every block of its segments, one after the other).
  void NoteHiddenOfBatch();
  uint32_t FieldId(std::string_view name, FieldType type);  // writer thread only
  // cache: the new segment's index goes into the index cache at once (Segment::Open's keep_in_cache).
  Status FinishSegment(SegmentWriter* writer, uint64_t id, std::vector<uint64_t> supersedes, std::vector<int64_t> raw_offsets,
                       std::vector<BlockRef> hides, bool cache, std::shared_ptr<const Segment>* out);
  // Writes buffers (each one sensor's rows of one hour, sorted by time) as one segment.
  Status WriteBuffers(std::vector<RowBuffer*> buffers, std::vector<uint64_t> supersedes, std::vector<int64_t> raw_offsets,
                      std::vector<BlockRef> hides, bool cache, std::shared_ptr<const Segment>* out);
  // Merges segments (views: only their visible blocks are kept) into one that supersedes their
  // files. *merged is false when it gave up (a block of an input was hidden meanwhile).
  Status MergeSegments(std::vector<std::shared_ptr<const Segment>> inputs, bool* merged = nullptr);
  void CompactionLoop();
  void Install(const std::vector<std::shared_ptr<const Segment>>& added, const std::vector<uint64_t>& removed);
  void InstallLocked(const std::vector<std::shared_ptr<const Segment>>& added, const std::vector<uint64_t>& removed);

  const StoreOptions options_;
  Schema schema_;
  uint32_t lat_field_ = 0, lon_field_ = 0;

  // Guards segments_ and memtable_ (writer: exclusive; snapshots: shared).
  mutable std::shared_mutex mu_;
  // Live segments, by (first_hour, id); views once retention hid their oldest hours. Unpinned
  // (their summaries only): Pin() for their blocks, through index_cache_.
  std::vector<std::shared_ptr<const Segment>> segments_;
  std::shared_ptr<IndexCache> index_cache_;
  int64_t retention_floor_ = std::numeric_limits<int64_t>::min();  // hours before it are past retention
  struct BufferKey {
    uint32_t sensor;
    int64_t hour;
    bool operator==(const BufferKey&) const = default;
  };
  struct BufferKeyHash {
    size_t operator()(const BufferKey& k) const { return std::hash<uint64_t>()(static_cast<uint64_t>(k.hour) / 3600000000ULL * 1000003ULL + k.sensor); }
  };
  struct MemBuffer {
    explicit MemBuffer(uint32_t sensor) : rows(sensor) {}
    RowBuffer rows;
    // The sensor's newest time on disk when the buffer began: a reading newer than it cannot
    // be a second copy of a stored one, the common case, which then costs no disk lookup.
    int64_t disk_max_ts = std::numeric_limits<int64_t>::min();
    std::vector<BlockRef> hides;  // blocks whose rows were moved here (written with the flush)
  };
  std::unordered_map<BufferKey, MemBuffer, BufferKeyHash> memtable_;
  // The writer's last buffer per sensor (ids below kRecentSensors), by index: archives give a
  // sensor reading after reading of one hour, and the map's lookup (hash, hour division) was a
  // good part of a bulk load's time. Nodes of memtable_ do not move; whatever erases some of
  // them clears this (under the exclusive lock).
  static constexpr uint32_t kRecentSensors = 1 << 16;
  struct Recent {
    int64_t hour = 0;
    MemBuffer* buffer = nullptr;
  };
  std::vector<Recent> recent_;
  // Blocks of live segments that a later segment or the memtable replaces: segment id -> sorted
  // file block indexes. Queries and merges skip them.
  std::unordered_map<uint64_t, std::vector<uint32_t>> hidden_;
  // The sensors of those blocks, their figures over the segment's visible blocks (by sensor id):
  // the sensor list reads these and the segments' resident summaries, never an index. At most
  // one entry per hidden block, gone with its segment.
  std::unordered_map<uint64_t, std::vector<SensorFigures>> hidden_sensors_;
  struct HiddenInBatch {
    std::shared_ptr<const Segment> view;  // pinned, until the batch ends
    std::vector<uint32_t> sensors;
  };
  std::unordered_map<uint64_t, HiddenInBatch> hidden_in_batch_;  // writer, under the exclusive lock
  std::unordered_map<uint32_t, int64_t> disk_max_ts_;  // sensor -> newest time in live segments
  std::atomic<size_t> memtable_rows_{0};
  std::atomic<int64_t> memtable_since_us_{0};
  std::map<int64_t, int64_t> last_write_us_;  // UTC day -> monotonic time of its last flush (recent ones)
  std::vector<int64_t> raw_offsets_;          // durable position
  struct CachedField {
    std::string name;
    FieldType type;
    uint32_t id;
    const char* last_data;  // the caller's name pointer last seen: tried first (bytes still compared)
  };
  std::vector<CachedField> field_cache_;  // writer thread only: Schema::Intern without its lock

  std::atomic<uint64_t> next_segment_id_{1};
  std::mutex compaction_mu_;  // one compaction at a time
  std::mutex stop_mu_;
  std::condition_variable stop_cv_;
  bool stopping_ = false;
  std::thread compaction_thread_;
  int lock_fd_ = -1;
  std::unique_ptr<ForecastTable> forecasts_;

  metrics::Counter* rows_added_;
  metrics::Counter* flushes_;
  metrics::Counter* compactions_;
  metrics::Counter* bytes_written_;
  metrics::Counter* retention_dropped_;
  metrics::Counter* replaced_;
  metrics::Counter* blocks_reopened_;
  metrics::Histogram* flush_seconds_;
};

}  // namespace mare::store
