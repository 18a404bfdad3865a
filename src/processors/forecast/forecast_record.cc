#include "processors/forecast/forecast_record.h"

#include <simdjson.h>

#include <charconv>

#include "common/json_out.h"
#include "common/time.h"

namespace mare::forecast {

namespace {

std::string Timestamp(int64_t hour) { return FormatTimestamp(hour * kMicrosPerHour); }

}  // namespace

bool ParseRollupKey(std::string_view key, RollupKey* out) {
  size_t a = key.find('/');
  size_t c = key.rfind('/');
  if (a == std::string_view::npos || c == a) return false;
  size_t b = key.rfind('/', c - 1);
  if (b == a || b == std::string_view::npos) return false;
  std::string_view sensor = key.substr(0, a), start = key.substr(c + 1);
  if (std::from_chars(sensor.data(), sensor.data() + sensor.size(), out->sensor_id).ptr != sensor.data() + sensor.size()) {
    return false;
  }
  if (std::from_chars(start.data(), start.data() + start.size(), out->window_start_us).ptr != start.data() + start.size()) {
    return false;
  }
  out->field = key.substr(a + 1, b - a - 1);
  out->resolution = key.substr(b + 1, c - b - 1);
  return !out->field.empty();
}

Status ParseRollupValue(std::string_view value, double* mean, bool* final) {
  // One parser per thread, reused (simdjson's way): a parser made per record allocated its
  // buffers for each of the thousands of rollups the processor's thread reads when an hour closes.
  thread_local simdjson::ondemand::parser parser;
  simdjson::padded_string padded(value);
  simdjson::ondemand::document doc;
  if (parser.iterate(padded).get(doc)) return Status::InvalidArgument("rollup value is not JSON");
  simdjson::ondemand::object object;
  if (doc.get_object().get(object)) return Status::InvalidArgument("rollup value is not a JSON object");
  bool has_mean = false, has_final = false;
  for (auto f : object) {
    if (f.error()) return Status::InvalidArgument("rollup value is not valid JSON");
    std::string_view key;
    if (f.unescaped_key().get(key)) return Status::InvalidArgument("rollup value has a bad key");
    if (key == "mean") {
      if (f.value().get_double().get(*mean)) return Status::InvalidArgument("rollup mean is not a number");
      has_mean = true;
    } else if (key == "final") {
      if (f.value().get_bool().get(*final)) return Status::InvalidArgument("rollup final is not a boolean");
      has_final = true;
    }
  }
  if (!has_mean || !has_final) return Status::InvalidArgument("rollup value lacks mean or final");
  return Status::OK();
}

std::string ForecastKey(uint64_t sensor_id, std::string_view field, int64_t origin_hour) {
  std::string key = std::to_string(sensor_id);
  key += '/';
  key += field;
  key += '/';
  key += std::to_string(origin_hour * kMicrosPerHour);
  return key;
}

std::string ForecastValue(uint64_t sensor_id, std::string_view field, const ForecastIssue& issue) {
  JsonOut j;
  j.Open('{');
  j.Key("sensor_id").Int(static_cast<int64_t>(sensor_id));
  j.Key("field").Str(field);
  j.Key("issued_at").Str(Timestamp(issue.origin));
  j.Key("day_ahead").Bool(issue.day_ahead);
  j.Key("model").Str(issue.model);
  j.Key("hours").Open('[');
  for (size_t i = 0; i < issue.mean.size(); ++i) {
    j.Open('{');
    j.Key("target_hour").Str(Timestamp(issue.origin + static_cast<int64_t>(i)));
    j.Key("value").Num(issue.mean[i]);
    j.Key("lower").Num(issue.lower[i]);
    j.Key("upper").Num(issue.upper[i]);
    j.Close('}');
  }
  j.Close(']');
  j.Close('}');
  return j.Take();
}

}  // namespace mare::forecast
