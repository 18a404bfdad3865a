// Last value: every hour forecast by the newest value before the origin, the baseline that
// wins over open water, where the daily cycle is small and the weather changes slowly.
#pragma once

#include "processors/forecast/model.h"

namespace mare::forecast {

class LastValueModel : public ForecastModel {
 public:
  std::string_view name() const override { return "last_value"; }
  Status Fit(const ForecastInput&, int64_t) override { return Status::OK(); }
  void Forecast(const ForecastInput& input, int64_t origin, std::span<double> means) const override;
};

}  // namespace mare::forecast
