#include "processors/forecast/hourly_series.h"

#include "common/time.h"

namespace mare::forecast {

int64_t HourOf(int64_t time_micros) {
  int64_t q = time_micros / kMicrosPerHour;
  if (time_micros % kMicrosPerHour < 0) --q;  // before 1970: round down, not toward zero
  return q;
}

double HourlySeries::LastBefore(int64_t before, int64_t max_age) const {
  for (int64_t h = before - 1; h >= before - max_age && h >= first_hour; --h) {
    double v = At(h);
    if (!std::isnan(v)) return v;
  }
  return kMissing;
}

double HourlySeries::MeanOver(int64_t from, int64_t to, int64_t min_count) const {
  double sum = 0;
  int64_t n = 0;
  for (int64_t h = from; h < to; ++h) {
    double v = At(h);
    if (!std::isnan(v)) {
      sum += v;
      ++n;
    }
  }
  return n >= min_count && n > 0 ? sum / static_cast<double>(n) : kMissing;
}

void HourlyMeans::Add(int64_t time_micros, double value) {
  if (!std::isfinite(value)) return;
  int64_t hour = HourOf(time_micros);
  if (sums_.empty()) {
    first_hour_ = hour;
  } else if (hour < first_hour_) {
    size_t grow = static_cast<size_t>(first_hour_ - hour);
    sums_.insert(sums_.begin(), grow, 0.0);
    counts_.insert(counts_.begin(), grow, 0);
    first_hour_ = hour;
  }
  size_t i = static_cast<size_t>(hour - first_hour_);
  if (i >= sums_.size()) {
    sums_.resize(i + 1, 0.0);
    counts_.resize(i + 1, 0);
  }
  sums_[i] += value;
  ++counts_[i];
}

HourlySeries HourlyMeans::Build() const { return Build(first_hour(), end_hour()); }

HourlySeries HourlyMeans::Build(int64_t first_hour, int64_t end_hour) const {
  HourlySeries series;
  series.first_hour = first_hour;
  series.values.assign(static_cast<size_t>(end_hour > first_hour ? end_hour - first_hour : 0), kMissing);
  for (size_t i = 0; i < sums_.size(); ++i) {
    int64_t hour = first_hour_ + static_cast<int64_t>(i);
    if (counts_[i] == 0 || hour < first_hour || hour >= end_hour) continue;
    series.values[static_cast<size_t>(hour - first_hour)] = sums_[i] / counts_[i];
  }
  return series;
}

}  // namespace mare::forecast
