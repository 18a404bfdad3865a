// Recent hourly climatology: each hour forecast by the mean of that hour of the day over the
// last 7 days before the origin, a smoother persistence.
#pragma once

#include "processors/forecast/model.h"

namespace mare::forecast {

// Hour t: the mean of the present values among t - 24k for the 7 latest such hours before the
// origin; when all 7 are missing, the last value (LastValue).
class ClimatologyModel : public ForecastModel {
 public:
  std::string_view name() const override { return "climatology_7d"; }
  Status Fit(const ForecastInput&, int64_t) override { return Status::OK(); }
  void Forecast(const ForecastInput& input, int64_t origin, std::span<double> means) const override;
};

// The 7-day mean at hour t as ClimatologyModel forecasts it from origin (NaN when none); the
// ridge regression uses it as a feature.
double SameHourMean(const HourlySeries& series, int64_t origin, int64_t hour, int days);

}  // namespace mare::forecast
