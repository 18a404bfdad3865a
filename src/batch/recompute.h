// Recompute: the rollups of a period computed again from the store, with the stream's own
// definitions (processors/rollup: window.h, aggregate.h), for `mare batch rollups` and
// `mare batch reconcile`. Readings are read block by block, sensor by sensor, in event-time
// order (equal times in the store's arrival order), into the stream's Aggregate; the coarser
// resolutions are folded from the finer windows in window order, as the stream derives them.
//
//   auto summary = Recompute(store, {.resolutions = r, .from_us = t0, .to_us = t1},
//                            [&](std::span<const BatchRollup> rollups) { ...; return Status::OK(); });
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "processors/rollup/aggregate.h"
#include "processors/rollup/window.h"
#include "store/store.h"

namespace mare::batch {

// One window of one numeric field of one sensor.
struct BatchRollup {
  uint32_t sensor_id = 0;
  std::string_view field;  // valid during the callback
  size_t resolution = 0;   // index into RecomputeOptions::resolutions
  int64_t window_start_us = 0;
  rollup::Aggregate aggregate;
};

struct RecomputeProgress {
  size_t sensors_done = 0;
  size_t sensors = 0;
  uint64_t readings = 0;  // read so far
  uint64_t rollups = 0;   // handed out so far
};

struct RecomputeOptions {
  // Every one must divide the longest (1m, 1h, 1d do): a window of the longest is computed
  // whole, then handed out with every finer window inside it.
  std::vector<rollup::Resolution> resolutions;
  int64_t from_us = 0;  // the period [from, to), widened to whole windows of the longest resolution
  int64_t to_us = 0;
  std::vector<uint32_t> sensors;  // empty: every sensor
  std::function<void(const RecomputeProgress&)> progress;  // after each sensor
};

struct RecomputeSummary {
  int64_t from_us = 0;  // the widened period
  int64_t to_us = 0;
  size_t sensors = 0;
  uint64_t readings = 0;
  uint64_t rollups = 0;
};

// The period [from, to) widened to whole windows of the longest resolution (empty when to <= from).
std::pair<int64_t, int64_t> WidenedPeriod(const std::vector<rollup::Resolution>& resolutions, int64_t from_us, int64_t to_us);

// Hands `emit` the rollups of each window of the longest resolution of each sensor (with all
// finer windows inside it), one call per such window, in time order, sensor after sensor.
// An error from emit stops the recompute and is returned.
using RollupConsumer = std::function<Status(std::span<const BatchRollup> rollups)>;
Result<RecomputeSummary> Recompute(const store::Store& store, const RecomputeOptions& options, const RollupConsumer& emit);

}  // namespace mare::batch
