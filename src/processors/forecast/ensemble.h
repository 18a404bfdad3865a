// The ensemble: per series and lead, a weighted mean of the models' forecasts, weighted by
// each model's rolling out-of-sample MAE there (residual_book.h), so that the last value leads
// over water and yesterday's same hour on land without being told which is which.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "processors/forecast/residual_book.h"

namespace mare::forecast {

// The defaults were chosen on the four real series of the forecast backtest (docs/forecast.md's
// table): 42 days and MAE^-8 over every model beat 28 days and the top 3 by MAE^-4 on all four
// (a ridge that is best month after month keeps its lead through a bad week of its own).
struct EnsembleOptions {
  int window_days = 42;  // the MAE that weighs a model: its errors over this many days
  int top = 5;           // only the best `top` models by that MAE take part (5: every model)
  double power = 8.0;    // weight = MAE^-power: a clearly better model dominates
};

// weights[m] for each model at this lead (summing to 1 over models with a forecast, i.e. a
// finite forecasts[m]); models without recent errors share equally while none has any.
// Deterministic: ties go to the earlier model.
void EnsembleWeights(std::span<const ResidualBook> books, std::span<const double> forecasts, int64_t origin,
                     int lead, const EnsembleOptions& options, std::span<double> weights);

}  // namespace mare::forecast
