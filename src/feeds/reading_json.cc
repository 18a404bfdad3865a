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

void Reading::Clear() {
  time_micros = 0;
  sensor_id = 0;
  numbers.clear();
  texts.clear();
  location.reset();
}

const double* Reading::Number(std::string_view name) const {
  for (const NumericField& f : numbers) {
    if (f.name == name) return &f.value;
  }
  return nullptr;
}

const std::string* Reading::Text(std::string_view name) const {
  for (const TextField& f : texts) {
    if (f.name == name) return &f.value;
  }
  return nullptr;
}

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

bool IsFieldName(std::string_view name) {
  if (name.empty()) return false;
  for (size_t i = 0; i < name.size(); ++i) {
    char c = name[i];
    bool ok = (c >= 'a' && c <= 'z') || c == '_' || (i > 0 && c >= '0' && c <= '9');
    if (!ok) return false;
  }
  return true;
}

std::string ToFieldName(std::string_view header) {
  std::string name;
  bool pending_underscore = false;
  for (char c : header) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    bool word = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
    if (!word) {
      pending_underscore = !name.empty();
      continue;
    }
    if (pending_underscore) name.push_back('_');
    pending_underscore = false;
    name.push_back(c);
  }
  if (name.empty() || (name[0] >= '0' && name[0] <= '9')) name.insert(name.begin(), '_');
  if (name.size() > kMaxFieldNameBytes) name.resize(kMaxFieldNameBytes);
  return name;
}

double RoundTo(double value, int decimals) {
  static constexpr double kScale[] = {1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9};
  double scale = decimals >= 0 && decimals <= 9 ? kScale[decimals] : std::pow(10.0, decimals);
  return std::round(value * scale) / scale;
}

}  // namespace mare::feeds
