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
  return models;
}

bool IsNaiveModel(std::string_view name) {
  return name == "persistence" || name == "last_value" || name == "climatology_7d";
}

}  // namespace mare::forecast
