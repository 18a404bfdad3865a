// Aggregate: the statistics of one numeric field over one window — count, min, max, mean,
// population stddev, and the first and last values by event time.
//
// Mean and variance use Welford's update, which is numerically stable and, fed the same values
// in the same order, gives the same bits. A window's readings all come from one sensor, hence
// one partition, hence in log order, both live and when recomputed after a crash: that is what
// makes a recomputed rollup identical to the one emitted before.
//
// A coarser window whose length is a multiple of a finer one's is not fed reading by reading:
// it is the Merge (Chan et al.'s parallel update) of the finer windows inside it, always in
// window order (rollup_state.h), which is as deterministic.
//
// Built with -ffp-contract=off (CMakeLists.txt): a multiply-add fused or not would change the
// bits with the compiler's choice, and a restarted processor must reproduce them.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>

namespace mare::rollup {

struct Aggregate {
  // Bits of `dirty`.
  static constexpr uint8_t kToEmit = 1;   // changed since last emitted (or its window closed)
  static constexpr uint8_t kChanged = 2;  // got readings not yet passed on to the coarser windows derived from it

  int64_t count = 0;  // 0: the field has no reading in this window
  double mean = 0;
  double m2 = 0;  // sum of squared deviations from the mean
  double min = 0;
  double max = 0;
  int64_t first_ts = 0;
  double first = 0;
  int64_t last_ts = 0;
  double last = 0;
  uint8_t dirty = 0;

  // Adds one value at event time ts. Values must arrive in log order: among equal event
  // times the earliest added stays `first` and the latest added becomes `last`.
  void Add(int64_t ts, double v) {
    dirty = kToEmit | kChanged;
    if (count++ == 0) {
      mean = min = max = first = last = v;
      m2 = 0;
      first_ts = last_ts = ts;
      return;
    }
    double delta = v - mean;
    mean += delta / static_cast<double>(count);
    m2 += delta * (v - mean);
    min = v < min ? v : min;  // branchless (minsd/maxsd); values are finite
    max = v > max ? v : max;
    if (ts < first_ts) {
      first_ts = ts;
      first = v;
    }
    if (ts >= last_ts) {
      last_ts = ts;
      last = v;
    }
  }

  // Merges in the aggregate of other readings, all later in window order (their event times
  // are after this one's, or, for a tie, they came later in the log). Keeps `dirty`.
  void Merge(const Aggregate& o) {
    if (o.count == 0) return;
    if (count == 0) {
      uint8_t keep = dirty;
      *this = o;
      dirty = keep;
      return;
    }
    double n1 = static_cast<double>(count), n2 = static_cast<double>(o.count);
    double n = n1 + n2;
    double delta = o.mean - mean;
    mean += delta * (n2 / n);
    m2 += o.m2 + delta * delta * (n1 * n2 / n);
    count += o.count;
    min = o.min < min ? o.min : min;
    max = o.max > max ? o.max : max;
    if (o.first_ts < first_ts) {
      first_ts = o.first_ts;
      first = o.first;
    }
    if (o.last_ts >= last_ts) {
      last_ts = o.last_ts;
      last = o.last;
    }
  }

  double stddev() const { return count > 0 ? std::sqrt(std::max(0.0, m2) / static_cast<double>(count)) : 0.0; }
};

}  // namespace mare::rollup
