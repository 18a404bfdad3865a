// The forecast processor's wire: reading an hourly rollup from the rollups topic
// (docs/formats/rollups.md) and writing one forecast issue as a record of the forecasts topic
// (docs/formats/forecasts.md). Both are pure functions of their input, so that a replay writes
// the same bytes.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/status.h"
#include "processors/forecast/series_forecaster.h"

namespace mare::forecast {

// A rollup record's key, "<sensor_id>/<field>/<resolution>/<window_start_us>"; false when the
// key is not one.
struct RollupKey {
  uint64_t sensor_id = 0;
  std::string_view field;
  std::string_view resolution;
  int64_t window_start_us = 0;
};
bool ParseRollupKey(std::string_view key, RollupKey* out);

// The window's mean and whether it is final, from a rollup record's value.
Status ParseRollupValue(std::string_view value, double* mean, bool* final);

// The forecasts topic's key "<sensor_id>/<field>/<issued_at_us>" and JSON value of an issue.
std::string ForecastKey(uint64_t sensor_id, std::string_view field, int64_t origin_hour);
std::string ForecastValue(uint64_t sensor_id, std::string_view field, const ForecastIssue& issue);

}  // namespace mare::forecast
