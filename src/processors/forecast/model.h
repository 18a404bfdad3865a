// The one interface every forecast model has: fit on the hours before an origin, then forecast
// the mean of each hour from the origin on (lead 1 is the origin's own hour). Intervals are
// not the model's: they come from its out-of-sample errors (residual_book.h).
//
//   model->Fit(input, origin);                  // uses only hours < origin
//   std::vector<double> means(24);
//   model->Forecast(input, origin, means);      // means[h - 1]: hour origin + h - 1
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "processors/forecast/hourly_series.h"

namespace mare::forecast {

// What a model may read: the series to forecast and, lined up with it by hour, the sensor's
// other fields (dew point, water temperature, ...), which only some models use. A text field with
// a few classes (Beijing's wind direction class: NW, NE, SE, calm) comes as one series per class,
// its share of the hour's readings (1 when every reading was of that class): `categories`.
struct ForecastInput {
  const HourlySeries* target = nullptr;
  std::vector<const HourlySeries*> covariates;
  std::vector<const HourlySeries*> categories;
};

class ForecastModel {
 public:
  virtual ~ForecastModel() = default;
  virtual std::string_view name() const = 0;
  // Fits on the hours before origin only; a model without parameters keeps nothing.
  virtual Status Fit(const ForecastInput& input, int64_t origin) = 0;
  // means[h - 1] for hour origin + h - 1; NaN where the model has nothing to say. Reads only
  // hours before origin.
  virtual void Forecast(const ForecastInput& input, int64_t origin, std::span<double> means) const = 0;
};

// The last value a forecast may lean on: the newest of the 7 days (168 hours) before origin, else
// NaN. Shared by the naive models so that they agree on what "last" means.
double LastValue(const HourlySeries& series, int64_t origin);

}  // namespace mare::forecast
