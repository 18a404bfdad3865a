// RollupState: the synchronous core of the rollup processor. It takes the raw topic's records
// one by one, keeps per sensor, resolution and window the Aggregate of every numeric field,
// tracks the watermark, closes windows, and produces the messages of the rollups topic
// (docs/formats/rollups.md). No threads, no I/O: the processor (rollup_processor.h), the tests
// and the benchmark drive it directly.
//
//   RollupState state({.resolutions = *ParseResolutions("1m,1h,1d"), .partitions = 4});
//   for (const auto& r : batch) state.AddRecord(r);   // or Add(partition, offset, ts, sensor, numbers)
//   state.AdvanceWatermark();                          // closes windows the watermark passed
//   state.Emit(&messages);                             // what changed since the last Emit
//
// Watermark and lateness. Each partition p has a watermark: the newest event time read from p
// minus the allowed lateness. A reading older than its partition's watermark is dropped as late
// (handed to the reject handler); any other reading is counted, even into a window already
// closed. The processor's watermark is the newest event time read from any partition minus the
// lateness; a window closes (final = true) when it reaches the window's end. Deciding lateness
// per partition, like Kafka Streams' per-task stream time, makes the set of readings counted a
// function of the log alone, whatever the interleaving of partitions in a poll: that is what
// lets a restart from a checkpoint recompute exactly what a crashed run emitted.
//
// Nested resolutions. When a resolution's length is a multiple of a finer one's (1m | 1h | 1d),
// its windows are not updated reading by reading: a window of it holds only the Merge of the
// finer windows inside it that were already evicted (in window order), and at emission the
// finer windows still held inside it are merged in after those, again in window order. The
// result is the left fold of its finer windows in window order whatever the moment each was
// evicted, so it is still a function of the window's readings alone (hence of (key, revision)).
// Each resolution is derived from the longest listed resolution that divides it; those with
// none (the finest, or all of "5m,7m") are updated per reading. Windows are aligned to the
// epoch, so a finer window lies in exactly one window of a resolution it divides. A derived
// window is emitted when a reading reached a finer window inside it, or when it closed, as
// before; it is evicted only after the finer windows inside it.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <limits>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/status.h"
#include "log/log.h"
#include "processors/rollup/aggregate.h"
#include "processors/rollup/message_writer.h"
#include "processors/rollup/record_parser.h"
#include "processors/rollup/rollup_messages.h"
#include "processors/rollup/window.h"
#include "reading/reading.h"

