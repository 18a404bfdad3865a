#include "store/sensor_summary.h"

#include <algorithm>
#include <unordered_map>

namespace mare::store {

void SensorStats::AddRows(int64_t first, int64_t last, int64_t count) {
  first_ts = std::min(first_ts, first);
  last_ts = std::max(last_ts, last);
  rows += count;
}

void SensorStats::SetPosition(double new_lat, double new_lon, int64_t ts) {
  if (has_position && ts < position_ts) return;
  has_position = true;
  lat = new_lat;
  lon = new_lon;
  position_ts = ts;
}

void SensorStats::AddBlock(const BlockMeta& m, std::optional<uint32_t> lat_field, std::optional<uint32_t> lon_field) {
  sensor_id = m.sensor_id;
  AddRows(m.min_ts, m.max_ts, m.rows);
  const ColumnMeta* la = lat_field ? m.Column(*lat_field) : nullptr;
  const ColumnMeta* lo = lon_field ? m.Column(*lon_field) : nullptr;
  if (la != nullptr && lo != nullptr && la->stats.count > 0 && la->stats.last_ts == lo->stats.last_ts) {
    SetPosition(la->stats.last, lo->stats.last, la->stats.last_ts);
  }
}

void SensorStats::Add(const SensorStats& other) {
  sensor_id = other.sensor_id;
  if (other.rows > 0) AddRows(other.first_ts, other.last_ts, other.rows);
  if (other.has_position) SetPosition(other.lat, other.lon, other.position_ts);
}

SensorSummary SensorSummary::Build(std::span<const BlockMeta> blocks, std::optional<uint32_t> lat_field,
                                   std::optional<uint32_t> lon_field, const std::function<bool(size_t)>& skip) {
  SensorSummary out;
  std::vector<uint8_t> seen;  // by field id
  for (size_t i = 0; i < blocks.size(); ++i) {
    if (skip && skip(i)) continue;
    for (const ColumnMeta& c : blocks[i].columns) {
      if (c.field >= seen.size()) seen.resize(c.field + 1, 0);
      seen[c.field] = 1;
    }
  }
  for (uint32_t f = 0; f < seen.size(); ++f) {
    if (seen[f]) out.fields_.push_back(f);
  }
  out.words_ = (out.fields_.size() + 63) / 64;
  // Field id -> its bit (ids are the store's, dense: a schema's fields).
  std::vector<uint32_t> bit_of(out.fields_.empty() ? 0 : out.fields_.back() + 1, 0);
  for (uint32_t b = 0; b < out.fields_.size(); ++b) bit_of[out.fields_[b]] = b;
  // Blocks come by hour, then sensor: each hour lists the sensors in the same order, so the
  // entry after the last one used is tried before the map (opening a day of 10,000 sensors
  // made 240,000 lookups).
  std::unordered_map<uint32_t, uint32_t> slot;
  std::vector<SensorStats> entries;
  std::vector<uint64_t> bits;
  uint32_t next = 0;
  for (size_t i = 0; i < blocks.size(); ++i) {
    if (skip && skip(i)) continue;
    const BlockMeta& m = blocks[i];
    uint32_t at = next;
    if (at >= entries.size() || entries[at].sensor_id != m.sensor_id) {
      auto [it, added] = slot.try_emplace(m.sensor_id, static_cast<uint32_t>(entries.size()));
      if (added) {
        entries.emplace_back().sensor_id = m.sensor_id;
        bits.resize(bits.size() + out.words_, 0);
      }
      at = it->second;
    }
    next = at + 1;
    entries[at].AddBlock(m, lat_field, lon_field);
    uint64_t* word = bits.data() + static_cast<size_t>(at) * out.words_;
    for (const ColumnMeta& c : m.columns) {
      uint32_t f = bit_of[c.field];
      word[f / 64] |= uint64_t{1} << (f % 64);
    }
  }
  // By sensor id, for a reader that looks one up.
  std::vector<uint32_t> order(entries.size());
  for (uint32_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(), [&](uint32_t a, uint32_t b) { return entries[a].sensor_id < entries[b].sensor_id; });
  out.entries_.reserve(entries.size());
  out.bits_.reserve(bits.size());
  for (uint32_t i : order) {
    out.entries_.push_back(entries[i]);
    out.bits_.insert(out.bits_.end(), bits.begin() + static_cast<std::ptrdiff_t>(i * out.words_),
                     bits.begin() + static_cast<std::ptrdiff_t>((i + 1) * out.words_));
  }
  return out;
}

size_t SensorSummary::MemoryBytes() const {
  return sizeof(SensorSummary) + entries_.capacity() * sizeof(SensorStats) + fields_.capacity() * sizeof(uint32_t) +
         bits_.capacity() * sizeof(uint64_t);
}

std::vector<SensorFigures> SummarizeSensors(std::span<const BlockMeta> blocks, size_t first_file_index,
                                            const std::vector<uint32_t>& sensors, const std::vector<uint32_t>* hidden,
                                            std::optional<uint32_t> lat_field, std::optional<uint32_t> lon_field) {
  std::vector<SensorFigures> out(sensors.size());
  for (size_t k = 0; k < sensors.size(); ++k) out[k].stats.sensor_id = sensors[k];
  if (blocks.empty() || sensors.empty()) return out;
  auto add = [&](SensorFigures& f, size_t i) {
    uint32_t file_index = static_cast<uint32_t>(first_file_index + i);
    if (hidden != nullptr && std::binary_search(hidden->begin(), hidden->end(), file_index)) return;
    f.stats.AddBlock(blocks[i], lat_field, lon_field);
    for (const ColumnMeta& c : blocks[i].columns) f.fields.push_back(c.field);
  };
  // Blocks are in (hour, sensor, min_ts) order: per hour, a sensor's blocks are one run.
  const uint64_t hours = static_cast<uint64_t>((HourOf(blocks.back().min_ts) - HourOf(blocks.front().min_ts)) / kHourMicros) + 1;
  if (sensors.size() * hours * 20 < blocks.size()) {
    for (size_t k = 0; k < sensors.size(); ++k) {
      const uint32_t sensor = sensors[k];
      auto it = blocks.begin();
      while (it != blocks.end()) {
        const int64_t hour = HourOf(it->min_ts);
        auto run = std::lower_bound(it, blocks.end(), sensor, [&](const BlockMeta& m, uint32_t s) {
          int64_t h = HourOf(m.min_ts);
          return h != hour ? h < hour : m.sensor_id < s;
        });
        for (; run != blocks.end() && HourOf(run->min_ts) == hour && run->sensor_id == sensor; ++run) {
          add(out[k], static_cast<size_t>(run - blocks.begin()));
        }
        it = std::partition_point(run, blocks.end(), [&](const BlockMeta& m) { return HourOf(m.min_ts) == hour; });
      }
    }
  } else {
    // Many sensors or many hours (a packed segment of sparse years): one walk for all of them.
    for (size_t i = 0; i < blocks.size(); ++i) {
      auto k = std::lower_bound(sensors.begin(), sensors.end(), blocks[i].sensor_id);
      if (k != sensors.end() && *k == blocks[i].sensor_id) add(out[static_cast<size_t>(k - sensors.begin())], i);
    }
  }
  for (SensorFigures& f : out) {
    std::sort(f.fields.begin(), f.fields.end());
    f.fields.erase(std::unique(f.fields.begin(), f.fields.end()), f.fields.end());
  }
  return out;
}

}  // namespace mare::store
