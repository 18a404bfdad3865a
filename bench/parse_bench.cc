// Parse rate on one core: mare's ReadingParser (parse + full validation) against the peer,
// bare simdjson On-Demand reading the same fields with no validation, on the same 200-byte
// readings. Run by bench/parse.py, which prints the table.
#include <benchmark/benchmark.h>
#include <fmt/format.h>
#include <simdjson.h>

#include <string>
#include <vector>

#include "reading/parser.h"

namespace {

constexpr int64_t kNow = 1705831564095931;
constexpr int kReadings = 10000;

// Readings shaped like the observatory's (about 200 bytes), one per line.
std::string MakeReadings() {
  std::string out;
  for (int i = 0; i < kReadings; ++i) {
    out += fmt::format(
        R"({{"timestamp": "2024-01-20 10:{:02}:{:02}.{:06}", "temperature": {:.2f}, "humidity": {:.2f}, "pressure": {:.2f}, "sensor_id": {}, "location": {{"lon": {:.6f}, "lat": {:.6f}}}, "status": "ok"}})"
        "\n",
        (i / 60) % 60, i % 60, (i * 7919) % 1000000, 15 + (i % 100) / 10.0, 60 + (i % 30) / 3.0, 1000 + (i % 50) / 5.0,
        i % 100 + 1, 3.18 + (i % 10) * 0.001, 42.48 + (i % 7) * 0.001);
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

BENCHMARK(BM_MareParser)->MinTime(2.0);
BENCHMARK(BM_BareSimdjson)->MinTime(2.0);

}  // namespace

BENCHMARK_MAIN();
