#include "batch/batch_rollup.h"

#include "common/json_writer.h"
#include "common/time.h"

namespace mare::batch {

std::string RollupKey(const BatchRollup& r, const rollup::Resolution& resolution) {
  return std::to_string(r.sensor_id) + "/" + std::string(r.field) + "/" + resolution.name + "/" +
         std::to_string(r.window_start_us);
}

void AppendRollupJson(const BatchRollup& r, const rollup::Resolution& resolution, std::string* out) {
  const rollup::Aggregate& a = r.aggregate;
  *out += "{\"sensor_id\":";
  *out += std::to_string(r.sensor_id);
  *out += ",\"field\":";
  AppendJsonString(out, r.field);
  *out += ",\"resolution\":";
  AppendJsonString(out, resolution.name);
  *out += ",\"window_start\":\"";
  AppendTimestamp(out, r.window_start_us);
  *out += "\",\"window_end\":\"";
  AppendTimestamp(out, r.window_start_us + resolution.length_us);
  *out += "\",\"count\":";
  *out += std::to_string(a.count);
  const std::pair<const char*, double> numbers[] = {{",\"min\":", a.min},   {",\"max\":", a.max},
                                                    {",\"mean\":", a.mean}, {",\"stddev\":", a.stddev()},
                                                    {",\"first\":", a.first}, {",\"last\":", a.last}};
  for (const auto& [name, v] : numbers) {
    *out += name;
    AppendJsonNumber(out, v);
  }
  *out += ",\"revision\":";
  *out += std::to_string(a.count);
  *out += ",\"final\":true,\"source\":\"batch\"}";
}

sinks::RollupMessage ToSinkMessage(const BatchRollup& r, const rollup::Resolution& resolution) {
  const rollup::Aggregate& a = r.aggregate;
  sinks::RollupMessage m;
  m.sensor_id = r.sensor_id;
  m.field = std::string(r.field);
  m.resolution = resolution.name;
  m.window_start_us = r.window_start_us;
  m.count = a.count;
  m.min = a.min;
  m.max = a.max;
  m.mean = a.mean;
  m.stddev = a.stddev();
  m.first = a.first;
  m.last = a.last;
  m.revision = a.count;
  m.final = true;
  m.source = "batch";
  return m;
}

}  // namespace mare::batch
