// Fuzz target: NDJSON readings as ingest parses them (ReadingParser), then the accepted readings'
// numbers through the log batch codec, as Ingest::Worker::Flush appends them.
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "log/format.h"
#include "reading/parser.h"
#include "fuzz_check.h"

using mare::fuzz::Check;

namespace {

constexpr int64_t kNow = 1'705'831'564'000'000;  // 2024-01-21 10:06:04 UTC

// Keeps what the parser handed out (views are valid only during the callback).
struct Collect : mare::ReadingSink {
  std::string_view buffer;
  struct Kept {
    int64_t ts;
    uint32_t sensor;
    std::string raw;
    std::vector<std::string> names;
    std::vector<double> values;
  };
  std::vector<Kept> readings;
  size_t rejects = 0;

  bool Inside(std::string_view v) const {
    return v.data() >= buffer.data() && v.data() + v.size() <= buffer.data() + buffer.size();
  }
  void OnReading(const mare::Reading& r) override {
    Check(Inside(r.raw), "a reading's raw text lies in the buffer");
    Check(!r.raw.empty() && r.raw.front() == '{', "a reading's raw text is an object");
    Check(r.timestamp_us <= kNow + mare::ParserOptions{}.max_future_skew_us, "no reading beyond the future skew");
    Kept k{r.timestamp_us, r.sensor_id, std::string(r.raw), {}, {}};
    for (const auto& n : r.numbers) {
      Check(!n.name.empty(), "number fields are named");
      Check(std::isfinite(n.value), "numbers are finite");
      k.names.emplace_back(n.name);
      k.values.push_back(n.value);
    }
    for (const auto& t : r.texts) Check(!t.name.empty(), "text fields are named");
    if (r.has_location) Check(std::isfinite(r.lat) && std::isfinite(r.lon), "a location is finite");
    readings.push_back(std::move(k));
  }
  void OnReject(const mare::Reject& r) override {
    Check(Inside(r.raw), "a reject's raw text lies in the buffer");
    Check(static_cast<int>(r.reason) < mare::kRejectReasonCount, "a reject has a reason");
    ++rejects;
  }
};

// The accepted readings' numbers through a log batch and back, as the log keeps them.
void RoundTripBatch(const std::vector<Collect::Kept>& readings) {
  if (readings.empty()) return;
  std::vector<std::vector<mare::NumberField>> numbers(readings.size());
  std::vector<mare::log::Record> records;
  std::vector<std::string> keys;
  keys.reserve(readings.size());
  for (size_t i = 0; i < readings.size(); ++i) {
    for (size_t j = 0; j < readings[i].names.size(); ++j) numbers[i].push_back({readings[i].names[j], readings[i].values[j]});
    keys.push_back(std::to_string(readings[i].sensor));
    records.push_back({.timestamp_us = readings[i].ts, .key = keys.back(), .value = readings[i].raw, .has_numbers = true,
                       .numbers = numbers[i]});
  }
  size_t size = 0;
  mare::log::format::BatchNumbers table;
  if (!mare::log::format::MeasureBatch(records, &size, &table).ok()) return;
  std::string batch(size, '\0');
  mare::log::format::EncodeBatch(records, table, batch.data());
  mare::log::format::SealBatch(batch.data(), 0, kNow);
  mare::log::format::BatchHeader h;
  std::string why;
  Check(mare::log::format::ParseBatchHeader(batch.data(), &h, &why), "an encoded batch header parses");
  Check(mare::log::format::CheckBatchBody(batch.data(), h, &why), "an encoded batch body checks out");
  size_t i = 0;
  std::vector<mare::NumberField> decoded;
  mare::log::format::ForEachRecord(batch.data(), h, [&](int64_t ts, std::string_view key, std::string_view value, const auto& nums) {
    Check(i < readings.size(), "no more records than readings");
    Check(ts == readings[i].ts && key == keys[i] && value == readings[i].raw, "records decode as encoded");
    decoded.clear();
    if (nums.carried()) {
      nums.Decode(&decoded);
      Check(decoded.size() == readings[i].names.size(), "carried numbers decode as encoded");
      for (size_t j = 0; j < decoded.size(); ++j) {
        Check(decoded[j].name == readings[i].names[j], "number names decode as encoded");
        Check(std::memcmp(&decoded[j].value, &readings[i].values[j], sizeof(double)) == 0, "number values decode bit for bit");
      }
    }
    ++i;
  });
  Check(i == readings.size(), "every record decodes");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static mare::ReadingParser parser;
  static mare::PaddedBuffer buffer;
  buffer.Assign(std::string_view(reinterpret_cast<const char*>(data), size));
  Collect collect;
  collect.buffer = buffer.view();
  parser.Parse(buffer.view(), kNow, collect);

  // A reading's own text parses alone to the same reading: what the log keeps is what was read.
  for (const auto& k : collect.readings) {
    mare::PaddedBuffer alone;
    alone.Assign(k.raw);
    Collect again;
    again.buffer = alone.view();
    parser.Parse(alone.view(), kNow, again);
    Check(again.readings.size() == 1 && again.rejects == 0, "an accepted reading's text is accepted alone");
    Check(again.readings[0].ts == k.ts && again.readings[0].sensor == k.sensor, "the same timestamp and sensor alone");
    Check(again.readings[0].names == k.names, "the same number fields alone");
  }
  RoundTripBatch(collect.readings);
  return 0;
}
