// Persistence: each hour forecast by the same hour of the last day before the origin
// ("yesterday's same hour"), the baseline that wins on land, where the daily cycle is large.
#pragma once

#include "processors/forecast/model.h"

namespace mare::forecast {

// Hour t is forecast by t - 24k, the latest such hour before the origin; where that hour is
// missing, by the last value (LastValue).
class PersistenceModel : public ForecastModel {
 public:
  std::string_view name() const override { return "persistence"; }
  Status Fit(const ForecastInput&, int64_t) override { return Status::OK(); }
  void Forecast(const ForecastInput& input, int64_t origin, std::span<double> means) const override;
};

}  // namespace mare::forecast
