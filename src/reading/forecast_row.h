// Forecast rows: a record of the forecasts topic (docs/formats/forecasts.md) read back as the
// rows it stands for, one per target hour, shaped as MariaDB's forecast_hour table. Shared by
// those that keep forecasts (the MariaDB sink, the store), so that all read one issue alike.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace mare {

struct ForecastRow {
  uint32_t sensor_id = 0;
  std::string field, model;
  int64_t issued_at_us = 0, target_hour_us = 0;
  double value = 0, lower = 0, upper = 0;
  bool has_value = false, has_lower = false, has_upper = false;
  bool day_ahead = false;
};

// The rows of one forecasts record's JSON value (one per element of `hours`).
Status ReadForecastRows(std::string_view json, std::vector<ForecastRow>* out);

}  // namespace mare
