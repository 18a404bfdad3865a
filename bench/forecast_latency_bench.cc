// How long after an hour closes its forecast is in the forecasts topic (issue 14: "within 1 s"),
// through the real rollup and forecast processors over the embedded log, as `mare run` runs them.
// N sensors with 90 days of history each (a forecast checkpoint of their models, as after a
// restart) send a reading in the hour; then one sensor's reading 10 minutes (the lateness) past
// the hour's end moves the watermark past it: the hour closes for all N. Printed: from that
// reading's append, when the final 1h rollups and the forecasts (origin: the next hour) are in
// their topics, first / median / 99th percentile / last, and how many forecasts came within 1 s.
// Twice: an ordinary hour (22:00 closing) and the day-ahead hour (23:00 closing, the ridge fit).
// Then `quiet`: one sensor whose last reading is 2 s before its hour's end and then nothing,
// lateness 5 s: its hour closes (the rollups' idle watermark) once 7 s of silence have passed.
// Wall seconds, and the process's CPU seconds from the close to the last forecast (both
// processors, and this program's polling); the machine may be shared: say so beside any figure quoted.
//
//   forecast_latency_bench [--threads N] [SERIES...]     (default: 1 10000; N: forecast.issue_threads, 0 = one per hardware thread)
#include <fmt/format.h>
#include <stdlib.h>
#include <time.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <memory>
#include <numbers>
#include <string>
#include <thread>
#include <vector>

#include "common/metrics.h"
#include "common/time.h"
#include "log/embedded_log.h"
#include "log/partitioner.h"
#include "processors/forecast/forecast_checkpoint.h"
#include "processors/forecast/forecast_processor.h"
#include "processors/forecast/series_forecaster.h"
#include "processors/rollup/rollup_processor.h"
#include "reading/timestamp.h"

using namespace mare;

namespace {

constexpr int32_t kPartitions = 4;
constexpr int64_t kHour = 3'600'000'000;

double Temperature(int64_t hour, uint64_t series) {
  double day = 2 * std::numbers::pi * static_cast<double>(hour % 24) / 24;
  double drift = 3 * std::sin(static_cast<double>(hour) / 400.0 + static_cast<double>(series));
  uint64_t x = static_cast<uint64_t>(hour) * 6364136223846793005ULL + series * 1442695040888963407ULL;
  return 12 + 4 * std::sin(day) + drift + static_cast<double>((x >> 33) % 1000) / 1000.0 - 0.5;
}

// The processor's refit phase of a series (ForecastProcessor::series_options).
int RefitPhase(uint64_t sensor) {
  std::string name = std::to_string(sensor) + "/temperature";
  uint64_t h = 14695981039346656037ULL;
  for (unsigned char c : name) h = (h ^ c) * 1099511628211ULL;
  return static_cast<int>(h % 24);
}

std::string Reading(uint64_t sensor, int64_t ts_us, double temperature) {
  return fmt::format("{{\"timestamp\":\"{}\",\"sensor_id\":{},\"temperature\":{:.3f}}}", FormatReadingTime(ts_us), sensor,
                     temperature);
}

double Seconds(int64_t from_us, int64_t to_us) { return static_cast<double>(to_us - from_us) / 1e6; }

struct Arrivals {
  std::vector<int64_t> rollups, forecasts;  // monotonic us
  double cpu_seconds = 0;                   // the process's, from the close to the last forecast
};

double ProcessCpuSeconds() {
  timespec t{};
  ::clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_nsec) / 1e9;
}

class Bench {
 public:
  Bench(int series, int64_t lateness_us, int threads) : series_(series), lateness_us_(lateness_us), threads_(threads) {
    char tmpl[] = "/tmp/mare-forecast-latency-XXXXXX";
    dir_ = ::mkdtemp(tmpl);
  }
  ~Bench() {
    forecast_.reset();
    rollup_.reset();
    log_.reset();
    std::filesystem::remove_all(dir_);
  }

