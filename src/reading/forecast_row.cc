#include "reading/forecast_row.h"

#include <simdjson.h>

#include "reading/timestamp.h"

namespace mare {
namespace {

Status BadForecast(const std::string& what) { return Status::InvalidArgument("forecasts record: " + what); }

Status ForecastTime(simdjson::ondemand::value v, int64_t* us) {
  std::string_view text;
  if (v.get_string().get(text)) return BadForecast("a time is not a string");
  std::string why;
  if (!ParseTimestampText(text, us, &why)) return BadForecast("bad time " + std::string(text) + ": " + why);
  return Status::OK();
}

// A number, or null (false).
Status ForecastNumber(simdjson::ondemand::value v, double* out, bool* present) {
  bool null = false;
  if (v.is_null().get(null)) return BadForecast("a value is neither a number nor null");
  *present = !null;
  if (null) return Status::OK();
  if (v.get_double().get(*out)) return BadForecast("a value is neither a number nor null");
  return Status::OK();
}

}  // namespace

Status ReadForecastRows(std::string_view json, std::vector<ForecastRow>* out) {
  out->clear();
  simdjson::ondemand::parser parser;
  simdjson::padded_string padded(json);
  simdjson::ondemand::document doc;
  simdjson::ondemand::object object;
  if (parser.iterate(padded).get(doc) || doc.get_object().get(object)) return BadForecast("not a JSON object");
  ForecastRow common;
  bool has_hours = false;
  for (auto f : object) {
    std::string_view key;
    if (f.error() || f.unescaped_key().get(key)) return BadForecast("not valid JSON");
    simdjson::ondemand::value v = f.value();
    if (key == "sensor_id") {
      uint64_t id;
      if (v.get_uint64().get(id) || id > UINT32_MAX) return BadForecast("sensor_id");
      common.sensor_id = static_cast<uint32_t>(id);
    } else if (key == "field" || key == "model") {
      std::string_view s;
      if (v.get_string().get(s)) return BadForecast(std::string(key));
      (key == "field" ? common.field : common.model) = std::string(s);
    } else if (key == "issued_at") {
      MARE_RETURN_IF_ERROR(ForecastTime(v, &common.issued_at_us));
    } else if (key == "day_ahead") {
      if (v.get_bool().get(common.day_ahead)) return BadForecast("day_ahead");
    } else if (key == "hours") {
      // Every other key comes before `hours` (forecasts.md's order): the rows copy them.
      simdjson::ondemand::array hours;
      if (v.get_array().get(hours)) return BadForecast("hours is not an array");
      for (auto h : hours) {
        simdjson::ondemand::object hour;
        if (h.get_object().get(hour)) return BadForecast("an hour is not an object");
        ForecastRow row = common;
        for (auto g : hour) {
          std::string_view name;
          if (g.error() || g.unescaped_key().get(name)) return BadForecast("not valid JSON");
          simdjson::ondemand::value x = g.value();
          if (name == "target_hour") MARE_RETURN_IF_ERROR(ForecastTime(x, &row.target_hour_us));
          else if (name == "value") MARE_RETURN_IF_ERROR(ForecastNumber(x, &row.value, &row.has_value));
          else if (name == "lower") MARE_RETURN_IF_ERROR(ForecastNumber(x, &row.lower, &row.has_lower));
          else if (name == "upper") MARE_RETURN_IF_ERROR(ForecastNumber(x, &row.upper, &row.has_upper));
        }
        out->push_back(std::move(row));
      }
      has_hours = true;
    }
  }
  if (!has_hours || common.field.empty() || common.issued_at_us == 0) return BadForecast("lacks field, issued_at or hours");
  return Status::OK();
}

}  // namespace mare
