#include "feeds/simulate.h"

#include <fmt/format.h>

#include <cmath>
#include <cstdio>
#include <memory>

#include "common/time.h"
#include "feeds/feed.h"
#include "feeds/simulator.h"

namespace mare::feeds {

namespace {

// Pauses shorter than this are not worth a sleep: let the pacing catch up on the next tick.
constexpr int64_t kSimulateMinSleepMicros = 1000;
// Flat-out without --count or a --duration/--max-rate bound: start this far back.
constexpr int64_t kUnboundedFlatOutSpan = 7 * kMicrosPerDay;

int64_t TickMicros(double rate) { return std::max<int64_t>(1, std::llround(1e6 / rate)); }

}  // namespace

Status ValidateSimulateConfig(const SimulateConfig& c) {
  if (c.sensors == 0 || c.sensors > 1'000'000) return Status::InvalidArgument("--sensors must be from 1 to 1000000");
  if (!(c.rate > 0) || c.rate > 1e6) return Status::InvalidArgument("--rate must be in (0, 1000000] readings/s");
  if (c.max_rate < 0) return Status::InvalidArgument("--max-rate must not be negative");
  if (c.max_rate > 0 && !c.flat_out) return Status::InvalidArgument("--max-rate applies to --flat-out mode only");
  if (!(c.fault_probability >= 0 && c.fault_probability <= 1)) {
    return Status::InvalidArgument("--faults must be a probability in [0, 1]");
  }
  if (c.targets.empty()) return Status::InvalidArgument("no --target given");
  return Status::OK();
}

int64_t DefaultSimulateStart(const SimulateConfig& c, int64_t now) {
  if (!c.flat_out) return now;
  int64_t tick = TickMicros(c.rate);
  std::optional<uint64_t> ticks = c.count;
  if (c.duration_micros && c.max_rate > 0) {
    double by_duration = std::ceil(static_cast<double>(*c.duration_micros) / 1e6 * c.max_rate / c.sensors);
    auto bound = static_cast<uint64_t>(by_duration);
    ticks = ticks ? std::min(*ticks, bound) : bound;
  }
  if (!ticks) return now - kUnboundedFlatOutSpan;
  return now - static_cast<int64_t>(*ticks) * tick;
}

Result<FeedOutcome> RunSimulate(const SimulateConfig& c, const std::atomic<bool>& stop) {
  MARE_RETURN_IF_ERROR(ValidateSimulateConfig(c));
  BatchPolicy policy;
  policy.batch = c.batch;
  policy.flat_out = c.flat_out;
  Result<std::unique_ptr<Feed>> opened = Feed::Open("simulate", c.targets, policy, c.sender);
  if (!opened) return opened.status();
  Feed& feed = **opened;

  const int64_t tick = TickMicros(c.rate);
  const int64_t start = c.start_micros ? *c.start_micros : DefaultSimulateStart(c, NowMicros());
  if (c.flat_out && !c.start_micros && !c.count && !(c.duration_micros && c.max_rate > 0)) {
    fmt::print(stderr, "simulate: flat-out without --count starts 7 days back; readings may run ahead of the clock\n");
  }
  std::vector<Buoy> fleet;
  fleet.reserve(c.sensors);
  for (uint32_t i = 0; i < c.sensors; ++i) fleet.emplace_back(i + 1, c.seed, c.fault_probability);

  Reading reading;
  const int64_t wall_start = MonotonicMicros();
  const int64_t wall_end = c.duration_micros ? wall_start + *c.duration_micros : INT64_MAX;
  for (uint64_t k = 0; !c.count || k < *c.count; ++k) {
    if (stop.load(std::memory_order_relaxed) || !feed.refusal().ok()) break;
    int64_t now = MonotonicMicros();
    if (now >= wall_end) break;
    // When this tick is due on the wall clock: at simulated pace, or at --max-rate.
    int64_t due = now;
    if (!c.flat_out) {
      due = wall_start + static_cast<int64_t>(k) * tick;
    } else if (c.max_rate > 0) {
      due = wall_start + static_cast<int64_t>(static_cast<double>(k) * c.sensors / c.max_rate * 1e6);
    }
    if (due - now >= kSimulateMinSleepMicros) {
      feed.Flush();  // nothing waits across a pause
      if (!SleepUntil(std::min(due, wall_end), stop)) break;
      if (MonotonicMicros() >= wall_end) break;
    }
    int64_t t = start + static_cast<int64_t>(k) * tick;
    for (Buoy& buoy : fleet) {
      buoy.Read(t, &reading);
      feed.Add(reading);
    }
    feed.EndTick();
    feed.MaybeReportProgress();
  }
  if (feed.refusal().ok()) feed.Flush();
  if (!feed.refusal().ok()) return feed.refusal();
  FeedOutcome outcome;
  outcome.readings = feed.readings();
  outcome.send_errors = feed.send_errors();
  outcome.summary = feed.Summary();
  return outcome;
}

}  // namespace mare::feeds
