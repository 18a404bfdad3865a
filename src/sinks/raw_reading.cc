#include "sinks/raw_reading.h"

#include <fmt/format.h>

#include <limits>

#include "sinks/carried_reading.h"

namespace mare::sinks {

ParserOptions RawRecordOptions(size_t max_reading_bytes) {
  ParserOptions o;
  o.max_reading_bytes = max_reading_bytes;
  o.max_fields = 4096;  // ingest.max_fields' upper bound
  o.max_text_bytes = std::numeric_limits<size_t>::max();
  o.max_future_skew_us = 0;  // with kNoClock: no reading is "in the future" here
  o.numeric_fields.clear();  // ingest checked them when the reading arrived
  return o;
}

RawReadingReader::RawReadingReader(size_t max_reading_bytes) : parser_(RawRecordOptions(max_reading_bytes)) {}

Result<const Reading*> RawReadingReader::Read(std::string_view json) {
  auto bad = [&](std::string_view why) {
    return Status::Corruption(fmt::format("raw record: {}: {}", why, json.substr(0, 200)));
  };
  if (json.empty() || json.front() != '{' || json.find('\n') != std::string_view::npos) return bad("not one reading object");
  buffer_.Assign(json);
  readings_ = 0;
  rejected_.clear();
  parser_.Parse(buffer_.view(), kNoClock, *this);
  if (!rejected_.empty()) return bad(rejected_);
  if (readings_ != 1) return bad("not one reading object");
  return &reading_;
}

Result<const Reading*> RawReadingReader::Read(const log::ConsumedRecord& record) {
  if (ReadCarried(record, &reading_)) return &reading_;
  return Read(record.value);
}

void RawReadingReader::OnReading(const Reading& r) {
  if (++readings_ == 1) reading_ = r;  // copy-assigning keeps the vectors' capacity
}

void RawReadingReader::OnReject(const Reject& r) {
  if (rejected_.empty()) rejected_ = fmt::format("{}: {}", ReasonName(r.reason), r.detail);
}

}  // namespace mare::sinks
