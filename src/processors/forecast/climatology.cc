#include "processors/forecast/climatology.h"

namespace mare::forecast {

double SameHourMean(const HourlySeries& series, int64_t origin, int64_t hour, int days) {
  int64_t first_back = (hour - origin) / 24 + 1;  // the latest t - 24k before origin
  double sum = 0;
  int n = 0;
  for (int64_t k = first_back; k < first_back + days; ++k) {
    double v = series.At(hour - 24 * k);
    if (!std::isnan(v)) {
      sum += v;
      ++n;
    }
  }
  return n > 0 ? sum / n : kMissing;
}

void ClimatologyModel::Forecast(const ForecastInput& input, int64_t origin, std::span<double> means) const {
  const HourlySeries& y = *input.target;
  double last = LastValue(y, origin);
  for (size_t i = 0; i < means.size(); ++i) {
    double v = SameHourMean(y, origin, origin + static_cast<int64_t>(i), 7);
    means[i] = std::isnan(v) ? last : v;
  }
}

}  // namespace mare::forecast
