// The models every series gets, in a fixed order (the naive baselines first): what the backtest
// runs and the ensemble weighs.
#pragma once

#include <memory>
#include <string_view>
#include <vector>

#include "processors/forecast/model.h"

namespace mare::forecast {

std::vector<std::unique_ptr<ForecastModel>> AllModels();

// The naive baselines among the models' names.
bool IsNaiveModel(std::string_view name);

}  // namespace mare::forecast
