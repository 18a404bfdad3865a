// The models every series gets, in a fixed order (the naive baselines first): what the backtest
// runs and the ensemble weighs.
#pragma once

#include <memory>
#include <string_view>
#include <vector>

#include "processors/forecast/model.h"

namespace mare::forecast {

std::vector<std::unique_ptr<ForecastModel>> AllModels();

// The ensemble weighs the first kEnsembleModels of them; the ones after (the local ridge) are
// not in it but candidates of the per-series selection (selection.h) against it.
inline constexpr size_t kEnsembleModels = 5;

// The naive baselines among the models' names.
bool IsNaiveModel(std::string_view name);

}  // namespace mare::forecast
