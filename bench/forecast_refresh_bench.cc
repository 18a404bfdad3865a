// The forecast processor's refresh cost on one core: N series (sensors × fields), each with 90
// days of hourly history, restored (as at a restart), then one hour closing for every series
// (an ordinary hour's issue: baselines, Holt–Winters run on, ensemble and intervals; the series
// whose refit phase it is refit Holt–Winters, 1 in 24 as the processor spreads them), then the
// hour before 00:00 UTC (the day-ahead issue: the ridge fit besides).
// CPU seconds of this thread; the issue's target: 10,000 series refreshed in under 10 s.
//
//   forecast_refresh_bench [SERIES] [HISTORY_DAYS]    (default 1000 90)
#include <fmt/format.h>
#include <time.h>

#include <cmath>
#include <algorithm>
#include <cstdlib>
#include <memory>
#include <numbers>
#include <vector>

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

}  // namespace

int main(int argc, char** argv) {
  const int series = argc > 1 ? std::atoi(argv[1]) : 1000;
  const int history_days = argc > 2 ? std::atoi(argv[2]) : 90;
  SeriesOptions options;
  options.history_days = history_days;
  const int64_t end = 24 * 19500 + 13;  // the last closed hour is 12:00 UTC
  const int kept = SeriesForecaster(options).kept_days();

  std::vector<std::unique_ptr<SeriesForecaster>> all;
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
  auto refresh = [&](int64_t hour) {
    double start = CpuSeconds();
    for (int s = 0; s < series; ++s) {
      all[static_cast<size_t>(s)]->Close(hour, Temperature(hour, static_cast<uint64_t>(s)), &issue);
      checksum += issue.mean[0];
    }
    return CpuSeconds() - start;
  };
  double hourly = 0;  // the slowest of the ordinary hours 13:00 .. 22:00 closing
  for (int64_t h = end; h < end + 10; ++h) hourly = std::max(hourly, refresh(h));
  double day_ahead = refresh(end + 10);  // 23:00 closes: the 00:00 UTC day-ahead issue
  double worst = std::max(hourly, day_ahead);

  fmt::print("forecast refresh, one core: {} series, {} days of history ({} kept), checksum {:.3f}\n", series,
             history_days, kept, checksum);
  fmt::print("| what | CPU s | per series | 10,000 series (projected) | target |\n| --- | --- | --- | --- | --- |\n");
  fmt::print("| restore (rebuild from kept hours, at start-up) | {:.3f} | {:.2f} ms | {:.0f} s | - |\n", restore,
             restore / series * 1e3, restore / series * 1e4);
  fmt::print("| hourly refresh (an ordinary hour closes, slowest of 10) | {:.3f} | {:.1f} us | {:.2f} s | 10 s |\n", hourly,
             hourly / series * 1e6, hourly / series * 1e4);
  fmt::print("| day-ahead refresh (23:00 closes: ridge fits) | {:.3f} | {:.1f} us | {:.2f} s | 10 s |\n", day_ahead,
             day_ahead / series * 1e6, day_ahead / series * 1e4);
  fmt::print("worst hour for 10,000 series: {:.2f} s ({} the 10 s target)\n", worst / series * 1e4,
             worst / series * 1e4 < 10 ? "within" : "over");
  return 0;
}
