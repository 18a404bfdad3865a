// Instructions per line of the line protocol converter, for callgrind (run by
// bench/lineproto_instr.py): a batch of lines shaped as bench/lineproto.py sends them (measurement,
// tag sensor_id, five float fields, nanosecond timestamps) converted ROUNDS times with warm buffers,
// then converted and handed to ingest (HandOver) ROUNDS times; each phase ends in a callgrind dump
// of its own, so that setup is not counted. Outside valgrind it runs the same work and prints it.
//
//   valgrind --tool=callgrind lineproto_convert [LINES] [ROUNDS]
#include <fmt/format.h>
#include <valgrind/callgrind.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "reading/parser.h"
#include "sources/line_protocol.h"

namespace {

constexpr int64_t kT0 = 1'704'067'200;  // 2024-01-01 00:00:00 UTC, as bench/lineproto.py

// As bench/lineproto.py writes them: 100 sensors, one reading a second each.
std::string MakeLines(int count) {
  std::string out;
  for (int i = 0; i < count; ++i) {
    int sensor = i % 100 + 1;
    int64_t second = i / 100;
    double t = 15 + (i % 97) / 10.0, h = 60 + (i % 31) / 3.0, p = 1000 + (i % 53) / 5.0;
    out += fmt::format("weather,sensor_id={} temperature={:.2f},humidity={:.2f},pressure={:.2f},lat=42.48,lon=3.18 {}\n",
                       sensor, t, h, p, (kT0 + second) * 1'000'000'000);
  }
  return out;
}

struct Counting : mare::ReadingSink {
  size_t accepted = 0, rejected = 0;
  void OnReading(const mare::Reading&) override { ++accepted; }
  void OnReject(const mare::Reject&) override { ++rejected; }
};

}  // namespace

int main(int argc, char** argv) {
  const int lines = argc > 1 ? std::atoi(argv[1]) : 10'000;
  const int rounds = argc > 2 ? std::atoi(argv[2]) : 10;
  const int64_t now_us = (kT0 + 86'400) * 1'000'000;
  const std::string text = MakeLines(lines);
  mare::LineProtocolParser parser;
  mare::ReadingParser readings;
  mare::LineBatch batch;
  mare::Reading scratch;
  Counting sink;
  // Warm: the batch's buffers and the parser's vectors at their size.
  parser.Convert(text, mare::Precision::kNanoseconds, now_us, &batch);
  mare::HandOver(batch, readings, now_us, sink, &scratch);
  if (batch.lines.size() != static_cast<size_t>(lines) || !batch.rejects.empty() || sink.rejected != 0) {
    std::fprintf(stderr, "lines rejected\n");
    return 1;
  }
  size_t vouched = 0;
  for (const auto& r : batch.readings) vouched += r.vouched;

  CALLGRIND_ZERO_STATS;
  for (int r = 0; r < rounds; ++r) {
    batch.Clear();
    parser.Convert(text, mare::Precision::kNanoseconds, now_us, &batch);
  }
  CALLGRIND_DUMP_STATS_AT("convert");
  for (int r = 0; r < rounds; ++r) {
    batch.Clear();
    parser.Convert(text, mare::Precision::kNanoseconds, now_us, &batch);
    mare::HandOver(batch, readings, now_us, sink, &scratch);
  }
  CALLGRIND_DUMP_STATS_AT("convert+handover");
  std::printf("lines %d rounds %d bytes/line %.1f vouched %zu accepted %zu\n", lines, rounds,
              static_cast<double>(text.size()) / lines, vouched, sink.accepted);
  return sink.rejected == 0 ? 0 : 1;
}
