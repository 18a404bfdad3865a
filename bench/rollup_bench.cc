// Rollup rate on one core: readings/s through the synchronous core (RollupState) and through
// the whole processor (RollupProcessor reading a prepared raw topic of the embedded log and
// appending to rollups), with 1m, 1h, 1d windows. The peer, measured in the same run, is the
// parse alone: the same records through the same parse with no aggregation.
//
// Rates are per CPU second (the thread's for the core paths, the process's for the processor),
// so that they are rates per core even when other work shares the core; wall seconds are
// printed too.
//
//   rollup_bench [READINGS] [SENSORS] [PATHS]   prints one JSON object per line (bench/rollup.py
//                                               reads them); PATHS: a comma-separated subset of
//                                               parse_only,aggregate_only,core,core_numbers,
//                                               processor,processor_json (for perf)
//
// Profiling the timed parts only (not the preparation of the readings), with perf's control fifo:
//   mkfifo /tmp/ctl
//   MARE_PERF_CTL=/tmp/ctl perf record -D -1 --control fifo:/tmp/ctl -g -- taskset -c 0 build/bin/rollup_bench ...
#include <fmt/format.h>
#include <unistd.h>

#include <time.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "common/json_writer.h"
#include "common/time.h"
#include "log/embedded_log.h"
#include "processors/rollup/rollup_metrics.h"
#include "processors/rollup/rollup_processor.h"
#include "processors/rollup/rollup_state.h"
#include "reading/timestamp.h"

using namespace mare;

namespace {

const char* const kNames[] = {"temperature", "humidity", "pressure", "water_temperature", "wave_height"};

struct Raw {
  uint32_t sensor;
  int64_t ts;
  std::string key, value;
  std::vector<NumberField> numbers;  // as ingest parses them and the embedded log carries them
};

// Readings like mare simulate's: 5 numeric fields, a location and a text field, ~230 bytes;
// sensors report every second, slightly out of order.
std::vector<Raw> MakeReadings(size_t n, uint32_t sensors) {
  std::mt19937_64 rng(1);
  std::vector<Raw> out;
  out.reserve(n);
  int64_t t = 1'705'831'200'000'000;
  for (size_t i = 0; i < n; ++i) {
    uint32_t s = static_cast<uint32_t>(i % sensors);
    if (s == 0) t += 1'000'000;
    int64_t ts = t - static_cast<int64_t>(rng() % 3'000'000);
    std::string v = "{\"timestamp\":\"" + FormatReadingTime(ts) + "\",\"sensor_id\":" + std::to_string(s);
    double base[] = {15, 70, 1013, 14, 1.5};
    std::vector<NumberField> numbers;
    for (int f = 0; f < 5; ++f) {
      v += ",\"" + std::string(kNames[f]) + "\":";
      double x = std::round((base[f] + std::uniform_real_distribution<double>(-2, 2)(rng)) * 100) / 100;
      AppendJsonNumber(&v, x);  // shortest round trip: parsing it gives x back
      numbers.push_back({kNames[f], x});
    }
    v += ",\"location\":{\"lat\":42.488629,\"lon\":3.185785},\"status\":\"ok\"}";
    out.push_back({s, ts, std::to_string(s), std::move(v), std::move(numbers)});
  }
  return out;
}

// Turns perf's recording on or off when MARE_PERF_CTL names its control fifo (see above).
void Perf(const char* command) {
  static FILE* ctl = std::getenv("MARE_PERF_CTL") ? std::fopen(std::getenv("MARE_PERF_CTL"), "w") : nullptr;
  if (ctl == nullptr) return;
  std::fprintf(ctl, "%s\n", command);
  std::fflush(ctl);
}

double Now(clockid_t clock) {
  timespec t;
  clock_gettime(clock, &t);
  return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_nsec) * 1e-9;
}

// Wall and CPU seconds since it was made; CPU of this thread, or of the process.
struct Timer {
  explicit Timer(clockid_t c = CLOCK_THREAD_CPUTIME_ID) : cpu_clock(c), wall0(Now(CLOCK_MONOTONIC)), cpu0(Now(c)) {}
  clockid_t cpu_clock;
  double wall0, cpu0;
  double wall() const { return Now(CLOCK_MONOTONIC) - wall0; }
  double cpu() const { return Now(cpu_clock) - cpu0; }
};

