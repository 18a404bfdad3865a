// Fuzz target: InfluxDB line protocol as the line protocol sources convert it
// (LineProtocolParser), then the JSON readings it makes through ingest's own parser: every
// line is accounted for once, in order, and what the converter writes is always well-formed
// JSON, one reading per line (ingest may refuse a reading's names or values, never its syntax).
// And what ingest is handed (HandOver: the readings the converter vouched for, as it parsed
// them) is exactly what ingest's parser makes of that JSON, value for value, bit for bit.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "reading/parser.h"
#include "sources/line_protocol.h"
#include "fuzz_check.h"

using mare::fuzz::Check;

namespace {

constexpr int64_t kNow = 1'705'831'564'000'000;  // 2024-01-21 10:06:04 UTC

struct Count : mare::ReadingSink {
  size_t readings = 0;
  size_t rejects = 0;
  void OnReading(const mare::Reading&) override { ++readings; }
  void OnReject(const mare::Reject& r) override {
    Check(r.reason != mare::RejectReason::kNotJson && r.reason != mare::RejectReason::kNotObject,
          "the converter writes well-formed JSON objects");
    ++rejects;
  }
};

// Each reading or reject as a string, numbers by their bits: two sinks agree when these do.
struct Record : mare::ReadingSink {
  std::vector<std::string> seen;
  static void Bits(std::string* out, double d) {
    uint64_t b;
    std::memcpy(&b, &d, sizeof b);
    *out += std::to_string(b) + ";";
  }
  void OnReading(const mare::Reading& r) override {
    std::string s = "ok " + std::string(r.raw) + "|" + std::to_string(r.timestamp_us) + "|" + std::to_string(r.sensor_id) + "|";
    if (r.has_location) {
      Bits(&s, r.lat);
      Bits(&s, r.lon);
    }
    for (const auto& f : r.numbers) {
      s += std::string(f.name) + "=";
      Bits(&s, f.value);
    }
    for (const auto& t : r.texts) s += std::string(t.name) + "=" + std::string(t.value) + ";";
    seen.push_back(std::move(s));
  }
  void OnReject(const mare::Reject& r) override {
    seen.push_back(std::string("reject ") + mare::ReasonName(r.reason) + " " + r.detail + "|" + std::string(r.raw));
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static mare::LineProtocolParser converter;
  static mare::ReadingParser parser;
  static mare::LineBatch batch;
  std::string_view text(reinterpret_cast<const char*>(data), size);
  // The first byte picks the precision, so that every unit's arithmetic is explored.
  mare::Precision precision = static_cast<mare::Precision>(size > 0 ? data[0] % 6 : 0);
  batch.Clear();
  converter.Convert(text, precision, kNow, &batch);

  // Every line that is not blank or a comment becomes one reading or one reject, in order.
  size_t content = 0;
  uint32_t number = 0;
  size_t pos = 0;
  while (pos <= text.size()) {
    size_t nl = text.find('\n', pos);
    std::string_view line = text.substr(pos, nl == std::string_view::npos ? std::string_view::npos : nl - pos);
    ++number;
    size_t first = line.find_first_not_of(" \t");
    bool blank = first == std::string_view::npos || line[first] == '#' || line.substr(first) == "\r";
    if (!blank) ++content;
    if (nl == std::string_view::npos) break;
    pos = nl + 1;
  }
  Check(batch.lines.size() + batch.rejects.size() == content, "every line is a reading or a reject");
  for (size_t i = 1; i < batch.lines.size(); ++i) Check(batch.lines[i - 1] < batch.lines[i], "readings in line order");
  for (const auto& r : batch.rejects) {
    Check(r.line >= 1 && r.line <= number, "a reject's line number is in the buffer");
    Check(r.raw.data() >= text.data() && r.raw.data() + r.raw.size() <= text.data() + text.size(),
          "a reject's raw text lies in the buffer");
    Check(!r.detail.empty(), "a reject says why");
  }
  Check(batch.json_starts.size() == batch.lines.size(), "one start per reading");

  Count count;
  parser.Parse(batch.json.view(), kNow, count);
  Check(count.readings + count.rejects == batch.lines.size(), "one JSON reading per converted line");

  static mare::ReadingParser fallback;
  static mare::Reading scratch;
  Record handed, parsed;
  mare::HandOver(batch, fallback, kNow, handed, &scratch);
  parser.Parse(batch.json.view(), kNow, parsed);
  Check(handed.seen == parsed.seen, "what ingest is handed is what its parser makes of the JSON");
  return 0;
}
