// One reading as the feeds build it, and its wire form: one JSON object on one line (NDJSON),
// the shape mare ingests:
//
//   {"timestamp": "2024-01-21 10:06:04.095931", "temperature": 20.9, "status": "ok",
//    "sensor_id": 1, "location": {"lon": 3.185785, "lat": 42.488629}}
//
// Numbers are written shortest round-trip (fmt "{}"): whatever precision the value carries is
// kept, nothing is invented. A field without a value is left out — never null, never a code.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace mare::feeds {

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

// Appends the reading's JSON object and a '\n'.
void AppendReadingJson(const Reading& reading, std::string* out);

// True for names mare accepts as fields: [a-z_][a-z0-9_]*.
bool IsFieldName(std::string_view name);
// Makes a field name from a column header: lower case, runs of other characters become one
// '_', a leading digit gets a '_' in front ("Air Temp (C)" -> "air_temp_c"); cut to
// kMaxFieldNameBytes.
std::string ToFieldName(std::string_view header);

// Rounds to `decimals` places, for values whose sensor precision is known.
double RoundTo(double value, int decimals);

}  // namespace mare::feeds
