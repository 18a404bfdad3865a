// An hourly series with gaps: the value of each UTC hour (hours since the epoch), NaN where
// the hour has none. What every forecast model reads, built from readings by HourlyMeans.
//
//   HourlyMeans means;
//   for (each reading) means.Add(reading.time_micros, *reading.Number("temperature"));
//   HourlySeries series = means.Build();
//   double v = series.At(series.first_hour);
#pragma once

#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

namespace mare::forecast {

constexpr double kMissing = std::numeric_limits<double>::quiet_NaN();

// The UTC hour (hours since the epoch) that holds a time in microseconds, rounded down.
int64_t HourOf(int64_t time_micros);

struct HourlySeries {
  int64_t first_hour = 0;      // the hour of values[0]
  std::vector<double> values;  // one per hour from first_hour; NaN when the hour has no value

  int64_t end_hour() const { return first_hour + static_cast<int64_t>(values.size()); }
  // The hour's value, NaN when missing or outside the series.
  double At(int64_t hour) const {
    if (hour < first_hour || hour >= end_hour()) return kMissing;
    return values[static_cast<size_t>(hour - first_hour)];
  }
  // The latest value strictly before `before`, looking back at most max_age hours; NaN if none.
  double LastBefore(int64_t before, int64_t max_age) const;
  // Mean of the values in [from, to), NaN when fewer than min_count are present.
  double MeanOver(int64_t from, int64_t to, int64_t min_count) const;
};

// The mean of each UTC hour's values: readings in any order, non-finite values ignored.
class HourlyMeans {
 public:
  void Add(int64_t time_micros, double value);
  bool empty() const { return sums_.empty(); }
  // Covers from the first to the last hour seen; hours without a value are NaN.
  HourlySeries Build() const;
  // The same over [first_hour, end_hour), so that several fields of one sensor line up.
  HourlySeries Build(int64_t first_hour, int64_t end_hour) const;
  int64_t first_hour() const { return first_hour_; }
  int64_t end_hour() const { return first_hour_ + static_cast<int64_t>(sums_.size()); }

 private:
  int64_t first_hour_ = 0;
  std::vector<double> sums_;
  std::vector<uint32_t> counts_;
};

}  // namespace mare::forecast