  // The log, a forecast checkpoint of `series_` warm series whose last closed hour is last_closed,
  // and both processors started.
  bool Start(int64_t last_closed) {
    log::EmbeddedLogOptions lo;
    lo.dir = dir_ + "/log";
    lo.metrics = &registry_;
    auto l = log::OpenEmbeddedLog(lo);
    if (!l.ok()) return Fail(l.status());
    log_ = std::move(*l);
    if (Status s = log_->CreateTopic({.name = "raw", .partitions = kPartitions}); !s.ok()) return Fail(s);
    // One warm forecaster per refit phase in use (a rebuild costs ~0.1 s), shared by the series.
    forecast::SeriesOptions so;
    const int kept = forecast::SeriesForecaster(so).kept_days();
    std::map<int, std::unique_ptr<forecast::SeriesForecaster>> by_phase;
    forecast::ForecastCheckpoint c;
    c.horizon = 24;
    c.history_days = static_cast<uint32_t>(so.history_days);
    c.refit_hours = 24;
    c.next_offsets.assign(kPartitions, 0);
    const log::Partitioner partitioner = log_->TopicPartitioner("raw");
    for (int s = 1; s <= series_; ++s) {
      int phase = RefitPhase(static_cast<uint64_t>(s));
      auto& f = by_phase[phase];
      if (!f) {
        forecast::HourlySeries h;
        h.first_hour = last_closed + 1 - 24 * static_cast<int64_t>(kept);
        for (int64_t t = h.first_hour; t <= last_closed; ++t) h.values.push_back(Temperature(t, static_cast<uint64_t>(phase)));
        forecast::SeriesOptions o = so;
        o.refit_phase = phase;
        f = std::make_unique<forecast::SeriesForecaster>(o);
        f->Restore(h);
      }
      c.series.push_back({.sensor_id = static_cast<uint64_t>(s), .field = "temperature",
                          .partition = log::PartitionFor(partitioner, static_cast<uint64_t>(s), kPartitions),
                          .history = f->ModelHistory(), .latest = {}, .latest_day_ahead = {}, .state = f->SaveState()});
    }
    std::filesystem::create_directories(dir_ + "/forecast");
    std::string scratch;
    if (Status s = forecast::WriteForecastCheckpoint(dir_ + "/forecast/checkpoint", c, &scratch); !s.ok()) return Fail(s);

    rollup::RollupOptions ro;  // mare run's defaults but the lateness
    ro.lateness_us = lateness_us_;
    ro.checkpoint_dir = dir_ + "/rollup";
    auto r = rollup::RollupProcessor::Start(ro, log_.get(), nullptr, &registry_);
    if (!r.ok()) return Fail(r.status());
    rollup_ = std::move(*r);
    forecast::ForecastOptions fo;  // mare run's defaults
    fo.checkpoint_dir = dir_ + "/forecast";
    fo.issue_threads = threads_;
    auto f = forecast::ForecastProcessor::Start(fo, log_.get(), &registry_);
    if (!f.ok()) return Fail(f.status());
    forecast_ = std::move(*f);
    for (const char* topic : {"rollups", "forecasts"}) {
      auto consumer = log_->Subscribe(std::string("bench-") + topic, topic);
      if (!consumer.ok()) return Fail(consumer.status());
      consumers_.push_back(std::move(*consumer));
    }
    return true;
  }

