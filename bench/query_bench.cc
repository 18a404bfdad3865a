// One statement on a store's files, in process: the median time to run it (RunQuery) and to
// write its answer as JSON and as CSV, without HTTP, and the CPU time the run took (all
// threads; on a busy machine the steadier figure). For profiling the executor and the formats
// on a store bench/store.py built (--keep), or any `mare import`ed data dir.
//
//   query_bench DATA_DIR "SELECT ..." [RUNS [json|csv]]   (json, csv: also print the answer)
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <ctime>
#include <cstdlib>
#include <string>
#include <vector>

#include "common/metrics.h"
#include "query/executor.h"
#include "query/format.h"
#include "store/store.h"

namespace {

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

double Min(const std::vector<double>& v) { return v.empty() ? 0 : *std::min_element(v.begin(), v.end()); }

double CpuMillis() {
  timespec t;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) * 1e3 + static_cast<double>(t.tv_nsec) / 1e6;
}

template <typename F>
double Millis(F&& f) {
  auto start = std::chrono::steady_clock::now();
  f();
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace

int main(int argc, char** argv) {
  using namespace mare;
  if (argc < 3) {
    fmt::print(stderr, "usage: {} DATA_DIR SQL [RUNS [json|csv]]\n", argv[0]);
    return 2;
  }
  int runs = argc > 3 ? std::atoi(argv[3]) : 11;
  metrics::Registry registry;
  store::StoreOptions options;
  options.dir = std::string(argv[1]) + "/store";
  options.read_only = true;
  options.compaction_thread = false;
  auto store = store::Store::Open(options, &registry);
  if (!store) {
    fmt::print(stderr, "{}\n", store.status().ToString());
    return 1;
  }
  std::string print = argc > 4 ? argv[4] : "";
  std::vector<double> run_ms, cpu_ms, json_ms, csv_ms;
  size_t rows = 0, json_bytes = 0, csv_bytes = 0;
  std::string answer;
  for (int i = 0; i <= runs; ++i) {  // the first run warms up
    query::ResultTable result;
    query::SqlError error;
    bool ok = true;
    double cpu = CpuMillis();
    double ms = Millis([&] { ok = query::RunQuery(**store, argv[2], {}, &result, &error); });
    cpu = CpuMillis() - cpu;
    if (!ok) {
      fmt::print(stderr, "{}\n", error.ToString());
      return 1;
    }
    std::string json, csv;
    double j = Millis([&] { query::WriteJson(result, ms, &json); });
    double c = Millis([&] { query::WriteCsv(result, &csv); });
    if (i == 0) continue;
    run_ms.push_back(ms);
    cpu_ms.push_back(cpu);
    json_ms.push_back(j);
    csv_ms.push_back(c);
    rows = result.rows;
    json_bytes = json.size();
    csv_bytes = csv.size();
    if (print == "json") answer = std::move(json);
    if (print == "csv") answer = std::move(csv);
  }
  fmt::print("{}", answer);
  fmt::print(print.empty() ? stdout : stderr, "run {:.3f} ms (min {:.3f}, cpu {:.3f}), ", Median(run_ms), Min(run_ms), Median(cpu_ms));
  fmt::print(print.empty() ? stdout : stderr, "json {:.3f} ms (min {:.3f}, {} bytes), csv {:.3f} ms (min {:.3f}, {} bytes); ", Median(json_ms),
             Min(json_ms), json_bytes, Median(csv_ms), Min(csv_ms), csv_bytes);
  fmt::print(print.empty() ? stdout : stderr, "{} rows; medians of {}\n", rows, runs);
  return 0;
}
