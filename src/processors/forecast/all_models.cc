#include "processors/forecast/all_models.h"

#include "processors/forecast/climatology.h"
#include "processors/forecast/holt_winters.h"
#include "processors/forecast/last_value.h"
#include "processors/forecast/persistence.h"
#include "processors/forecast/ridge.h"

namespace mare::forecast {

std::vector<std::unique_ptr<ForecastModel>> AllModels() {
  std::vector<std::unique_ptr<ForecastModel>> models;
  models.push_back(std::make_unique<PersistenceModel>());
  models.push_back(std::make_unique<LastValueModel>());
  models.push_back(std::make_unique<ClimatologyModel>());
  models.push_back(std::make_unique<HoltWintersModel>());
  models.push_back(std::make_unique<RidgeModel>());
  // The local ridge: four years of origins (the processor's history_days bound them), λ 4, each
  // origin also weighed by its likeness as of 23:00 (bandwidth 0.7), with 20 % of the 40 most
  // alike days' median change; chosen on Beijing in numpy (docs/forecast.md).
  models.push_back(std::make_unique<RidgeModel>(RidgeOptions{.window_days = 1460,
                                                             .lambda = 4.0,
                                                             .robust_iterations = 3,
                                                             .likeness_bandwidth = 0.7,
                                                             .likeness_lag = 1,
                                                             .analogs = 40,
                                                             .analog_share = 0.2,
                                                             .name = "local_ridge"}));
  return models;
}

bool IsNaiveModel(std::string_view name) {
  return name == "persistence" || name == "last_value" || name == "climatology_7d";
}

}  // namespace mare::forecast
