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
  Builder builder(lat_field, lon_field);
  for (size_t i = 0; i < blocks.size(); ++i) {
    if (!skip || !skip(i)) builder.Add(blocks[i]);
  }
  return builder.Finish();
}

void SensorSummary::Builder::Add(const BlockMeta& m) {
  uint32_t at = next_;
  if (at >= entries_.size() || entries_[at].sensor_id != m.sensor_id) {
    auto [it, added] = slot_.try_emplace(m.sensor_id, static_cast<uint32_t>(entries_.size()));
    if (added) {
      entries_.emplace_back().sensor_id = m.sensor_id;
      bits_.resize(bits_.size() + stride_, 0);
    }
    at = it->second;
  }
  next_ = at + 1;
  entries_[at].AddBlock(m, lat_field_, lon_field_);
  for (const ColumnMeta& c : m.columns) {
    if (c.field / 64 >= stride_) {
      // A field id past the words held: every entry's bits spread to the wider stride (rare:
      // the first blocks name the fields).
      size_t wider = c.field / 64 + 1;
      std::vector<uint64_t> spread(entries_.size() * wider, 0);
      for (size_t e = 0; e < entries_.size(); ++e) {
        for (size_t w = 0; w < stride_; ++w) spread[e * wider + w] = bits_[e * stride_ + w];
      }
      bits_ = std::move(spread);
      stride_ = wider;
    }
    bits_[static_cast<size_t>(at) * stride_ + c.field / 64] |= uint64_t{1} << (c.field % 64);
  }
}

SensorSummary SensorSummary::Builder::Finish() {
  SensorSummary out;
  std::vector<uint64_t> seen(stride_, 0);
  for (size_t e = 0; e < entries_.size(); ++e) {
    for (size_t w = 0; w < stride_; ++w) seen[w] |= bits_[e * stride_ + w];
  }
  for (size_t w = 0; w < stride_; ++w) {
    for (uint64_t b = seen[w]; b != 0; b &= b - 1) out.fields_.push_back(static_cast<uint32_t>(w * 64 + static_cast<size_t>(__builtin_ctzll(b))));
  }
  out.words_ = (out.fields_.size() + 63) / 64;
  // By sensor id, for a reader that looks one up; each entry's bits by field id become bits by
  // the field's place among the summary's fields.
  std::vector<uint32_t> order(entries_.size());
  for (uint32_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(), [&](uint32_t a, uint32_t b) { return entries_[a].sensor_id < entries_[b].sensor_id; });
  out.entries_.reserve(entries_.size());
  out.bits_.assign(entries_.size() * out.words_, 0);
  for (size_t k = 0; k < order.size(); ++k) {
    out.entries_.push_back(entries_[order[k]]);
    const uint64_t* from = bits_.data() + static_cast<size_t>(order[k]) * stride_;
    uint64_t* to = out.bits_.data() + k * out.words_;
    for (uint32_t b = 0; b < out.fields_.size(); ++b) {
      uint32_t f = out.fields_[b];
      if ((from[f / 64] >> (f % 64)) & 1) to[b / 64] |= uint64_t{1} << (b % 64);
    }
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
