#include "sinks/mariadb/reading_row.h"

#include <fmt/format.h>

#include <limits>

#include "common/json_writer.h"
#include "reading/parser.h"
#include "sinks/raw_reading.h"

namespace mare::sinks {

struct ReadingRowReader::Impl : ReadingSink {
  explicit Impl(size_t max_reading_bytes) : parser(RawRecordOptions(max_reading_bytes)) {}

  void OnReading(const Reading& r) override {
    if (++readings > 1) return;
    out->sensor_id = r.sensor_id;
    out->timestamp_us = r.timestamp_us;
    out->has_location = r.has_location;
    out->lat = r.has_location ? r.lat : 0;
    out->lon = r.has_location ? r.lon : 0;
    std::string& f = out->fields;
    f.clear();
    f.push_back('{');
    for (const NumberField& n : r.numbers) {
      if (f.size() > 1) f.push_back(',');
      AppendJsonString(&f, n.name);
      f.push_back(':');
      AppendJsonNumber(&f, n.value);
    }
    for (const TextField& t : r.texts) {
      if (f.size() > 1) f.push_back(',');
      AppendJsonString(&f, t.name);
      f.push_back(':');
      AppendJsonString(&f, t.value);
    }
    f.push_back('}');
  }
  void OnReject(const Reject& r) override {
    if (rejected.empty()) rejected = fmt::format("{}: {}", ReasonName(r.reason), r.detail);
  }

  ReadingParser parser;
  PaddedBuffer buffer;
  ReadingRow* out = nullptr;
  int readings = 0;
  std::string rejected;
};

ReadingRowReader::ReadingRowReader(size_t max_reading_bytes) : impl_(std::make_unique<Impl>(max_reading_bytes)) {}
ReadingRowReader::~ReadingRowReader() = default;

Status ReadingRowReader::Read(std::string_view json, ReadingRow* out) {
  Impl& im = *impl_;
  auto bad = [&](std::string_view why) {
    return Status::Corruption(fmt::format("raw record: {}: {}", why, json.substr(0, 200)));
  };
  // One object: the parser would also take an array of readings, or several lines.
  if (json.empty() || json.front() != '{' || json.find('\n') != std::string_view::npos) return bad("not one reading object");
  im.buffer.Assign(json);
  im.out = out;
  im.readings = 0;
  im.rejected.clear();
  im.parser.Parse(im.buffer.view(), kNoClock, im);
  if (!im.rejected.empty()) return bad(im.rejected);
  if (im.readings != 1) return bad("not one reading object");
  return Status::OK();
}

}  // namespace mare::sinks