namespace mare::rollup {

constexpr int64_t kNoTime = std::numeric_limits<int64_t>::min();
// Version of the checkpoint body layout Encode writes (docs/formats/rollup-checkpoint.md);
// Decode also reads version 1.
constexpr uint32_t kCheckpointVersion = 2;

struct RollupStateOptions {
  std::vector<Resolution> resolutions = {MakeResolution(60'000'000), MakeResolution(3'600'000'000),
                                         MakeResolution(86'400'000'000)};
  int64_t lateness_us = 600'000'000;
  int32_t partitions = 1;  // of the raw topic, and of rollups (the same rule places a sensor)
  log::Partitioner partitioner = log::Partitioner::kMurmur2;  // the raw topic's rule
  // Derive the windows of a resolution from those of a finer one dividing it (see above). false:
  // every resolution updated per reading (tests and benchmarks compare the two).
  bool nest = true;
};

// Why a raw record was not counted: reason "late" (older than its partition's watermark) or
// "invalid" (key or value not a reading; only if something other than ingest wrote raw).
using RejectHandler = std::function<void(std::string_view reason, std::string_view detail, std::string_view raw)>;

class RollupState {
 public:
  explicit RollupState(RollupStateOptions options);
  ~RollupState();
  RollupState(const RollupState&) = delete;
  RollupState& operator=(const RollupState&) = delete;

  void set_reject_handler(RejectHandler handler) { reject_ = std::move(handler); }

  // A record of the raw topic: key = sensor id in decimal, value = the reading's JSON.
  // Returns whether it was counted.
  bool AddRecord(const log::ConsumedRecord& record);
  // A parsed reading at (partition, offset). Records of one partition must come in offset order.
  bool Add(int32_t partition, int64_t offset, int64_t ts_us, uint32_t sensor_id, std::span<const NumberField> numbers,
           std::string_view raw = {});

  // A record read but not counted (a duplicate, log/duplicate_filter.h): only the partition's
  // position moves past it.
  void Skip(int32_t partition, int64_t offset) {
    if (partition >= 0 && partition < options_.partitions) next_offset_[static_cast<size_t>(partition)] = offset + 1;
  }

  // Closes the windows whose end the watermark has reached (cheap when there are none).
  void AdvanceWatermark();
  // The same after `idle_us` of silence (nothing read from any partition): the watermark is
  // carried on by it, as if the newest reading's clock had run on, so that a sensor (or a whole
  // network) that goes quiet still sees its last windows close once its hour and the lateness
  // are over. Only closing moves: which readings are counted or dropped as late still depends on
  // each partition's own newest event time, i.e. on the log alone.
  void AdvanceIdleWatermark(int64_t idle_us);

  // Appends to *out one message per aggregate changed since the last Emit (new readings, or
  // its window closed), then forgets windows no reading can reach any more. Returns the count.
  size_t Emit(RollupMessages* out);
  // The same, as strings of their own (for tests).
  size_t Emit(std::vector<RollupMessage>* out);

  // The processor's watermark (kNoTime before any reading) and one partition's.
  int64_t watermark_us() const;
  int64_t partition_watermark_us(int32_t partition) const;
  // The next raw offset to read in a partition (0 before any).
  int64_t next_offset(int32_t partition) const { return next_offset_[static_cast<size_t>(partition)]; }

  uint64_t readings() const { return readings_; }          // counted
  uint64_t dropped_late() const { return dropped_late_; }
  uint64_t invalid() const { return invalid_; }
  int64_t open_windows() const { return open_windows_; }   // not yet closed
  int64_t held_windows() const { return held_windows_; }   // in memory, closed or not
  const RollupStateOptions& options() const { return options_; }

  // The whole state (offsets, watermarks, windows with exact aggregates and dirty flags) as
  // bytes, and back; layout in docs/formats/rollup-checkpoint.md (`version`: of the body's
  // layout, as the checkpoint header says). Decode replaces the state and fails if the
  // checkpoint was made with other resolutions, lateness or partitions.
  void Encode(std::string* out) const;
  Status Decode(std::string_view bytes, uint32_t version = kCheckpointVersion);

  // One partition's share of the state (its offset, newest event time and windows) in the same
  // layout, the other partitions' entries empty; and back, merged into this state, which must
  // hold nothing of that partition. For processors that share partitions through a Kafka group.
  void EncodePartition(int32_t partition, std::string* out) const;
  Status DecodePartition(int32_t partition, std::string_view bytes, uint32_t version = kCheckpointVersion);
  // Forgets everything: offsets, watermarks, windows, counters.
  void Reset() { Clear(); }

 private:
  friend class CheckpointBody;  // checkpoint_body.h
  struct Window {
    int64_t start = 0;
    bool closed = false;
    bool dirty = false;     // something in it to emit
    // fields hold the Merge of the finer windows inside it already evicted; the held ones are
    // merged in at emission. Else (a per-reading resolution, or restored from a version 1
    // checkpoint) fields are updated per reading.
    bool derived = false;
    bool close_pending = false;  // derived: closed since last emitted; emit every field with readings
    bool feeds_ancestor = false;  // per-reading window inside a coarser one also updated per reading
    std::vector<Aggregate> fields;  // by field id; count 0 = absent
  };
  // The window of the first per-reading resolution the sensor's last reading went to, with
  // its aggregates' address, so that the next reading, most likely in it too, reaches them
  // through the Sensor alone instead of a chain of vectors (each step a cache miss with many
  // sensors). Reset whenever that list or the window's fields move.
  struct Hot {
    Window* window = nullptr;
    Aggregate* fields = nullptr;
    int64_t start = 0;
    uint32_t nfields = 0;
  };
  struct Sensor {
    int32_t partition = 0;
    Hot hot;
    std::vector<std::vector<Window>> windows;  // by resolution, sorted by start
  };
  Sensor& SensorFor(uint32_t sensor_id, int32_t partition);
  void Prefetch(uint32_t sensor_id);
  // The window of resolution r starting at start, created (with the coarser windows holding
  // it, if derived from it) if missing.
  Window& WindowFor(Sensor& sensor, size_t r, int64_t start);
  // Inserts an empty window, or finds it (*inserted false).
  Window& InsertWindow(std::vector<Window>& list, size_t r, int64_t start, bool* inserted);
  static Window* FindWindow(std::vector<Window>& list, int64_t start);
  bool HasPerReadingAncestor(Sensor& sensor, size_t r, int64_t start);
  void AddToAncestors(Sensor& sensor, size_t r, int64_t ts, std::span<const NumberField> numbers, uint16_t max_id);
  // The window's aggregates: its fields, or for a derived one the merge computed into full_[depth].
  std::vector<Aggregate>& Full(Sensor& sensor, size_t r, Window& w, size_t depth);
  void PropagateChanges(Sensor& sensor);
  void EmitSensor(uint32_t sensor_id, Sensor& sensor, RollupMessages* out);
  bool EvictSensor(Sensor& sensor);  // true when it holds nothing any more
  // The id of the field name at position in a reading, when it is not the hint's (Add
  // compares with the hint itself), new if never seen.
  uint16_t FieldId(std::string_view name, size_t position);
  uint16_t NewField(std::string_view name);
  // Messages for the aggregates of fields with kToEmit set (cleared).
  void EmitWindow(uint32_t sensor_id, size_t resolution, const Window& w, std::vector<Aggregate>& fields,
                  RollupMessages* out) {
    writer_.Write(sensor_id, log::PartitionFor(options_.partitioner, sensor_id, options_.partitions), options_.resolutions[resolution],
                  w.start, w.closed, fields, field_names_, out);
  }
  void Reject(std::string_view reason, std::string_view detail, std::string_view raw);
  void Clear();
  void CloseUpTo(int64_t watermark_us);

  RollupStateOptions options_;
  std::vector<int> child_;                    // by resolution: the one it is derived from, or -1
  std::vector<std::vector<size_t>> parents_;  // by resolution: those derived from it
  std::vector<size_t> per_reading_;           // resolutions with child_ -1, in list order
  std::vector<size_t> ascending_;             // all, shortest first (finer before coarser)
  std::vector<std::vector<Aggregate>> full_;  // scratch of Full, by depth
  RejectHandler reject_;
  std::vector<int64_t> next_offset_;  // by partition
  std::vector<int64_t> newest_ts_;    // by partition: newest event time read, kNoTime if none
  int64_t newest_ts_all_ = kNoTime;
  int64_t next_close_end_ = std::numeric_limits<int64_t>::max();  // earliest end of an open window

  std::unordered_map<uint32_t, Sensor> sensors_;
  uint32_t last_sensor_id_ = 0;
  Sensor* last_sensor_ = nullptr;
  // sensors_ by sensor_id mod kSensorCache, checked against the id: a reading's sensor in one
  // load, without the hash table's 64-bit division and chain. Entries of erased sensors are
  // cleared.
  static constexpr size_t kSensorCache = 4096;
  struct CachedSensor {
    uint32_t id = 0;
    Sensor* sensor = nullptr;
  };
  std::vector<CachedSensor> sensor_cache_;
  Sensor* FindSensor(uint32_t sensor_id);

  std::deque<std::string> field_names_;  // by id
  std::unordered_map<std::string_view, uint16_t> field_ids_;
  // The field last seen at each position in a reading: most readings of a stream have the
  // same fields in the same order, so a name is compared with one other, not hashed.
  struct FieldHint {
    std::string_view name;  // views field_names_ (a deque: its strings never move)
    uint16_t id = 0;
  };
  std::vector<FieldHint> field_hint_;
  std::vector<uint16_t> ids_;         // scratch: this reading's field ids

  std::unique_ptr<RecordParser> parser_;
  std::vector<NumberField> numbers_;  // scratch for AddRecord
  MessageWriter writer_;

  uint64_t readings_ = 0;
  uint64_t dropped_late_ = 0;
  uint64_t invalid_ = 0;
  int64_t open_windows_ = 0;
  int64_t held_windows_ = 0;
};

}  // namespace mare::rollup
