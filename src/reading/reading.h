// A reading: one sensor's measurements at one instant, as buoys and stations send them.
//
//   {"timestamp": "2024-01-21 10:06:04.095931", "sensor_id": 1, "temperature": 20.9,
//    "humidity": 59.22, "pressure": 1001.87, "location": {"lon": 3.185785, "lat": 42.488629},
//    "status": "ok"}
//
// The rules for what is accepted are in docs/formats/reading.md. A Reading handed out by the
// parser holds views into the parsed buffer and the parser: valid only during the callback.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

#include "common/number_field.h"

namespace mare {

struct TextField {
  std::string_view name;
  std::string_view value;  // unescaped UTF-8
};

struct Reading {
  int64_t timestamp_us = 0;  // UTC microseconds since the epoch
  uint32_t sensor_id = 0;
  bool has_location = false;
  double lat = 0;
  double lon = 0;
  std::vector<NumberField> numbers;
  std::vector<TextField> texts;
  std::string_view raw;  // the reading's JSON text, exactly as received

  void Clear() {
    has_location = false;
    numbers.clear();
    texts.clear();
  }
};

// Why a reading was rejected. The names (ReasonName) are stable: they label metrics and
// dead-letter entries.
enum class RejectReason : uint8_t {
  kNotJson,
  kNotObject,
  kMissingTimestamp,
  kInvalidTimestamp,
  kFutureTimestamp,
  kMissingSensorId,
  kInvalidSensorId,
  kInvalidNumber,
  kInvalidLocation,
  kInvalidFieldName,
  kDuplicateField,
  kUnsupportedValue,
  kTooManyFields,
  kTextTooLong,
  kInvalidUtf8,
  kOversized,
  kDuplicate,  // not the parser's: ingest had already accepted this sensor's reading at that instant
  kInvalidLineProtocol,  // not the parser's: a line of InfluxDB line protocol that does not parse
  kCount  // not a reason: the number of reasons
};

constexpr int kRejectReasonCount = static_cast<int>(RejectReason::kCount);

// "not_json", "missing_timestamp", ...
const char* ReasonName(RejectReason reason);

}  // namespace mare
