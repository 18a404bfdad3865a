// The rolling-origin backtest: every day of a series, a forecast issued at 00:00 UTC for the
// next 24 hours from the hours before it only, judged against what came; per model and for the
// ensemble: MAE, RMSE, bias, skill against persistence and the best naive baseline, and the 80 %
// interval's coverage. What `mare forecast backtest` prints.
//
//   Result<BacktestReport> r = RunBacktest(input, {});
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "common/status.h"
#include "processors/forecast/ensemble.h"
#include "processors/forecast/model.h"
#include "processors/forecast/residual_book.h"
#include "processors/forecast/selection.h"

namespace mare::forecast {

struct BacktestOptions {
  int horizon = 24;           // hours after each origin that are judged
  int min_history_days = 7;   // the first origin has at least this many days before it
  ResidualOptions residuals;
  EnsembleOptions ensemble;
  SelectionOptions selection;
  std::function<void(int64_t done_days, int64_t total_days)> progress;  // called after each day
};

struct ModelScore {
  std::string model;
  int64_t hours = 0;            // judged hours (the same for every model)
  int64_t fallback_hours = 0;   // of those, hours the model had no forecast for (judged as the ensemble's)
  double mae = 0, rmse = 0, bias = 0;  // bias: mean of forecast minus actual
  double skill_persistence = 0;  // 1 - MAE / persistence's MAE
  double skill_best_naive = 0;   // 1 - MAE / the best naive baseline's MAE
  int64_t interval_hours = 0;    // judged hours that had an interval
  double coverage = 0;           // share of those inside it
  double seconds = 0;            // fit + forecast, all days
};

struct BacktestReport {
  int64_t first_origin = 0;  // hours since the epoch, 00:00 UTC
  int64_t days = 0;          // origins judged
  std::string best_naive;
  double seconds = 0;        // the whole backtest
  // AllModels() order, then "ensemble" (of the first kEnsembleModels), then "selected": per
  // origin the ensemble blended with the model outside it at the selected weight (selection.h),
  // what the processor issues.
  std::vector<ModelScore> models;
  std::map<double, int64_t> weight_days;  // origins by the weight selected for the local ridge
};

Result<BacktestReport> RunBacktest(const ForecastInput& input, const BacktestOptions& options = {});

}  // namespace mare::forecast