// readings_per_second and mb_per_second are per CPU second.
void Print(const char* name, size_t n, double cpu, double wall, size_t bytes, const std::string& extra = "") {
  Perf("disable");
  std::printf("{\"name\":\"%s\",\"readings\":%zu,\"seconds\":%.6f,\"wall_seconds\":%.6f,\"readings_per_second\":%.0f,"
              "\"mb_per_second\":%.1f%s}\n",
              name, n, cpu, wall, static_cast<double>(n) / cpu, static_cast<double>(bytes) / cpu / 1e6, extra.c_str());
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  size_t n = argc > 1 ? std::stoul(argv[1]) : 2'000'000;
  uint32_t sensors = argc > 2 ? static_cast<uint32_t>(std::stoul(argv[2])) : 1000;
  std::string paths = argc > 3 ? "," + std::string(argv[3]) + ","
                               : ",parse_only,aggregate_only,core,core_numbers,processor,processor_plain,"
                                 "processor_json,processor_dedup,processor_json_dedup,";
  auto wanted = [&](const char* path) { return paths.find("," + std::string(path) + ",") != std::string::npos; };
  constexpr int32_t kPartitions = 4;
  auto readings = MakeReadings(n, sensors);
  size_t bytes = 0;
  std::vector<log::ConsumedRecord> records;
  std::vector<int64_t> offsets(kPartitions, 0);
  for (const auto& r : readings) {
    int32_t p = log::PartitionFor(log::Partitioner::kMurmur2, r.sensor, kPartitions);
    records.push_back({p, offsets[static_cast<size_t>(p)]++, r.ts, 0, r.key, r.value});
    bytes += r.value.size();
  }
  // The same records as the embedded log hands them out: with the numbers ingest parsed.
  std::vector<log::ConsumedRecord> with_numbers = records;
  for (size_t i = 0; i < n; ++i) {
    with_numbers[i].has_numbers = true;
    with_numbers[i].numbers = readings[i].numbers;
  }
  rollup::RollupStateOptions so{.partitions = kPartitions};

  // 1. Parse only: the peer (the same On-Demand pass, no aggregation), through a state with
  //    no resolutions.
  if (wanted("parse_only")) {
    rollup::RollupState state({.resolutions = {}, .partitions = kPartitions});
    Perf("enable");
    Timer t;
    for (const auto& r : records) state.AddRecord(r);
    Print("parse_only", n, t.cpu(), t.wall(), bytes);
  }
  // 2. Aggregation only: parsed readings into RollupState::Add.
  if (wanted("aggregate_only")) {
    rollup::RollupState state(so);
    std::vector<std::vector<NumberField>> parsed;
    parsed.reserve(n);
    for (size_t i = 0; i < n; ++i) {
      std::vector<NumberField> f;
      for (int k = 0; k < 5; ++k) f.push_back({kNames[k], static_cast<double>(i % 97) + k});
      parsed.push_back(std::move(f));
    }
    Perf("enable");
    Timer t;
    for (size_t i = 0; i < n; ++i) {
      const auto& r = records[i];
      state.Add(r.partition, r.offset, r.timestamp_us, readings[i].sensor, parsed[i]);
      if ((i & 0xfff) == 0) state.AdvanceWatermark();
    }
    Print("aggregate_only", n, t.cpu(), t.wall(), bytes);
  }
  // 3. The synchronous core: raw record -> parse -> aggregate, emitting what changed every
  //    second, as the processor does by default (the emission's cost depends on the number of
  //    changed windows per second, not on the reading rate). Seconds of this thread's CPU
  //    time: what a second is on a core of its own.
  auto core = [&](const char* name, const std::vector<log::ConsumedRecord>& input) {
    rollup::RollupState state(so);
    rollup::RollupMessages out;  // reused, as the processor does
    size_t messages = 0;
    double emit_seconds = 0;
    Perf("enable");
    Timer t;
    double next_emit = 1;
    for (size_t i = 0; i < n; ++i) {
      state.AddRecord(input[i]);
      if ((i & 0xfff) == 0) {
        state.AdvanceWatermark();
        if (t.cpu() >= next_emit) {
          Timer e;
          out.Clear();
          messages += state.Emit(&out);
          emit_seconds += e.cpu();
          next_emit = t.cpu() + 1;
        }
      }
    }
    state.AdvanceWatermark();
    Timer e;
    out.Clear();
    size_t last = state.Emit(&out);
    messages += last;
    emit_seconds += e.cpu();
    Print(name, n, t.cpu(), t.wall(), bytes, fmt::format(",\"messages\":{},\"emit_seconds\":{:.4f}", messages, emit_seconds));
  };
  //    "core": records whose JSON must be parsed (from Kafka, or from writers other than
  //    ingest); "core_numbers": records with the numbers ingest parsed, as the embedded log
  //    hands them out.
  if (wanted("core")) core("core", records);
  if (wanted("core_numbers")) core("core_numbers", with_numbers);
  // 4. The whole processor: a prepared raw topic, read by RollupProcessor on its thread, until
  //    it has read every record and stopped (its last emission and checkpoint); CPU seconds of
  //    the whole process (the processor's thread, this one's polling).
  auto processor = [&](const char* name, bool numbers, bool dedup, const char* compression = "zstd") -> bool {
    char tmpl[] = "/tmp/mare_rollup_bench_XXXXXX";
    if (mkdtemp(tmpl) == nullptr) return false;
    std::string dir = tmpl;
    metrics::Registry registry;
    log::EmbeddedLogOptions lo;
    lo.dir = dir + "/log";
    lo.metrics = &registry;
    lo.fsync = log::FsyncPolicy::kNever;
    auto log = log::OpenEmbeddedLog(lo);
    if (!log.ok()) return false;
    (void)(*log)->CreateTopic({.name = "raw", .partitions = kPartitions});
    std::vector<std::vector<log::Record>> batch(kPartitions);
    for (size_t i = 0; i < n; ++i) {
      size_t p = static_cast<size_t>(records[i].partition);
      batch[p].push_back({records[i].timestamp_us, records[i].key, records[i].value, numbers, readings[i].numbers});
      if (batch[p].size() == 256 || i + 1 == n) {
        for (size_t q = 0; q < kPartitions; ++q) {
          if (!batch[q].empty() && !(*log)->Append("raw", static_cast<int32_t>(q), batch[q]).ok()) return false;
          batch[q].clear();
        }
      }
    }
    // On disk before the clock starts: otherwise the processor's first checkpoint, which syncs
    // the log, would be charged the writeback of the whole prepared topic.
    if (!(*log)->Sync().ok()) return false;
    rollup::RollupOptions o;
    o.checkpoint_dir = dir + "/rollup";
    // log.dedup: every record was appended within the 10-minute horizon, so the filter holds
    // them all (its worst case: a backlog read at once).
    o.dedup = {.enabled = dedup, .horizon_us = 600'000'000};
    o.compression = compression;
    Perf("enable");
    Timer t(CLOCK_PROCESS_CPUTIME_ID);
    auto p = rollup::RollupProcessor::Start(o, log->get(), nullptr, &registry);
    if (!p.ok()) return false;
    while ((*p)->consumed() < static_cast<int64_t>(n)) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    // Stop emits what changed and checkpoints: counted, or a run shorter than the emit interval
    // would leave out every message.
    if (!(*p)->Stop().ok()) return false;
    double cpu = t.cpu(), wall = t.wall();
    auto& h = registry.GetHistogram(rollup_metrics::kCheckpointSeconds);
    int64_t rollup_bytes = 0;  // the rollups topic on disk (compressed or not)
    if (auto infos = (*log)->Describe(o.output_topic); infos.ok()) {
      for (const auto& info : *infos) rollup_bytes += info.bytes;
    }
    Print(name, n, cpu, wall, bytes,
          fmt::format(",\"checkpoints\":{},\"checkpoint_seconds_mean\":{:.4f},\"emitted\":{},\"rollup_bytes\":{}",
                      h.count(), h.count() ? h.sum() / static_cast<double>(h.count()) : 0.0,
                      registry.GetCounter(rollup_metrics::kMessagesEmitted).value(), rollup_bytes));
    p->reset();
    log->reset();
    std::filesystem::remove_all(dir);
    return true;
  };
  //    "processor": the raw topic as ingest writes it (numbers carried); "processor_json": as
  //    other writers would (the processor parses every value).
  //    "_dedup": the same with the consumers' duplicate filter on (log.dedup, issue 19).
  if (wanted("processor") && !processor("processor", true, false)) return 1;
  //    "processor_plain": the same with the rollups topic uncompressed (rollup.compression = "none").
  if (wanted("processor_plain") && !processor("processor_plain", true, false, "none")) return 1;
  if (wanted("processor_json") && !processor("processor_json", false, false)) return 1;
  if (wanted("processor_dedup") && !processor("processor_dedup", true, true)) return 1;
  if (wanted("processor_json_dedup") && !processor("processor_json_dedup", false, true)) return 1;
  return 0;
}