  // Appends readings of sensors [from, to] at ts_us; returns the monotonic time after the append.
  int64_t Append(int from, int to, int64_t ts_us) {
    std::vector<std::vector<log::Record>> by_partition(kPartitions);
    std::vector<std::string> keys, values;
    keys.reserve(static_cast<size_t>(to - from + 1));
    values.reserve(keys.capacity());
    const log::Partitioner partitioner = log_->TopicPartitioner("raw");
    for (int s = from; s <= to; ++s) {
      keys.push_back(std::to_string(s));
      values.push_back(Reading(static_cast<uint64_t>(s), ts_us, Temperature(ts_us / kHour, static_cast<uint64_t>(s))));
    }
    for (int s = from; s <= to; ++s) {
      size_t i = static_cast<size_t>(s - from);
      by_partition[static_cast<size_t>(log::PartitionFor(partitioner, static_cast<uint64_t>(s), kPartitions))].push_back(
          {.timestamp_us = ts_us, .key = keys[i], .value = values[i]});
    }
    for (int32_t p = 0; p < kPartitions; ++p) {
      if (by_partition[static_cast<size_t>(p)].empty()) continue;
      if (Status s = log_->Append("raw", p, by_partition[static_cast<size_t>(p)]); !s.ok()) {
        fmt::print(stderr, "append: {}\n", s.ToString());
        std::exit(1);
      }
    }
    return MonotonicMicros();
  }

  // Reads both topics until `series_` final rollups of `hour` and forecasts issued at hour + 1
  // are in, or `timeout_s` passed; their arrival times.
  Arrivals Watch(int64_t hour, double timeout_s, double cpu_at_close) {
    Arrivals a;
    const std::string rollup_suffix = "/temperature/1h/" + std::to_string(hour * kHour);
    const std::string forecast_suffix = "/temperature/" + std::to_string((hour + 1) * kHour);
    const int64_t deadline = MonotonicMicros() + static_cast<int64_t>(timeout_s * 1e6);
    std::vector<log::ConsumedRecord> batch;
    while (MonotonicMicros() < deadline &&
           (a.rollups.size() < static_cast<size_t>(series_) || a.forecasts.size() < static_cast<size_t>(series_))) {
      for (size_t t = 0; t < 2; ++t) {
        if (!consumers_[t]->Poll(&batch, 100000, std::chrono::milliseconds(1)).ok()) std::exit(1);
        int64_t now = MonotonicMicros();
        for (const auto& r : batch) {
          if (t == 0 && r.key.ends_with(rollup_suffix) && r.value.ends_with("\"final\":true}")) a.rollups.push_back(now);
          if (t == 1 && r.key.ends_with(forecast_suffix)) {
            a.forecasts.push_back(now);
            a.cpu_seconds = ProcessCpuSeconds() - cpu_at_close;
          }
        }
      }
    }
    return a;
  }

  // Waits until both processors have read everything (the forecast processor: the rollups
  // topic to its end, and what it does ahead for the next hour) and drains the bench's consumers.
  void Settle() {
    auto forecast_done = [&] {
      auto rollups = log_->Describe("rollups");
      if (!rollups.ok()) return false;
      for (const log::PartitionInfo& p : *rollups) {
        if (forecast_->consumed(p.partition) < p.end_offset) return false;
      }
      return true;
    };
    for (int i = 0; i < 6000; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
      if (i > 150 && rollup_->lag() == 0 && forecast_->lag() == 0 && forecast_done() && forecast_->preparing() == 0) break;
    }
    std::vector<log::ConsumedRecord> batch;
    for (auto& c : consumers_) {
      do {
        if (!c->Poll(&batch, 100000, std::chrono::milliseconds(5)).ok()) std::exit(1);
      } while (!batch.empty());
    }
  }

  int series() const { return series_; }

 private:
  bool Fail(const Status& s) {
    fmt::print(stderr, "forecast_latency_bench: {}\n", s.ToString());
    return false;
  }

  const int series_;
  const int64_t lateness_us_;
  const int threads_;
  std::string dir_;
  metrics::Registry registry_;
  std::unique_ptr<log::Log> log_;
  std::unique_ptr<rollup::RollupProcessor> rollup_;
  std::unique_ptr<forecast::ForecastProcessor> forecast_;
  std::vector<std::unique_ptr<log::Consumer>> consumers_;
};

