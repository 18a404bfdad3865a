// ReadingRow: one record of the raw topic (a reading's JSON exactly as received,
// docs/formats/reading.md) as a row of table `readings` (docs/formats/mariadb-tables.md): the
// fixed columns, and every other field in one JSON object.
//
//   ReadingRowReader reader(1 << 20);     // one per thread, reused
//   ReadingRow row;
//   Status s = reader.Read(record.value, &row);
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "common/status.h"

namespace mare::sinks {

struct ReadingRow {
  uint32_t sensor_id = 0;
  int64_t timestamp_us = 0;  // UTC
  bool has_location = false;
  double lat = 0, lon = 0;
  // The numeric and text fields as a JSON object: {"temperature":20.9,"status":"ok"}. Numbers
  // in shortest round-trip form (the same double reads back), text as JSON strings; numbers
  // first, then text. "{}" for a reading with neither.
  std::string fields;
};

// Reads raw records with mare's ReadingParser, under limits wide enough for anything ingest
// accepted (no clock check, no numeric_fields check: ingest did those when it arrived).
class ReadingRowReader {
 public:
  explicit ReadingRowReader(size_t max_reading_bytes);
  ~ReadingRowReader();
  ReadingRowReader(const ReadingRowReader&) = delete;
  ReadingRowReader& operator=(const ReadingRowReader&) = delete;

  // Corruption, with the parser's reason, unless `json` is exactly one valid reading object.
  Status Read(std::string_view json, ReadingRow* out);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace mare::sinks
