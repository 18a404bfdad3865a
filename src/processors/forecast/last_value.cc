#include "processors/forecast/last_value.h"

#include <algorithm>

namespace mare::forecast {

void LastValueModel::Forecast(const ForecastInput& input, int64_t origin, std::span<double> means) const {
  std::fill(means.begin(), means.end(), LastValue(*input.target, origin));
}

}  // namespace mare::forecast
