// The forecast processor's refresh cost on one core: N series (sensors × fields), each with 90
// days of hourly history, restored (as at a restart), then one hour closing for every series
// (an ordinary hour's issue: baselines, Holt–Winters run on, ensemble and intervals; the series
// whose refit phase it is refit Holt–Winters, 1 in 24 as the processor spreads them), then the
// hour before 00:00 UTC (the day-ahead issue: the ridges' last lead besides), each hour followed
// by the Prepare the processor makes in its idle part (timed apart; MARE_REFRESH_NO_PREPARE=1:
// none, the issue fits every lead). The worst hour: an hour's issues and its Prepare, or the
// day-ahead issue.
// CPU seconds of this thread; the issue's target: 10,000 series refreshed in under 10 s. Also
// the memory the forecasters hold (heap in use): empty ones (a series just seen) and filled ones.
// With --checkpoint: the checkpoint of SERIES series (default 10,000) written to a file and read
// back into restored forecasters, in wall seconds, and its bytes per series. Their states are
// those of DISTINCT series (default 100) restored from 90 days (a rebuild costs ~0.1 s each),
// each series compressed on its own, so that repeating them does not flatter the size.
//
// Under `valgrind --tool=callgrind --instr-atstart=no` only the refreshes are counted (the
// restore, ~1 G instructions a series, is not): a dump after the ordinary hours ("ordinary",
// 10 issues a series) and one after the day-ahead hour ("day-ahead", 1 a series): instructions
// per issue, repeatable on a loaded machine where CPU seconds are not.
//
//   forecast_refresh_bench [SERIES] [HISTORY_DAYS]    (default 1000 90)
//   forecast_refresh_bench --checkpoint [SERIES] [DISTINCT] [DIR]   (default 10000 100 /tmp)
#include <fmt/format.h>
#include <malloc.h>
#include <time.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <numbers>
#include <string>
#include <string_view>
#include <vector>

#if __has_include(<valgrind/callgrind.h>)
#include <valgrind/callgrind.h>
#else  // no-ops, as the macros are outside valgrind
#define CALLGRIND_START_INSTRUMENTATION
#define CALLGRIND_STOP_INSTRUMENTATION
#define CALLGRIND_DUMP_STATS_AT(what)
#define CALLGRIND_ZERO_STATS
#endif

#include "processors/forecast/forecast_checkpoint.h"
#include "processors/forecast/series_forecaster.h"

using namespace mare;
using namespace mare::forecast;

namespace {

double CpuSeconds() {
  timespec t;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_nsec) / 1e9;
}

// A daily cycle, a slow drift per series and deterministic noise, like a buoy's air temperature.
double Temperature(int64_t hour, uint64_t series) {
  double day = 2 * std::numbers::pi * static_cast<double>(hour % 24) / 24;
  double drift = 3 * std::sin(static_cast<double>(hour) / 400.0 + static_cast<double>(series));
  uint64_t x = static_cast<uint64_t>(hour) * 6364136223846793005ULL + series * 1442695040888963407ULL;
  return 12 + 4 * std::sin(day) + drift + static_cast<double>((x >> 33) % 1000) / 1000.0 - 0.5;
}

double WallSeconds() {
  timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_nsec) / 1e9;
}

