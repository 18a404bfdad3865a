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

#include "archive/reading.h"

namespace mare::feeds {

using archive::kMaxFieldNameBytes;
using archive::kMaxSensorId;
using archive::Location;
using archive::NumericField;
using archive::Reading;
using archive::TextField;
using archive::IsFieldName;
using archive::ToFieldName;

// Appends the reading's JSON object and a '\n'.
void AppendReadingJson(const Reading& reading, std::string* out);

// Rounds to `decimals` places, for values whose sensor precision is known.
double RoundTo(double value, int decimals);

}  // namespace mare::feeds
