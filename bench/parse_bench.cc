// Parse rate on one core: mare's ReadingParser (parse + full validation) against the peer,
// bare simdjson On-Demand reading the same fields with no validation, on the same 200-byte
// readings; and the same readings as InfluxDB line protocol (LineProtocolParser to JSON, then the
// whole path: what ingest is handed, HandOver). Run by bench/parse.py and bench/lineproto.py.
#include <benchmark/benchmark.h>
#include <fmt/format.h>
#include <simdjson.h>

#include <string>
#include <vector>

#include "reading/parser.h"
#include "sources/line_protocol.h"

namespace {

constexpr int64_t kNow = 1705831564095931;
constexpr int kReadings = 10000;

// Readings shaped like the observatory's: their values, then as JSON (about 200 bytes, one per
// line) and as line protocol (about 150 bytes, as Telegraf would write them).
struct Shape {
  int minute, second, micros, sensor;
  double temperature, humidity, pressure, lon, lat;
};
Shape ShapeOf(int i) {
  return {(i / 60) % 60, i % 60, (i * 7919) % 1000000, i % 100 + 1, 15 + (i % 100) / 10.0, 60 + (i % 30) / 3.0,
          1000 + (i % 50) / 5.0, 3.18 + (i % 10) * 0.001, 42.48 + (i % 7) * 0.001};
}

std::string MakeReadings() {
  std::string out;
  for (int i = 0; i < kReadings; ++i) {
    Shape s = ShapeOf(i);
    out += fmt::format(
        R"({{"timestamp": "2024-01-20 10:{:02}:{:02}.{:06}", "temperature": {:.2f}, "humidity": {:.2f}, "pressure": {:.2f}, "sensor_id": {}, "location": {{"lon": {:.6f}, "lat": {:.6f}}}, "status": "ok"}})"
        "\n",
        s.minute, s.second, s.micros, s.temperature, s.humidity, s.pressure, s.sensor, s.lon, s.lat);
  }
  return out;
}

std::string MakeLines() {
  std::string out;
  for (int i = 0; i < kReadings; ++i) {
    Shape s = ShapeOf(i);
    int64_t ns = (1705744800LL + s.minute * 60 + s.second) * 1'000'000'000LL + s.micros * 1000LL;
    out += fmt::format("weather,sensor_id={},status=ok temperature={:.2f},humidity={:.2f},pressure={:.2f},lon={:.6f},lat={:.6f} {}\n",
                       s.sensor, s.temperature, s.humidity, s.pressure, s.lon, s.lat, ns);
  }
  return out;
}

struct Counting : mare::ReadingSink {
  size_t accepted = 0, rejected = 0;
  void OnReading(const mare::Reading&) override { ++accepted; }
  void OnReject(const mare::Reject&) override { ++rejected; }
};

void BM_MareParser(benchmark::State& state) {
  std::string text = MakeReadings();
  mare::PaddedBuffer buf;
  buf.Assign(text);
  mare::ReadingParser parser;
  Counting sink;
  for (auto _ : state) {
    parser.Parse(buf.view(), kNow, sink);
  }
  if (sink.rejected != 0) state.SkipWithError("readings rejected");
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()) * kReadings);
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * text.size()));
}

// The peer: simdjson On-Demand, one document per line, touching every field once.
void BM_BareSimdjson(benchmark::State& state) {
  std::string text = MakeReadings();
  simdjson::padded_string padded(text);
  simdjson::ondemand::parser parser;
  double sum = 0;
  for (auto _ : state) {
    const char* p = padded.data();
    const char* end = p + padded.size();
    while (p < end) {
      const char* nl = static_cast<const char*>(memchr(p, '\n', static_cast<size_t>(end - p)));
      size_t len = static_cast<size_t>((nl ? nl : end) - p);
      auto doc = parser.iterate(simdjson::padded_string_view(p, len, static_cast<size_t>(end - p) + simdjson::SIMDJSON_PADDING));
      for (auto field : doc.get_object()) {
        auto v = field.value();
        switch (v.type().value_unsafe()) {
          case simdjson::ondemand::json_type::number: sum += v.get_double().value_unsafe(); break;
          case simdjson::ondemand::json_type::string: sum += static_cast<double>(v.get_string().value_unsafe().size()); break;
          case simdjson::ondemand::json_type::object:
            for (auto f : v.get_object()) sum += f.value().get_double().value_unsafe();
            break;
          default: break;
        }
      }
      p += len + 1;
    }
  }
  benchmark::DoNotOptimize(sum);
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()) * kReadings);
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * text.size()));
}


void BM_LineProtocolToJson(benchmark::State& state) {
  std::string text = MakeLines();
  mare::LineProtocolParser parser;
  mare::LineBatch batch;
  for (auto _ : state) {
    batch.Clear();
    parser.Convert(text, mare::Precision::kNanoseconds, kNow, &batch);
  }
  if (!batch.rejects.empty() || batch.lines.size() != kReadings) state.SkipWithError("lines rejected");
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()) * kReadings);
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * text.size()));
}

// What ingest is handed: the readings the converter vouches for as they are, the others (none
// here) parsed from their JSON by ReadingParser.
void BM_LineProtocolIngestPath(benchmark::State& state) {
  std::string text = MakeLines();
  mare::LineProtocolParser parser;
  mare::ReadingParser readings;
  mare::LineBatch batch;
  mare::Reading scratch;
  Counting sink;
  for (auto _ : state) {
    batch.Clear();
    parser.Convert(text, mare::Precision::kNanoseconds, kNow, &batch);
    mare::HandOver(batch, readings, kNow, sink, &scratch);
  }
  if (sink.rejected != 0) state.SkipWithError("readings rejected");
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()) * kReadings);
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * text.size()));
}

BENCHMARK(BM_MareParser)->MinTime(2.0);
BENCHMARK(BM_BareSimdjson)->MinTime(2.0);
BENCHMARK(BM_LineProtocolToJson)->MinTime(2.0);
BENCHMARK(BM_LineProtocolIngestPath)->MinTime(2.0);

}  // namespace

BENCHMARK_MAIN();
