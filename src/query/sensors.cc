#include "query/sensors.h"

#include <algorithm>

#include "common/json_out.h"
#include "common/time.h"
#include "query/planner.h"

namespace mare::query {

std::vector<SensorInfo> ListSensors(const store::Store& store, bool scan) {
  // The store's figures (its segments' resident sensor summaries and the memtable: no block
  // index is read, however many days it holds); fields by name, the location's left out.
  std::vector<store::SensorFigures> figures = store.Sensors(scan);
  std::vector<store::Field> fields = store.schema().Fields();
  std::vector<SensorInfo> out;
  out.reserve(figures.size());
  for (const store::SensorFigures& f : figures) {
    SensorInfo info;
    info.sensor_id = f.stats.sensor_id;
    info.first_seen_us = f.stats.first_ts;
    info.last_seen_us = f.stats.last_ts;
    info.readings = f.stats.rows;
    info.has_position = f.stats.has_position;
    info.lat = f.stats.lat;
    info.lon = f.stats.lon;
    info.position_us = f.stats.position_ts;
    for (uint32_t id : f.fields) {
      if (id >= fields.size()) continue;
      const auto& field = fields[id];
      if (field.name == store::kLatField || field.name == store::kLonField) continue;
      info.fields.push_back(ColumnName(field));
    }
    std::sort(info.fields.begin(), info.fields.end());
    info.fields.erase(std::unique(info.fields.begin(), info.fields.end()), info.fields.end());
    out.push_back(std::move(info));
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
