// The store's resident memory against the days it holds (issue 13, "a year of running"): writes
// days of readings at N sensors into a store as `mare run` leaves them (merged day segments, one
// block per sensor and hour), then, in a fresh process, opens the store with a given
// store.index_cache_bytes, answers a query over its last day, lists its sensors (the
// dashboard's walk over every segment) and asks each sensor's latest reading (its LATEST ON),
// and prints its RSS and the index cache's figures as one JSON line. bench/store_index.py runs
// it for several day counts and cache sizes and prints the table.
//
//   store_index_bench write DIR FIRST_DAY END_DAY SENSORS     (appends days [FIRST_DAY, END_DAY))
//   store_index_bench open DIR INDEX_CACHE_BYTES DAYS
#include <fmt/format.h>

#include <ctime>
#include <cstdlib>
#include <fstream>
#include <string>

#include "common/metrics.h"
#include "common/time.h"
#include "query/executor.h"
#include "query/sensors.h"
#include "store/store.h"
#include "store/store_metrics.h"

namespace {

using namespace mare;

constexpr int64_t kT0 = 1'704'067'200'000'000;  // 2024-01-01T00:00:00Z
constexpr int64_t kMinute = 60'000'000;

// VmRSS or VmHWM of this process, in bytes.
int64_t ProcStatus(const std::string& key) {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(key + ":", 0) == 0) return std::strtoll(line.c_str() + key.size() + 1, nullptr, 10) * 1024;
  }
  return -1;
}

double CpuSeconds() {
  timespec t;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_nsec) / 1e9;
}

int Write(const std::string& dir, int first_day, int end_day, int sensors) {
  metrics::Registry registry;
  store::StoreOptions options;
  options.dir = dir;
  options.compaction_thread = false;
  options.index_cache_bytes = 64u << 20;
  auto opened = store::Store::Open(options, &registry);
  if (!opened.ok()) {
    fmt::print(stderr, "{}\n", opened.status().ToString());
    return 1;
  }
  auto& s = **opened;
  // A reading per sensor every 10 minutes (longrun.py's default rate), three fields and the
  // location: blocks of 6 columns with the timestamp, as the issue measured them.
  int64_t offset = 0;
  for (int day = first_day; day < end_day; ++day) {
    for (int hour = 0; hour < 24; hour += 6) {
      s.Write([&](store::Store::Batch& b) {
        for (int m = hour * 6; m < (hour + 6) * 6; ++m) {
          for (int id = 1; id <= sensors; ++id) {
            Reading r;
            r.timestamp_us = kT0 + day * store::kDayMicros + m * 10 * kMinute + id % 600 * 1'000'000;
            r.sensor_id = static_cast<uint32_t>(id);
            r.has_location = true;
            r.lat = 40 + id % 100 / 10.0;
            r.lon = 3 + id % 37 / 10.0;
            r.numbers.push_back({"temperature", 10 + (m + id) % 150 / 10.0});
            r.numbers.push_back({"humidity", 50 + (m * 7 + id) % 400 / 10.0});
            r.numbers.push_back({"pressure", 1000 + (m + 3 * id) % 300 / 10.0});
            b.Add(r);
          }
        }
      });
      offset += 36 * sensors;
      Status st = s.Flush({offset});
      if (!st.ok()) {
        fmt::print(stderr, "{}\n", st.ToString());
        return 1;
      }
    }
    Status st = s.Compact(true);  // the day's flushes into one day segment, as when the day goes quiet
    if (!st.ok()) {
      fmt::print(stderr, "{}\n", st.ToString());
      return 1;
    }
  }
  auto stats = s.GetStats();
  fmt::print("{{\"segments\": {}, \"blocks\": {}, \"rows\": {}, \"bytes\": {}}}\n", stats.segments, stats.blocks, stats.rows, stats.bytes);
  return 0;
}

