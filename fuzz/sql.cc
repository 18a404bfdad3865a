// Fuzz target: one SQL statement lexed, parsed, planned and run (under the query limits) over a
// small store of segments and memtable rows, and its answer written as JSON, NDJSON and CSV.
#include <simdjson.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>

#include "common/metrics.h"
#include "common/scratch_dir.h"
#include "query/executor.h"
#include "query/format.h"
#include "store/store.h"
#include "fuzz_check.h"

namespace query = mare::query;
namespace store = mare::store;

using mare::fuzz::Check;

namespace {

constexpr int64_t kT0 = 1'704'067'200'000'000;  // 2024-01-01T00:00:00Z

// Five sensors over three hours: the first two hours in a segment, the last in the memtable,
// with a text field, a sometimes-missing field and locations, so that every path has rows.
struct Fixture {
  mare::ScratchDir dir{"mare-fuzz-sql"};
  mare::metrics::Registry registry;
  std::unique_ptr<store::Store> store;

  Fixture() {
    auto s = store::Store::Open({.dir = dir.path(), .compaction_thread = false}, &registry);
    if (!s.ok()) abort();
    store = std::move(*s);
    for (int hour = 0; hour < 3; ++hour) {
      store->Write([&](store::Store::Batch& b) {
        for (int i = 0; i < 40; ++i) {
          for (uint32_t sensor = 1; sensor <= 5; ++sensor) {
            mare::Reading r;
            r.timestamp_us = kT0 + (hour * 3600 + i * 90) * 1'000'000LL + sensor;
            r.sensor_id = sensor;
            r.numbers.push_back({"temperature", 10 + sensor + i / 8.0});
            if (i % 3) r.numbers.push_back({"humidity", 50.25 + i});
            if (sensor % 2) r.texts.push_back({"status", i % 4 ? "ok" : "low, \"battery\"\n"});
            r.has_location = sensor != 5;
            r.lat = 42.4 + sensor / 100.0;
            r.lon = 3.1 + sensor / 100.0;
            b.Add(r);
          }
        }
      });
      if (hour == 1 && !store->Flush({0}).ok()) abort();
    }
  }
};

// Integer literals of 19 digits or more replaced by 0. A double of 2^64 or more can be written
// as one (to_chars' shortest text, "461168601842738397184"): valid JSON (RFC 8259 sets no range),
// which simdjson refuses as a number it cannot hold in 64 bits.
std::string WithoutBigIntegers(std::string_view text) {
  std::string out;
  for (size_t i = 0; i < text.size();) {
    size_t j = i;
    bool in_number = (text[i] >= '0' && text[i] <= '9') && (i == 0 || std::strchr("[,:-", text[i - 1]) != nullptr);
    while (in_number && j < text.size() && text[j] >= '0' && text[j] <= '9') ++j;
    if (j - i >= 19 && (j == text.size() || std::strchr(".eE", text[j]) == nullptr)) {
      out += '0';
      i = j;
    } else {
      out += text[i++];
    }
  }
  return out;
}

// Valid JSON, or the text is shown with the failure.
void CheckJson(simdjson::dom::parser& json, std::string_view text, const char* what) {
  auto error = json.parse(text.data(), text.size()).error();
  if (error == simdjson::NUMBER_ERROR) {
    std::string small = WithoutBigIntegers(text);
    error = json.parse(small).error();
  }
  if (error) {
    fprintf(stderr, "%s (%s):\n%.*s\n", what, simdjson::error_message(error), static_cast<int>(std::min<size_t>(text.size(), 4000)),
            text.data());
    abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static Fixture fixture;  // for the whole run; its directory is removed at exit
  static simdjson::dom::parser json;
  std::string_view sql(reinterpret_cast<const char*>(data), size);
  query::QueryOptions options;
  options.now_us = kT0 + 86'400'000'000;
  options.threads = 1;
  options.max_rows = 10'000;
  options.limits.timeout_us = 2'000'000;
  options.limits.max_memory = 64 << 20;
  query::ResultTable result;
  query::SqlError error;
  if (!query::RunQuery(*fixture.store, sql, options, &result, &error)) {
    Check(!error.message.empty(), "a failure says why");
    Check(error.kind != query::SqlError::Kind::kStore, "an intact store gives no store error");
    std::string text = query::ErrorJson(error);
    CheckJson(json, text, "an error is valid JSON");
    return 0;
  }
  Check(result.columns.size() == result.names.size(), "one column per name");
  Check(result.rows <= options.max_rows, "no more rows than max_rows");
  std::string out;
  query::WriteJson(result, 1.5, &out);
  CheckJson(json, out, "the JSON answer is valid JSON");
  out.clear();
  query::WriteNdjson(result, &out);
  for (size_t at = 0; at < out.size();) {
    size_t nl = out.find('\n', at);
    Check(nl != std::string::npos, "every NDJSON line ends with a newline");
    CheckJson(json, std::string_view(out).substr(at, nl - at), "each NDJSON line is valid JSON");
    at = nl + 1;
  }
  out.clear();
  query::WriteCsv(result, &out);
  return 0;
}
