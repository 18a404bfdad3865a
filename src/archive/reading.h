// The reading an archive row becomes: event time, sensor, numeric and text fields, location,
// owning its text values; feeds send it as JSON (feeds/reading_json.h), `mare import` stores it.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace mare::archive {

struct NumericField {
  std::string_view name;  // must outlive the reading (a literal, or a name the reader owns)
  double value;           // non-finite values are left out when written
};

struct TextField {
  std::string_view name;
  std::string value;
};

// mare keys readings by a 32-bit sensor id.
constexpr uint64_t kMaxSensorId = 4'294'967'295;
// Longest field name mare accepts.
constexpr size_t kMaxFieldNameBytes = 64;

struct Location {
  double lat;
  double lon;
};

// Reused across readings on hot paths: Clear() keeps the vectors' capacity.
struct Reading {
  int64_t time_micros = 0;  // UTC microseconds since the epoch
  uint64_t sensor_id = 0;
  std::vector<NumericField> numbers;
  std::vector<TextField> texts;
  std::optional<Location> location;

  void Clear();
  // The field's value, or nullptr when the reading lacks it.
  const double* Number(std::string_view name) const;
  const std::string* Text(std::string_view name) const;
};

// True for names mare accepts as fields: [a-z_][a-z0-9_]*.
bool IsFieldName(std::string_view name);
// Makes a field name from a column header: lower case, runs of other characters become one
// '_', a leading digit gets a '_' in front ("Air Temp (C)" -> "air_temp_c"); cut to
// kMaxFieldNameBytes.
std::string ToFieldName(std::string_view header);

}  // namespace mare::archive
