// Aggregate: the statistics of one numeric field over one window — count, min, max, mean,
// population stddev, and the first and last values by event time.
//
// Mean and variance use Welford's update, which is numerically stable and, fed the same values
// in the same order, gives the same bits. A window's readings all come from one sensor, hence
// one partition, hence in log order, both live and when recomputed after a crash: that is what
// makes a recomputed rollup identical to the one emitted before.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>

namespace mare::rollup {

struct Aggregate {
  int64_t count = 0;  // 0: the field has no reading in this window
  double mean = 0;
  double m2 = 0;  // sum of squared deviations from the mean
  double min = 0;
  double max = 0;
  int64_t first_ts = 0;
  double first = 0;
  int64_t last_ts = 0;
  double last = 0;
  bool dirty = false;  // changed since last emitted

  // Adds one value at event time ts. Values must arrive in log order: among equal event
  // times the earliest added stays `first` and the latest added becomes `last`.
  void Add(int64_t ts, double v) {
    dirty = true;
    if (count++ == 0) {
      mean = min = max = first = last = v;
      m2 = 0;
      first_ts = last_ts = ts;
      return;
    }
    double delta = v - mean;
    mean += delta / static_cast<double>(count);
    m2 += delta * (v - mean);
    min = std::min(min, v);
    max = std::max(max, v);
    if (ts < first_ts) {
      first_ts = ts;
      first = v;
    }
    if (ts >= last_ts) {
      last_ts = ts;
      last = v;
    }
  }

  double stddev() const { return count > 0 ? std::sqrt(std::max(0.0, m2) / static_cast<double>(count)) : 0.0; }
};

}  // namespace mare::rollup
