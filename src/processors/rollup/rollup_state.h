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
#include "processors/rollup/window.h"
#include "reading/reading.h"

namespace mare::rollup {

constexpr int64_t kNoTime = std::numeric_limits<int64_t>::min();

struct RollupStateOptions {
  std::vector<Resolution> resolutions = {MakeResolution(60'000'000), MakeResolution(3'600'000'000),
                                         MakeResolution(86'400'000'000)};
  int64_t lateness_us = 600'000'000;
  int32_t partitions = 1;  // of the raw topic, and of rollups (the same rule places a sensor)
};

// One message for the rollups topic.
struct RollupMessage {
  int32_t partition = 0;
  int64_t timestamp_us = 0;  // window start
  std::string key;
  std::string value;
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

  // Closes the windows whose end the watermark has reached (cheap when there are none).
  void AdvanceWatermark();

  // Appends to *out one message per aggregate changed since the last Emit (new readings, or
  // its window closed), then forgets windows no reading can reach any more. Returns the count.
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
  // bytes, and back; layout in docs/formats/rollup-checkpoint.md. Decode replaces the state
  // and fails if the checkpoint was made with other resolutions, lateness or partitions.
  void Encode(std::string* out) const { Encode(out, -1); }
  Status Decode(std::string_view bytes) { return Decode(bytes, -1); }

  // One partition's share of the state (its offset, newest event time and windows) in the same
  // layout, the other partitions' entries empty; and back, merged into this state, which must
  // hold nothing of that partition. For processors that share partitions through a Kafka group.
  void EncodePartition(int32_t partition, std::string* out) const { Encode(out, partition); }
  Status DecodePartition(int32_t partition, std::string_view bytes) { return Decode(bytes, partition); }
  // Forgets everything: offsets, watermarks, windows, counters.
  void Reset() { Clear(); }

 private:
  struct Window {
    int64_t start = 0;
    bool closed = false;
    bool dirty = false;
    std::vector<Aggregate> fields;  // by field id; count 0 = absent
  };
  struct Sensor {
    int32_t partition = 0;
    std::vector<std::vector<Window>> windows;  // by resolution, sorted by start
  };
  struct Parser;

  Sensor& SensorFor(uint32_t sensor_id, int32_t partition);
  void Prefetch(uint32_t sensor_id);
  Window& WindowFor(std::vector<Window>& list, int64_t start, int64_t length);
  uint16_t FieldId(std::string_view name, size_t position);
  uint16_t NewField(std::string_view name);
  void EmitWindow(uint32_t sensor_id, size_t resolution, Window& w, std::vector<RollupMessage>* out);
  void Reject(std::string_view reason, std::string_view detail, std::string_view raw);
  void Clear();
  void Encode(std::string* out, int32_t only_partition) const;  // -1: all
  Status Decode(std::string_view bytes, int32_t only_partition);

  RollupStateOptions options_;
  RejectHandler reject_;
  std::vector<int64_t> next_offset_;  // by partition
  std::vector<int64_t> newest_ts_;    // by partition: newest event time read, kNoTime if none
  int64_t newest_ts_all_ = kNoTime;
  int64_t next_close_end_ = std::numeric_limits<int64_t>::max();  // earliest end of an open window

  std::unordered_map<uint32_t, Sensor> sensors_;
  uint32_t last_sensor_id_ = 0;
  Sensor* last_sensor_ = nullptr;

  std::deque<std::string> field_names_;  // by id
  std::vector<std::string> field_json_;        // by id: the name as a JSON string, for messages
  std::unordered_map<std::string_view, uint16_t> field_ids_;
  std::vector<uint16_t> field_hint_;  // id of the field last seen at each position in a reading
  std::vector<uint16_t> ids_;         // scratch: this reading's field ids

  std::unique_ptr<Parser> parser_;
  std::vector<NumberField> numbers_;  // scratch for AddRecord
  std::string scratch_;               // for Emit

  uint64_t readings_ = 0;
  uint64_t dropped_late_ = 0;
  uint64_t invalid_ = 0;
  int64_t open_windows_ = 0;
  int64_t held_windows_ = 0;
};

}  // namespace mare::rollup
