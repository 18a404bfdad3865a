// Windows: event-time tumbling windows of fixed resolutions (1m, 1h, 1d, ...), aligned to the
// Unix epoch, so that a day starts at 00:00 UTC and a window is [start, start + length).
//
//   auto r = ParseResolutions("1m,1h,1d");    // Result<std::vector<Resolution>>
//   int64_t start = WindowStart(ts_us, (*r)[1].length_us);
#pragma once

#include <cstdint>
#include <limits>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace mare::rollup {

struct Resolution {
  int64_t length_us = 0;
  std::string name;  // FormatDuration(length_us): "1m", "1h", "1d"; used in keys and values
};

// "1m,1h,1d" (durations as in config: "30s", "15m", "1h", "1d", ...). Lengths must be positive
// and distinct; the list keeps the given order.
Result<std::vector<Resolution>> ParseResolutions(std::string_view list);
Resolution MakeResolution(int64_t length_us);

// The start of the window of `length_us` holding `ts_us` (floor division, so also right for
// instants before 1970). Within a window's length of the smallest int64 the start is not
// representable: the smallest int64 then, never a wrap (a checkpoint's decoder compares it with
// the start it read, and fuzzing fed it such instants).
inline int64_t WindowStart(int64_t ts_us, int64_t length_us) {
  int64_t r = ts_us % length_us;
  if (r < 0) r += length_us;
  int64_t start;
  if (__builtin_sub_overflow(ts_us, r, &start)) return std::numeric_limits<int64_t>::min();
  return start;
}

}  // namespace mare::rollup