int CheckpointBench(int series, int distinct, const std::string& dir) {
  SeriesOptions options;
  const int64_t end = 24 * 19500 + 13;
  const int kept = SeriesForecaster(options).kept_days();
  std::vector<std::unique_ptr<SeriesForecaster>> models;
  for (int s = 0; s < distinct; ++s) {
    HourlySeries h;
    h.first_hour = end - 24 * static_cast<int64_t>(kept);
    for (int64_t t = h.first_hour; t < end; ++t) h.values.push_back(Temperature(t, static_cast<uint64_t>(s)));
    SeriesOptions o = options;
    o.refit_phase = s % 24;
    models.push_back(std::make_unique<SeriesForecaster>(o));
    models.back()->Restore(h);
  }
  // A latest record and a day-ahead one of about the size the processor keeps (24 hours of JSON).
  std::string latest = "{\"sensor_id\":0,\"field\":\"temperature\",\"issued_at\":\"2023-05-23T13:00:00.000000Z\",\"hours\":[";
  for (int i = 0; i < 24; ++i) {
    latest += fmt::format("{}{{\"target_hour\":\"2023-05-23T{:02}:00:00.000000Z\",\"value\":{},\"lower\":{},\"upper\":{}}}",
                          i ? "," : "", i, Temperature(end + i, 1), Temperature(end + i, 1) - 1.234567, Temperature(end + i, 1) + 1.345678);
  }
  latest += "]}";
  const std::string path = dir + "/forecast-bench-checkpoint." + std::to_string(::getpid());
  double t0 = WallSeconds();
  ForecastCheckpoint c;
  c.horizon = 24;
  c.history_days = static_cast<uint32_t>(options.history_days);
  c.refit_hours = 24;
  c.next_offsets = {0};
  for (int s = 0; s < series; ++s) {
    const SeriesForecaster& f = *models[static_cast<size_t>(s % distinct)];
    c.series.push_back({.sensor_id = static_cast<uint64_t>(s), .field = "temperature", .partition = 0,
                        .history = f.ModelHistory(), .latest = latest, .latest_day_ahead = latest, .state = f.SaveState()});
  }
  std::string scratch;
  if (!WriteForecastCheckpoint(path, c, &scratch).ok()) return 1;
  double write = WallSeconds() - t0;
  const double bytes = static_cast<double>(scratch.size());
  c = ForecastCheckpoint{};
  scratch = std::string();
  t0 = WallSeconds();
  ForecastCheckpoint back;
  if (!ReadForecastCheckpoint(path, &back).ok()) return 1;
  std::vector<std::unique_ptr<SeriesForecaster>> restored;
  restored.reserve(static_cast<size_t>(series));
  for (int s = 0; s < series; ++s) {
    SeriesOptions o = options;
    o.refit_phase = (s % distinct) % 24;
    restored.push_back(std::make_unique<SeriesForecaster>(o));
    const SeriesCheckpoint& sc = back.series[static_cast<size_t>(s)];
    if (!restored.back()->RestoreState(sc.history, *sc.state).ok()) return 1;
  }
  double restore = WallSeconds() - t0;
  ::unlink(path.c_str());
  fmt::print("forecast checkpoint: {} series ({} distinct states), {} days of history ({} kept)\n", series, distinct,
             options.history_days, kept);
  fmt::print("| what | wall s | per series |\n| --- | --- | --- |\n");
  fmt::print("| file | {:.1f} MB | {:.1f} KB |\n", bytes / 1e6, bytes / series / 1e3);
  fmt::print("| write (save states, encode, write, fsync, rename) | {:.2f} | {:.1f} us |\n", write, write / series * 1e6);
  fmt::print("| restore (read, decode, restore every forecaster) | {:.2f} | {:.1f} us |\n", restore, restore / series * 1e6);
  return 0;
}

}  // namespace

// Bytes the allocator has handed out and not taken back (glibc's mallinfo2: heap and mmapped
// chunks). Not RSS, which keeps what an earlier phase freed and would hide the next phase's growth.
double HeapBytes() {
  struct mallinfo2 m = mallinfo2();
  return static_cast<double>(m.uordblks + m.hblkhd);
}

