#include "query/sensors.h"

#include <algorithm>
#include <map>
#include <set>

#include <spdlog/spdlog.h>

#include "common/json_out.h"
#include "common/time.h"
#include "query/planner.h"

namespace mare::query {
namespace {

struct Acc {
  SensorInfo info;
  std::set<uint32_t> fields;
  bool seen = false;
};

void See(Acc& a, uint32_t sensor, int64_t min_ts, int64_t max_ts, int64_t rows) {
  if (!a.seen || min_ts < a.info.first_seen_us) a.info.first_seen_us = min_ts;
  if (!a.seen || max_ts > a.info.last_seen_us) a.info.last_seen_us = max_ts;
  a.info.sensor_id = sensor;
  a.info.readings += rows;
  a.seen = true;
}

void SetPosition(Acc& a, double lat, double lon, int64_t ts) {
  if (a.info.has_position && ts < a.info.position_us) return;
  a.info.has_position = true;
  a.info.lat = lat;
  a.info.lon = lon;
  a.info.position_us = ts;
}

}  // namespace

std::vector<SensorInfo> ListSensors(const store::Store& store) {
  // Every segment of the store: pinned one at a time, so that their block indexes are never all
  // in memory at once (a year at 10,000 sensors holds about 87 GB of them).
  auto snap = store.GetSnapshot({.lazy = true});
  auto lat_id = store.schema().Find(store::kLatField, store::FieldType::kNumber);
  auto lon_id = store.schema().Find(store::kLonField, store::FieldType::kNumber);
  std::map<uint32_t, Acc> by_sensor;
  std::vector<std::shared_ptr<const store::Segment>> views;
  for (const auto& lazy : snap->lazy) {
    views.clear();
    if (Status s = store::Store::PinVisible(lazy, &views); !s.ok()) {
      spdlog::error("sensor list: a store segment could not be read, its sensors are left out: {}", s.ToString());
      continue;
    }
    for (const auto& seg : views) {
      for (const auto& m : seg->blocks()) {
        Acc& a = by_sensor[m.sensor_id];
        See(a, m.sensor_id, m.min_ts, m.max_ts, m.rows);
        for (const auto& c : m.columns) a.fields.insert(c.field);
        const store::ColumnMeta* lat = lat_id ? m.Column(*lat_id) : nullptr;
        const store::ColumnMeta* lon = lon_id ? m.Column(*lon_id) : nullptr;
        if (lat != nullptr && lon != nullptr && lat->stats.count > 0 && lat->stats.last_ts == lon->stats.last_ts) {
          SetPosition(a, lat->stats.last, lon->stats.last, lat->stats.last_ts);
        }
      }
    }
  }
  for (const auto& rows : snap->memtable) {
    if (rows.size() == 0) continue;
    Acc& a = by_sensor[rows.sensor_id()];
    See(a, rows.sensor_id(), rows.ts().front(), rows.ts().back(), static_cast<int64_t>(rows.size()));
    const auto& cols = rows.columns();
    for (uint32_t f = 0; f < cols.size(); ++f) {
      if (cols[f].used) a.fields.insert(f);
    }
    if (lat_id && lon_id && *lat_id < cols.size() && *lon_id < cols.size() && cols[*lat_id].used) {
      for (size_t r = rows.size(); r-- > 0;) {
        if (cols[*lat_id].present[r] && cols[*lon_id].present[r]) {
          SetPosition(a, cols[*lat_id].numbers[r], cols[*lon_id].numbers[r], rows.ts()[r]);
          break;
        }
      }
    }
  }
  std::vector<SensorInfo> out;
  for (auto& [id, a] : by_sensor) {
    for (uint32_t f : a.fields) {
      if (f >= snap->fields.size()) continue;
      const auto& field = snap->fields[f];
      if (field.name == store::kLatField || field.name == store::kLonField) continue;
      a.info.fields.push_back(ColumnName(field));
    }
    std::sort(a.info.fields.begin(), a.info.fields.end());
    a.info.fields.erase(std::unique(a.info.fields.begin(), a.info.fields.end()), a.info.fields.end());
    out.push_back(std::move(a.info));
  }
  return out;
}

std::string SensorsJson(const std::vector<SensorInfo>& sensors) {
  JsonOut j;
  j.Open('{').Key("sensors").Open('[');
  for (const SensorInfo& s : sensors) {
    j.Open('{').Key("sensor_id").Int(s.sensor_id);
    j.Key("first_seen").Str(FormatTimestamp(s.first_seen_us)).Key("last_seen").Str(FormatTimestamp(s.last_seen_us));
    j.Key("readings").Int(s.readings).Key("fields").Open('[');
    for (const std::string& field : s.fields) j.Str(field);
    j.Close(']').Key("position");
    if (s.has_position) {
      j.Open('{').Key("lat").Num(s.lat).Key("lon").Num(s.lon).Key("ts").Str(FormatTimestamp(s.position_us)).Close('}');
    } else {
      j.Null();
    }
    j.Close('}');
  }
  j.Close(']').Key("count").Int(static_cast<int64_t>(sensors.size())).Close('}');
  return j.Take();
}

}  // namespace mare::query
