// SensorSummary: each sensor's first and last time, reading count, fields and last position over
// a run of blocks, from their index entries: what the sensor list needs, kept resident per segment.
#pragma once

// Why: the sensor list (query/sensors.cc, asked every second by the dashboard) covers every
// segment of the store, whose block indexes are not resident (index_cache.h); reading them back
// cost 0.2 CPU s a day of 10,000 sensors. A segment's summary is computed from its index when
// that is in memory anyway (open, write, retention's view) and stays with the segment.
//
// Memory: one 56-byte entry per sensor of the segment plus ceil(fields of the segment / 64)
// words of field bits per entry (64 bytes for a segment of up to 64 fields): ~640 KB a day's
// segment at 10,000 sensors, against ~130 MB of its block index.

#include <cstdint>
#include <functional>
#include <limits>
#include <optional>
#include <span>
#include <unordered_map>
#include <vector>

#include "store/block.h"

namespace mare::store {

// One sensor's readings over some blocks. Combining two (Add) gives the figures over both.
struct SensorStats {
  uint32_t sensor_id = 0;
  bool has_position = false;
  int64_t first_ts = std::numeric_limits<int64_t>::max();  // of its oldest and newest readings
  int64_t last_ts = std::numeric_limits<int64_t>::min();
  int64_t rows = 0;
  // The location at the newest time where a block's last latitude and longitude agree (the
  // sensor list's rule: a tie goes to the blocks added later).
  int64_t position_ts = 0;
  double lat = 0, lon = 0;

  void AddBlock(const BlockMeta& m, std::optional<uint32_t> lat_field, std::optional<uint32_t> lon_field);
  void AddRows(int64_t first, int64_t last, int64_t count);
  void SetPosition(double lat, double lon, int64_t ts);  // kept unless older than the one held
  void Add(const SensorStats& other);                     // other's figures, as if added after
};

class SensorSummary {
 public:
  class Builder;
  // The visible blocks' summary (blocks in their file's order; skip(i): block i is left out).
  static SensorSummary Build(std::span<const BlockMeta> blocks, std::optional<uint32_t> lat_field,
                             std::optional<uint32_t> lon_field, const std::function<bool(size_t)>& skip = nullptr);

  size_t size() const { return entries_.size(); }  // sensors, ordered by id
  const SensorStats& entry(size_t i) const { return entries_[i]; }
  // Calls f(field id) for each field entry i's blocks have a column of, in id order.
  template <typename F>
  void ForEachField(size_t i, F&& f) const {
    for (size_t w = 0; w < words_; ++w) {
      for (uint64_t bits = bits_[i * words_ + w]; bits != 0; bits &= bits - 1) f(fields_[w * 64 + static_cast<size_t>(__builtin_ctzll(bits))]);
    }
  }
  size_t MemoryBytes() const;

 private:
  std::vector<SensorStats> entries_;
  std::vector<uint32_t> fields_;  // the store field ids its blocks have, sorted
  size_t words_ = 0;              // bits per entry, in words of 64
  std::vector<uint64_t> bits_;    // entry i's fields: bits_[i * words_ ... + words_)
};

// The same summary from blocks given one at a time (in their file's order), none of them kept:
// a segment opened without its index (Segment::OpenUnpinned) reads its entries this way.
class SensorSummary::Builder {
 public:
  Builder(std::optional<uint32_t> lat_field, std::optional<uint32_t> lon_field) : lat_field_(lat_field), lon_field_(lon_field) {}
  void Add(const BlockMeta& m);
  SensorSummary Finish();

 private:
  std::optional<uint32_t> lat_field_, lon_field_;
  // Blocks come by hour, then sensor: each hour lists the sensors in the same order, so the
  // entry after the last one used is tried before the map (a day of 10,000 sensors: 240,000 blocks).
  std::unordered_map<uint32_t, uint32_t> slot_;
  uint32_t next_ = 0;
  std::vector<SensorStats> entries_;  // in order of first appearance
  size_t stride_ = 0;                 // words of field bits per entry, by store field id
  std::vector<uint64_t> bits_;
};

// A sensor's figures with its fields: the store's answer (Store::Sensors), and, for a segment
// some of whose blocks are hidden (a later reading of the same sensor and time replaced their
// rows: store.h), its figures over the visible ones in place of its entry in the segment's
// summary (stats.rows == 0: none of its blocks there is visible any more).
struct SensorFigures {
  SensorStats stats;
  std::vector<uint32_t> fields;  // field ids, sorted
};

// The figures of some sensors (sorted, unique) over a segment view's visible blocks (blocks:
// the view's, the first at file index first_file_index; hidden: sorted file indexes left out),
// one per sensor in their order (rows 0: none of its blocks remains). Found per hour by binary
// search on (hour, sensor) when that is cheaper than one walk over the view's blocks.
std::vector<SensorFigures> SummarizeSensors(std::span<const BlockMeta> blocks, size_t first_file_index,
                                            const std::vector<uint32_t>& sensors, const std::vector<uint32_t>* hidden,
                                            std::optional<uint32_t> lat_field, std::optional<uint32_t> lon_field);

}  // namespace mare::store
