// Store::Sensors: the sensor list's figures, from the segments' sensor summaries and the memtable.
#include <algorithm>
#include <unordered_map>

#include <spdlog/spdlog.h>

#include "store/store.h"

namespace mare::store {
namespace {

// A sensor's figures as they add up, its fields as bits over store field ids.
class Totals {
 public:
  explicit Totals(size_t fields) : words_((fields + 63) / 64) {}

  SensorStats& At(uint32_t sensor) {
    auto [it, added] = slot_.try_emplace(sensor, static_cast<uint32_t>(stats_.size()));
    if (added) {
      stats_.emplace_back().sensor_id = sensor;
      bits_.resize(bits_.size() + words_, 0);
    }
    current_ = it->second;
    return stats_[current_];
  }
  // A field of the sensor last given to At.
  void Field(uint32_t field) {
    if (field / 64 >= words_) return;  // interned after the snapshot's schema was taken: not listed then either
    bits_[static_cast<size_t>(current_) * words_ + field / 64] |= uint64_t{1} << (field % 64);
  }

  std::vector<SensorFigures> Take() {
    std::vector<SensorFigures> out(stats_.size());
    for (size_t i = 0; i < stats_.size(); ++i) {
      out[i].stats = stats_[i];
      for (size_t w = 0; w < words_; ++w) {
        for (uint64_t b = bits_[i * words_ + w]; b != 0; b &= b - 1) {
          out[i].fields.push_back(static_cast<uint32_t>(w * 64 + static_cast<size_t>(__builtin_ctzll(b))));
        }
      }
    }
    std::sort(out.begin(), out.end(), [](const SensorFigures& a, const SensorFigures& b) { return a.stats.sensor_id < b.stats.sensor_id; });
    return out;
  }

 private:
  size_t words_;
  std::unordered_map<uint32_t, uint32_t> slot_;
  std::vector<SensorStats> stats_;
  std::vector<uint64_t> bits_;
  uint32_t current_ = 0;
};

}  // namespace

std::vector<SensorFigures> Store::Sensors(bool scan) const {
  // Lazy: a segment read by its index (scan, or one still holding hours past the retention) is
  // pinned one at a time, so that the indexes of all of them are never in memory at once.
  auto snap = GetSnapshot({.lazy = true});
  const std::optional<uint32_t> lat = lat_field_, lon = lon_field_;
  Totals totals(snap->fields.size());
  std::vector<std::shared_ptr<const Segment>> views;
  for (const auto& c : snap->lazy) {
    const SensorSummary* summary = c.segment->sensors();
    if (!scan && summary != nullptr && c.segment->first_hour() >= c.first_hour && c.segment->last_hour() <= c.last_hour) {
      const auto& overrides = c.sensor_overrides;
      auto o = overrides.begin();
      for (size_t i = 0; i < summary->size(); ++i) {
        const SensorStats& e = summary->entry(i);
        // Both ordered by sensor id: an override replaces the entry of its sensor.
        while (o != overrides.end() && o->stats.sensor_id < e.sensor_id) ++o;
        if (o != overrides.end() && o->stats.sensor_id == e.sensor_id) {
          if (o->stats.rows == 0) continue;
          totals.At(e.sensor_id).Add(o->stats);
          for (uint32_t f : o->fields) totals.Field(f);
          continue;
        }
        totals.At(e.sensor_id).Add(e);
        summary->ForEachField(i, [&](uint32_t f) { totals.Field(f); });
      }
      continue;
    }
    views.clear();
    if (Status s = PinVisible(c, &views); !s.ok()) {
      spdlog::error("sensor list: a store segment could not be read, its sensors are left out: {}", s.ToString());
      continue;
    }
    for (const auto& seg : views) {
      for (const BlockMeta& m : seg->blocks()) {
        totals.At(m.sensor_id).AddBlock(m, lat, lon);
        for (const ColumnMeta& col : m.columns) totals.Field(col.field);
      }
    }
  }
  for (const RowBuffer& rows : snap->memtable) {
    if (rows.size() == 0) continue;
    SensorStats& t = totals.At(rows.sensor_id());
    t.AddRows(rows.ts().front(), rows.ts().back(), static_cast<int64_t>(rows.size()));
    const auto& cols = rows.columns();
    for (uint32_t f = 0; f < cols.size(); ++f) {
      if (cols[f].used) totals.Field(f);
    }
    if (*lat < cols.size() && *lon < cols.size() && cols[*lat].used) {
      for (size_t r = rows.size(); r-- > 0;) {
        if (cols[*lat].present[r] && cols[*lon].present[r]) {
          t.SetPosition(cols[*lat].numbers[r], cols[*lon].numbers[r], rows.ts()[r]);
          break;
        }
      }
    }
  }
  return totals.Take();
}

}  // namespace mare::store
