// The heap a store merge holds against how much of the day its inputs already hold (issue 13,
// "memory flat over a long accelerated run"): writes a day hour by hour at N sensors, flushing
// and merging (Compact(true)) after each hour as `mare run` does through the day, and prints per
// hour the blocks merged and the heap in use at the merge's peak above what it was before.
//
//   store_merge_bench DIR SENSORS [HOURS]     (DIR: an empty directory; HOURS 24)
#include <malloc.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <thread>

#include <fmt/format.h>

#include "common/metrics.h"
#include "store/store.h"

namespace {

using namespace mare;

constexpr int64_t kT0 = 1'704'067'200'000'000;  // 2024-01-01T00:00:00Z
constexpr int64_t kMinute = 60'000'000;

// Heap in use: allocated chunks of every arena and the chunks mapped on their own.
int64_t HeapInUse() {
  struct mallinfo2 m = ::mallinfo2();
  return static_cast<int64_t>(m.uordblks + m.hblkhd);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    fmt::print(stderr, "usage: store_merge_bench DIR SENSORS [HOURS]\n");
    return 2;
  }
  const std::string dir = argv[1];
  const int sensors = std::atoi(argv[2]);
  const int hours = argc > 3 ? std::atoi(argv[3]) : 24;
  metrics::Registry registry;
  store::StoreOptions options;
  options.dir = dir;
  options.compaction_thread = false;
  auto opened = store::Store::Open(options, &registry);
  if (!opened.ok()) {
    fmt::print(stderr, "{}\n", opened.status().ToString());
    return 1;
  }
  auto& s = **opened;
  fmt::print("{:>5} {:>10} {:>9} {:>15} {:>16}\n", "hour", "store rows", "segments", "heap before MB", "merge peak +MB");
  int64_t offset = 0;
  for (int hour = 0; hour < hours; ++hour) {
    // A reading per sensor every 10 minutes (longrun.py's default rate), a simulated buoy's five
    // fields and its location: blocks of 7 columns and the timestamp.
    s.Write([&](store::Store::Batch& b) {
      for (int m = hour * 6; m < (hour + 1) * 6; ++m) {
        for (int id = 1; id <= sensors; ++id) {
          Reading r;
          r.timestamp_us = kT0 + m * 10 * kMinute + id % 600 * 1'000'000;
          r.sensor_id = static_cast<uint32_t>(id);
          r.has_location = true;
          r.lat = 40 + id % 100 / 10.0;
          r.lon = 3 + id % 37 / 10.0;
          r.numbers.push_back({"temperature", 10 + (m + id) % 150 / 10.0});
          r.numbers.push_back({"humidity", 50 + (m * 7 + id) % 400 / 10.0});
          r.numbers.push_back({"pressure", 1000 + (m + 3 * id) % 300 / 10.0});
          r.numbers.push_back({"wave_height", (m * 3 + id) % 50 / 10.0});
          r.numbers.push_back({"water_temperature", 12 + (m + 5 * id) % 90 / 10.0});
          b.Add(r);
        }
      }
    });
    offset += 6 * sensors;
    Status st = s.Flush({offset});
    if (!st.ok()) {
      fmt::print(stderr, "{}\n", st.ToString());
      return 1;
    }
    ::malloc_trim(0);
    const int64_t before = HeapInUse();
    std::atomic<bool> done{false};
    std::atomic<int64_t> peak{before};
    std::thread sampler([&] {
      while (!done.load()) {
        int64_t now = HeapInUse();
        if (now > peak.load()) peak = now;
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
      }
    });
    st = s.Compact(true);  // every merge the day's segments allow, as the compaction thread would reach
    done = true;
    sampler.join();
    if (!st.ok()) {
      fmt::print(stderr, "{}\n", st.ToString());
      return 1;
    }
    auto stats = s.GetStats();
    fmt::print("{:>5} {:>10} {:>9} {:>15.1f} {:>16.1f}\n", hour + 1, stats.rows, stats.segments, before / 1e6, (peak - before) / 1e6);
  }
  return 0;
}
