// clickhouse_rows_bench: the ClickHouse sink's own work per reading, without the log or the
// server: bench/sinks.py's readings (8 numbers, a text, 100 sensors) as raw records carrying their
// numbers (as mare's ingest appends them), read back, made rows of the readings table and laid
// out as Native blocks in key order, batch by batch, as clickhouse_sink.cc does. Prints a digest of
// the blocks (a change of the bytes shows). For instruction counts (repeatable on a loaded machine):
//   valgrind --tool=callgrind --toggle-collect='mare::EncodeAll*' --toggle-collect='mare::Digest*'
//       build-cg/bin/clickhouse_rows_bench [N] [BATCH]
// on a build without AVX-512 (-DMARE_MARCH=x86-64-v3).
#include <fmt/format.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <string>
#include <vector>

#include "sinks/clickhouse/native_block.h"
#include "sinks/clickhouse/tables.h"
#include "sinks/raw_reading.h"

namespace mare {

constexpr int64_t kT0 = 1705831200;  // bench/sinks.py's

std::string ReadingJson(int64_t i, int sensors) {
  // bench/sinks.py's reading(i, sensors), with the same separators.
  auto num = [](double v) {
    std::string s = fmt::format("{}", v);
    return s;
  };
  return fmt::format(
      R"({{"timestamp":{},"sensor_id":{},"temperature":{},"humidity":{},"pressure":{},"water_temperature":{},)"
      R"("wave_height":{},"wind_speed":{},"wind_direction":{},"dew_point":{},"status":"{}"}})",
      kT0 + i / sensors, 1 + i % sensors, num(12 + static_cast<double>(i * 37 % 101) / 10), 60 + i % 30, 990 + i % 40,
      num(14.5 + static_cast<double>(i % 13) / 10), num(1 + static_cast<double>(i % 7) / 10),
      num(static_cast<double>(i * 7 % 150) / 10), i * 13 % 360, num(9.5 + static_cast<double>(i % 11) / 10),
      i % 5 ? "ok" : "degraded");
}

struct Batches {
  std::vector<std::string> values;
  std::deque<std::string> names;  // the numbers' names, interned
  std::vector<std::vector<NumberField>> numbers;
  std::vector<log::ConsumedRecord> records;
};

// A digest of a block's bytes, a word at a time; left out of the count (its own toggle).
__attribute__((noinline)) uint64_t Digest(uint64_t digest, const std::string& bytes) {
  size_t i = 0;
  for (; i + 8 <= bytes.size(); i += 8) {
    uint64_t w;
    std::memcpy(&w, bytes.data() + i, 8);
    digest = (digest ^ w) * 1099511628211ull;
  }
  for (; i < bytes.size(); ++i) digest = (digest ^ static_cast<unsigned char>(bytes[i])) * 1099511628211ull;
  return digest;
}

// The sink's work on every batch: each record read and appended as a row, then the batch ordered
// and encoded. Returns a digest of the blocks.
__attribute__((noinline)) uint64_t EncodeAll(const std::vector<log::ConsumedRecord>& records, size_t batch,
                                             const std::vector<std::string>& numeric_fields) {
  sinks::RawReadingReader reader(1 << 20);
  sinks::clickhouse::ReadingsTable table(numeric_fields);
  auto block = sinks::clickhouse::NativeBlock::Make(table.columns(), sinks::clickhouse::ReadingsTable::kKeyColumns);
  if (!block.ok()) std::abort();
  std::string body, native;
  std::vector<size_t> row_ends;
  std::vector<uint32_t> order;
  uint64_t digest = 1469598103934665603ull;
  for (size_t from = 0; from < records.size(); from += batch) {
    body.clear();
    row_ends.clear();
    for (size_t i = from; i < std::min(records.size(), from + batch); ++i) {
      auto r = reader.Read(records[i]);
      if (!r.ok() || !table.Append(**r, &body).ok()) std::abort();
      row_ends.push_back(body.size());
    }
    if (!block->Order(body, row_ends, &order).ok()) std::abort();
    if (!block->Encode(body, row_ends, order, &native).ok()) std::abort();
    digest = Digest(digest, native);
  }
  return digest;
}

}  // namespace mare

int main(int argc, char** argv) {
  using namespace mare;
  size_t n = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 100'000;
  size_t batch = argc > 2 ? std::strtoull(argv[2], nullptr, 10) : 100'000;
  const std::vector<std::string> numeric_fields = {"temperature",  "humidity",   "pressure",       "water_temperature",
                                                   "wave_height", "wind_speed", "wind_direction", "dew_point"};
  Batches b;
  b.values.reserve(n);
  b.numbers.resize(n);
  sinks::RawReadingReader parse(1 << 20);
  for (size_t i = 0; i < n; ++i) {
    b.values.push_back(ReadingJson(static_cast<int64_t>(i), 100));
    auto r = parse.Read(b.values.back());
    if (!r.ok()) {
      std::fprintf(stderr, "%s\n", r.status().ToString().c_str());
      return 1;
    }
    for (const NumberField& f : (*r)->numbers) {
      std::string_view name = f.name;
      auto it = std::find(b.names.begin(), b.names.end(), name);
      if (it == b.names.end()) it = b.names.insert(b.names.end(), std::string(name));
      b.numbers[i].push_back({*it, f.value});
    }
    log::ConsumedRecord rec;
    rec.offset = static_cast<int64_t>(i);
    rec.timestamp_us = (*r)->timestamp_us;
    rec.key = std::string_view(b.values.back()).substr(0, 0);
    rec.has_numbers = true;
    b.records.push_back(rec);
  }
  for (size_t i = 0; i < n; ++i) {
    b.records[i].value = b.values[i];
    b.records[i].numbers = b.numbers[i];
  }
  uint64_t digest = EncodeAll(b.records, batch, numeric_fields);
  std::printf("%zu readings, batches of %zu: digest %016llx\n", n, batch, static_cast<unsigned long long>(digest));
  return 0;
}