int OpenAndQuery(const std::string& dir, size_t cache_bytes, int days) {
  int64_t rss_start = ProcStatus("VmRSS");
  metrics::Registry registry;
  store::StoreOptions options;
  options.dir = dir;
  options.compaction_thread = false;
  options.index_cache_bytes = cache_bytes;
  double cpu0 = CpuSeconds();
  auto opened = store::Store::Open(options, &registry);
  if (!opened.ok()) {
    fmt::print(stderr, "{}\n", opened.status().ToString());
    return 1;
  }
  auto& s = **opened;
  double open_cpu = CpuSeconds() - cpu0;
  int64_t rss_open = ProcStatus("VmRSS");
  int64_t from = kT0 + (days - 1) * store::kDayMicros;
  std::string sql = fmt::format(
      "SELECT count(*), avg(temperature), max(humidity) FROM readings WHERE ts >= TIMESTAMP '{}' AND ts < TIMESTAMP '{}'",
      FormatTimestamp(from), FormatTimestamp(from + store::kDayMicros));
  query::QueryResult result;
  query::SqlError error;
  query::QueryOptions qo;
  qo.max_rows = 10;
  cpu0 = CpuSeconds();
  if (!query::RunQuery(s, sql, qo, &result, &error)) {
    fmt::print(stderr, "query: {}\n", error.message);
    return 1;
  }
  double query_cpu = CpuSeconds() - cpu0;
  int64_t rss_query = ProcStatus("VmRSS");
  // The sensor list from the segments' sensor summaries: per call, the mean of five.
  constexpr int kCalls = 5;
  uint64_t misses0 = s.index_cache().misses();
  cpu0 = CpuSeconds();
  auto sensors = query::ListSensors(s);
  for (int i = 1; i < kCalls; ++i) sensors = query::ListSensors(s);
  double sensors_cpu = (CpuSeconds() - cpu0) / kCalls;
  int64_t rss_sensors = ProcStatus("VmRSS");
  uint64_t sensors_misses = s.index_cache().misses() - misses0;  // indexes the list read (none: it reads summaries)
  int64_t readings = 0;
  for (const auto& info : sensors) readings += info.readings;
  // The dashboard's other question every second: each sensor's newest reading.
  query::QueryResult latest;
  cpu0 = CpuSeconds();
  if (!query::RunQuery(s, "SELECT sensor_id, ts, temperature FROM readings LATEST ON ts PARTITION BY sensor_id",
                       {.max_rows = 10'000'000, .threads = 1}, &latest, &error)) {
    fmt::print(stderr, "latest: {}\n", error.message);
    return 1;
  }
  double latest_cpu = CpuSeconds() - cpu0;
  int64_t rss_latest = ProcStatus("VmRSS");
  // Peer: the sensor list as it was, walking every segment's block index (scan=true), after
  // the steps above (so that their figures stay those of a store that never scanned).
  uint64_t misses_before_scan = s.index_cache().misses();
  cpu0 = CpuSeconds();
  auto scanned = query::ListSensors(s, /*scan=*/true);
  double sensors_scan_cpu = CpuSeconds() - cpu0;
  uint64_t scan_misses = s.index_cache().misses() - misses_before_scan;
  bool sensors_same = query::SensorsJson(sensors) == query::SensorsJson(scanned);
  double latest_sum = 0;
  for (const auto& r : latest.rows) latest_sum += static_cast<double>(r.at(1).i % 1'000'000'007) + r.at(2).d;
  const auto& row = result.rows.at(0);
  fmt::print(
      "{{\"cache_limit\": {}, \"rss_start\": {}, \"rss_open\": {}, \"rss_query\": {}, \"rss_sensors\": {}, \"hwm\": {}, "
      "\"cache_bytes\": {}, \"cache_entries\": {}, \"hits\": {}, \"misses\": {}, \"evictions\": {}, \"open_cpu\": {:.3f}, "
      "\"query_cpu\": {:.3f}, \"sensors_cpu\": {:.4f}, \"day_count\": {}, \"day_avg\": {:.9f}, \"day_max\": {}, "
      "\"sensors\": {}, \"sensor_readings\": {}, \"rss_latest\": {}, \"latest_cpu\": {:.3f}, \"latest_rows\": {}, "
      "\"latest_sum\": {:.6f}, \"sensors_scan_cpu\": {:.4f}, \"sensors_same\": {}, \"sensors_misses\": {}, "
      "\"scan_misses\": {}, \"sensor_summary_bytes\": {}}}\n",
      cache_bytes, rss_start, rss_open, rss_query, rss_sensors, ProcStatus("VmHWM"),
      registry.GetGauge(store_metrics::kIndexCacheBytes).value(), s.index_cache().entries(), s.index_cache().hits(),
      s.index_cache().misses(), s.index_cache().evictions(), open_cpu, query_cpu, sensors_cpu, row.at(0).i, row.at(1).d,
      row.at(2).d, sensors.size(), readings, rss_latest, latest_cpu, latest.rows.size(), latest_sum, sensors_scan_cpu,
      sensors_same, sensors_misses, scan_misses, s.GetStats().sensor_summary_bytes);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::string mode = argc > 1 ? argv[1] : "";
  if (mode == "write" && argc == 6) return Write(argv[2], std::atoi(argv[3]), std::atoi(argv[4]), std::atoi(argv[5]));
  if (mode == "open" && argc == 5) return OpenAndQuery(argv[2], std::strtoull(argv[3], nullptr, 10), std::atoi(argv[4]));
  fmt::print(stderr,
             "usage: {0} write DIR FIRST_DAY END_DAY SENSORS\n"
             "       {0} open DIR INDEX_CACHE_BYTES DAYS\n",
             argv[0]);
  return 2;
}
