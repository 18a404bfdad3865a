#include "feeds/reading_json.h"

#include <fmt/format.h>

#include <cmath>
#include <iterator>

#include "common/json_writer.h"
#include "reading/timestamp.h"

namespace mare::feeds {

namespace {

void AppendKey(std::string_view name, std::string* out) {
  out->append(", \"");
  out->append(name);  // field names are [a-z_][a-z0-9_]*: nothing to escape
  out->append("\": ");
}

}  // namespace

void AppendReadingJson(const Reading& reading, std::string* out) {
  char ts[kReadingTimeLength];
  FormatReadingTime(reading.time_micros, ts);
  out->append("{\"timestamp\": \"");
  out->append(ts, kReadingTimeLength);
  out->push_back('"');
  auto it = std::back_inserter(*out);
  for (const NumericField& f : reading.numbers) {
    if (!std::isfinite(f.value)) continue;
    AppendKey(f.name, out);
    fmt::format_to(it, "{}", f.value);
  }
  for (const TextField& f : reading.texts) {
    AppendKey(f.name, out);
    AppendJsonString(out, f.value);
  }
  fmt::format_to(it, ", \"sensor_id\": {}", reading.sensor_id);
  if (reading.location && std::isfinite(reading.location->lat) && std::isfinite(reading.location->lon)) {
    fmt::format_to(it, ", \"location\": {{\"lon\": {}, \"lat\": {}}}", reading.location->lon, reading.location->lat);
  }
  out->append("}\n");
}

double RoundTo(double value, int decimals) {
  static constexpr double kScale[] = {1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9};
  double scale = decimals >= 0 && decimals <= 9 ? kScale[decimals] : std::pow(10.0, decimals);
  return std::round(value * scale) / scale;
}

}  // namespace mare::feeds