std::string Quantiles(std::vector<int64_t> at, int64_t from, size_t expected) {
  if (at.empty()) return "none | none | none | none";
  std::sort(at.begin(), at.end());
  auto q = [&](double p) { return Seconds(from, at[std::min(at.size() - 1, static_cast<size_t>(p * static_cast<double>(at.size())))]); };
  std::string out = fmt::format("{:.3f} | {:.3f} | {:.3f} | {:.3f}", Seconds(from, at.front()), q(0.5), q(0.99),
                                Seconds(from, at.back()));
  if (at.size() < expected) out += fmt::format(" ({} of {})", at.size(), expected);
  return out;
}

void Row(const std::string& what, int series, const Arrivals& a, int64_t closed_at) {
  size_t within = static_cast<size_t>(std::count_if(a.forecasts.begin(), a.forecasts.end(),
                                                    [&](int64_t t) { return t - closed_at <= 1'000'000; }));
  fmt::print("| {} | {} | {} | {} | {:.1f} % | {:.2f} |\n", series, what, Quantiles(a.rollups, closed_at, static_cast<size_t>(series)),
             Quantiles(a.forecasts, closed_at, static_cast<size_t>(series)),
             100.0 * static_cast<double>(within) / series, a.cpu_seconds);
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<int> sizes;
  int threads = 0;
  for (int i = 1; i < argc; ++i) {
    if (std::string_view(argv[i]) == "--threads" && i + 1 < argc) {
      threads = std::atoi(argv[++i]);
    } else {
      sizes.push_back(std::atoi(argv[i]));
    }
  }
  if (sizes.empty()) sizes = {1, 10000};
  const int64_t day = 24 * 19700;  // 2023-12-08
  fmt::print("forecast.issue_threads {}\n", threads);
  fmt::print("Seconds from the closing reading's append (the hour closes) to the final 1h rollups and the forecasts\n"
             "in their topics (first | median | p99 | last); mare run's settings (lateness 10 min, forecast checkpoint every 10 s).\n\n");
  fmt::print("| series | hour | rollups first | median | p99 | last | forecasts first | median | p99 | last | forecasts within 1 s | CPU s |\n");
  fmt::print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n");
  for (int n : sizes) {
    Bench b(n, 600'000'000, threads);
    const int64_t hour = day + 22;
    if (!b.Start(hour - 1)) return 1;
    // Ordinary hour: 22:00 closes, the forecast issued at 23:00.
    b.Append(1, n, hour * kHour + 30 * 60'000'000LL);
    b.Settle();
    double cpu = ProcessCpuSeconds();
    int64_t closed = b.Append(1, 1, (hour + 1) * kHour + 10 * 60'000'000LL);
    Row("22:00 (ordinary)", n, b.Watch(hour, 120, cpu), closed);
    // The day-ahead hour: 23:00 closes, the forecast issued at 00:00.
    b.Append(2, n, (hour + 1) * kHour + 30 * 60'000'000LL);
    b.Settle();
    cpu = ProcessCpuSeconds();
    closed = b.Append(1, 1, (hour + 2) * kHour + 10 * 60'000'000LL);
    Row("23:00 (day-ahead)", n, b.Watch(hour + 1, 120, cpu), closed);
  }
  {
    // A sensor goes quiet 2 s before its hour's end; lateness 5 s: the hour closes after 7 s of silence.
    Bench b(1, 5'000'000, threads);
    const int64_t hour = day + 13;
    if (!b.Start(hour - 1)) return 1;
    b.Append(1, 1, hour * kHour + 30 * 60'000'000LL);
    b.Settle();
    double cpu = ProcessCpuSeconds();
    int64_t last = b.Append(1, 1, (hour + 1) * kHour - 2'000'000);
    Arrivals a = b.Watch(hour, 30, cpu);
    Row("quiet: 13:00, lateness 5 s, from 7 s after its last reading", 1, a, last + 7'000'000);
  }
  double load[3] = {0, 0, 0};
  if (::getloadavg(load, 3) > 0) fmt::print("\nload average {:.2f} {:.2f} {:.2f} on {} cores\n", load[0], load[1], load[2], std::thread::hardware_concurrency());
  return 0;
}
