// RawReadingReader: reads one record of the raw topic (a reading's JSON exactly as ingest
// accepted it, docs/formats/reading.md) back into a Reading, for the sinks that copy readings
// out (Elasticsearch, ClickHouse). Its limits are wide enough for anything ingest accepted: no
// clock check, no numeric_fields check (ingest did those when the reading arrived). A record
// that carries its numbers is read from them (carried_reading.h), without parsing its JSON.
//
//   RawReadingReader reader(1 << 20);   // one per thread, reused
//   Result<const Reading*> r = reader.Read(record);   // valid until the next Read and Poll
#pragma once

#include <cstdint>
#include <limits>
#include <string>
#include <string_view>

#include "common/status.h"
#include "log/log.h"
#include "reading/parser.h"
#include "reading/reading.h"

namespace mare::sinks {

// How a sink parses a record of the raw topic: ingest validated it when it arrived, so only the
// shape is checked again (no field limits beyond ingest's bounds, no clock).
ParserOptions RawRecordOptions(size_t max_reading_bytes);
// The clock to parse raw records with: far enough ahead that no reading is "in the future".
inline constexpr int64_t kNoClock = std::numeric_limits<int64_t>::max() / 2;

class RawReadingReader : ReadingSink {
 public:
  explicit RawReadingReader(size_t max_reading_bytes);

  // Corruption, with the parser's reason, unless `json` is exactly one reading object.
  Result<const Reading*> Read(std::string_view json);
  // The record's reading: from its carried numbers when it has them, else as Read(json).
  Result<const Reading*> Read(const log::ConsumedRecord& record);

 private:
  void OnReading(const Reading& r) override;
  void OnReject(const Reject& r) override;

  ReadingParser parser_;
  PaddedBuffer buffer_;
  Reading reading_;  // a copy: its views point into buffer_
  int readings_ = 0;
  std::string rejected_;
};

}  // namespace mare::sinks
