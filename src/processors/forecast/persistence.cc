#include "processors/forecast/persistence.h"

namespace mare::forecast {

void PersistenceModel::Forecast(const ForecastInput& input, int64_t origin, std::span<double> means) const {
  const HourlySeries& y = *input.target;
  double last = LastValue(y, origin);
  for (size_t i = 0; i < means.size(); ++i) {
    int64_t days_back = static_cast<int64_t>(i) / 24 + 1;
    double v = y.At(origin + static_cast<int64_t>(i) - 24 * days_back);
    means[i] = std::isnan(v) ? last : v;
  }
}

}  // namespace mare::forecast