int main(int argc, char** argv) {
  if (argc > 1 && (std::string_view(argv[1]) == "--help" || std::string_view(argv[1]) == "-h")) {
    fmt::print("usage: forecast_refresh_bench [SERIES] [HISTORY_DAYS]    (default 1000 90)\n"
               "       forecast_refresh_bench --checkpoint [SERIES] [DISTINCT] [DIR]   (default 10000 100 /tmp)\n");
    return 0;
  }
  if (argc > 1 && std::string_view(argv[1]) == "--checkpoint") {
    return CheckpointBench(argc > 2 ? std::atoi(argv[2]) : 10000, argc > 3 ? std::atoi(argv[3]) : 100,
                           argc > 4 ? argv[4] : "/tmp");
  }
  const int series = argc > 1 ? std::atoi(argv[1]) : 1000;
  const int history_days = argc > 2 ? std::atoi(argv[2]) : 90;
  if (series <= 0 || history_days <= 0) {
    fmt::print(stderr, "forecast_refresh_bench: SERIES and HISTORY_DAYS must be positive numbers (--help)\n");
    return 2;
  }
  SeriesOptions options;
  double empty_bytes;  // per forecaster made and never fed: what a series costs when first seen
  {
    double before = HeapBytes();
    std::vector<std::unique_ptr<SeriesForecaster>> empty;
    for (int s = 0; s < series; ++s) empty.push_back(std::make_unique<SeriesForecaster>(options));
    empty_bytes = (HeapBytes() - before) / series;
  }
  options.history_days = history_days;
  const int64_t end = 24 * 19500 + 13;  // the last closed hour is 12:00 UTC
  const int kept = SeriesForecaster(options).kept_days();

  std::vector<std::unique_ptr<SeriesForecaster>> all;
  double rss_before = HeapBytes();
  double t0 = CpuSeconds();
  for (int s = 0; s < series; ++s) {
    HourlySeries h;
    h.first_hour = end - 24 * static_cast<int64_t>(kept);
    for (int64_t t = h.first_hour; t < end; ++t) h.values.push_back(Temperature(t, static_cast<uint64_t>(s)));
    SeriesOptions o = options;
    o.refit_phase = s % 24;  // the processor spreads them by a hash of the series' key
    all.push_back(std::make_unique<SeriesForecaster>(o));
    all.back()->Restore(h);
  }
  double restore = CpuSeconds() - t0;

  ForecastIssue issue;
  double checksum = 0;
  uint64_t digest = 14695981039346656037ULL;  // FNV-1a of every issued value's bits: a change shows
  auto refresh = [&](int64_t hour) {
    double start = CpuSeconds();
    for (int s = 0; s < series; ++s) {
      all[static_cast<size_t>(s)]->Close(hour, Temperature(hour, static_cast<uint64_t>(s)), &issue);
      checksum += issue.mean[0];
      for (const std::vector<double>* v : {&issue.mean, &issue.lower, &issue.upper}) {
        for (double x : *v) {
          uint64_t bits;
          std::memcpy(&bits, &x, sizeof bits);
          digest = (digest ^ bits) * 1099511628211ULL;
        }
      }
    }
    return CpuSeconds() - start;
  };
  // What the processor does in the idle part of each hour, after its issues (Prepare): the next
  // 00:00 issue's ridge a lead an hour, after 22:00 the local ridge's 23 leads, the books'
  // answers, Holt–Winters' run ahead. Timed apart, and added to its hour's issues: one core's
  // work in that hour. Once before the hours timed (untimed), as the processor has done it
  // through the day. MARE_REFRESH_NO_PREPARE=1: never, so the issues fit every lead themselves.
  const bool prepare = std::getenv("MARE_REFRESH_NO_PREPARE") == nullptr;
  auto prepare_all = [&] {
    double start = CpuSeconds();
    if (prepare) {
      for (auto& f : all) f->Prepare();
    }
    return CpuSeconds() - start;
  };
  prepare_all();
  double hourly = 0, hourly_prepare = 0, worst_ordinary = 0, last_prepare = 0;  // 13:00 .. 22:00 closing
  CALLGRIND_START_INSTRUMENTATION;
  CALLGRIND_ZERO_STATS;
  for (int64_t h = end; h < end + 10; ++h) {
    double issue_seconds = refresh(h), prepare_seconds = prepare_all();
    hourly = std::max(hourly, issue_seconds);
    if (h < end + 9) hourly_prepare = std::max(hourly_prepare, prepare_seconds);
    last_prepare = prepare_seconds;  // after 22:00 closes: the local ridge's besides
    worst_ordinary = std::max(worst_ordinary, issue_seconds + prepare_seconds);
  }
  CALLGRIND_DUMP_STATS_AT("ordinary");
  double day_ahead = refresh(end + 10);  // 23:00 closes: the 00:00 UTC day-ahead issue
  CALLGRIND_DUMP_STATS_AT("day-ahead");
  CALLGRIND_STOP_INSTRUMENTATION;
  // The busiest hour of one core: an hour's issues and what is prepared after them, or the
  // day-ahead issue.
  double worst = std::max(worst_ordinary, day_ahead);
  double filled_bytes = (HeapBytes() - rss_before) / series;

  // A restart with the models in the checkpoint: save, encode, decode, restore every series.
  t0 = CpuSeconds();
  ForecastCheckpoint c;
  for (int s = 0; s < series; ++s) {
    const SeriesForecaster& f = *all[static_cast<size_t>(s)];
    c.series.push_back({.sensor_id = static_cast<uint64_t>(s), .field = "temperature", .partition = 0,
                        .history = f.ModelHistory(), .latest = "", .latest_day_ahead = "", .state = f.SaveState()});
  }
  std::string bytes;
  EncodeForecastCheckpoint(c, &bytes);
  double save = CpuSeconds() - t0;
  t0 = CpuSeconds();
  ForecastCheckpoint back;
  if (!DecodeForecastCheckpoint(bytes, "bench", &back).ok()) return 1;
  for (int s = 0; s < series; ++s) {
    SeriesOptions o = options;
    o.refit_phase = s % 24;
    SeriesForecaster f(o);
    const SeriesCheckpoint& sc = back.series[static_cast<size_t>(s)];
    if (!f.RestoreState(sc.history, *sc.state).ok()) return 1;
  }
  double resume = CpuSeconds() - t0;

  fmt::print("forecast refresh, one core: {} series, {} days of history ({} kept), checksum {:.3f}, digest {:016x}\n",
             series, history_days, kept, checksum, digest);
  fmt::print("| what | CPU s | per series | 10,000 series (projected) | target |\n| --- | --- | --- | --- | --- |\n");
  fmt::print("| restore (rebuild from kept hours, at start-up) | {:.3f} | {:.2f} ms | {:.0f} s | - |\n", restore,
             restore / series * 1e3, restore / series * 1e4);
  fmt::print("| checkpoint with models (save + encode, {:.0f} KB per series) | {:.3f} | {:.2f} ms | {:.1f} s | - |\n",
             static_cast<double>(bytes.size()) / series / 1e3, save, save / series * 1e3, save / series * 1e4);
  fmt::print("| resume with models (decode + restore, at start-up) | {:.3f} | {:.2f} ms | {:.1f} s | - |\n", resume,
             resume / series * 1e3, resume / series * 1e4);
  fmt::print("| hourly refresh (an ordinary hour closes, slowest of 10) | {:.3f} | {:.1f} us | {:.2f} s | 10 s |\n", hourly,
             hourly / series * 1e6, hourly / series * 1e4);
  fmt::print("| prepare after an hour closes (the ridge's lead of that hour, off the issues' path; slowest of 13:00-21:00) | {:.3f} | {:.1f} us | {:.2f} s | - |\n",
             hourly_prepare, hourly_prepare / series * 1e6, hourly_prepare / series * 1e4);
  fmt::print("| prepare after 22:00 closes (the local ridge's 23 leads besides) | {:.3f} | {:.1f} us | {:.2f} s | - |\n",
             last_prepare, last_prepare / series * 1e6, last_prepare / series * 1e4);
  fmt::print("| day-ahead refresh (23:00 closes: the ridges' lead 24, all leads if not prepared) | {:.3f} | {:.1f} us | {:.2f} s | 10 s |\n",
             day_ahead, day_ahead / series * 1e6, day_ahead / series * 1e4);
  fmt::print("worst hour for 10,000 series: {:.2f} s ({} the 10 s target)\n", worst / series * 1e4,
             worst / series * 1e4 < 10 ? "within" : "over");
  fmt::print("memory (heap in use): {:.1f} KB per empty forecaster, {:.1f} KB per forecaster after the refreshes; "
             "{:.0f} MB and {:.0f} MB for 10,000 series\n", empty_bytes / 1e3, filled_bytes / 1e3, empty_bytes * 1e4 / 1e6,
             filled_bytes * 1e4 / 1e6);
  return 0;
}
