// What `mare run` and `mare forecast run` share to run the forecast processor: its HTTP answer
// (GET /api/v1/forecast) and its history loader from the store (hourly means over SQL).
#pragma once

#include <functional>

#include "processors/forecast/forecast_processor.h"
#include "server/http_server.h"
#include "store/store.h"

namespace mare::cli {

// GET /api/v1/forecast?sensor_id=7&field=temperature[&day_ahead=true]: the latest forecast
// record's value of the series (docs/formats/forecasts.md); while there is none, 200 with
// {"sensor_id":7,"field":"temperature","day_ahead":false,"forecast":null}. field defaults to the
// first of `fields`.
// GET /api/v1/forecast/skill?sensor_id=7[&field=]: its models' recent skill (model_skill.h);
// for a series it does not know, 200 with {"sensor_id":7,"field":"temperature","models":null}.
// `processor` gives the processor, or null while it has not started (`mare forecast run` waiting
// for the rollups topic): then both answer 503 saying so.
void AddForecastRoute(HttpServer* http, std::function<const forecast::ForecastProcessor*()> processor,
                      const std::vector<std::string>& fields);

// Hourly means of each field per sensor from the store, for a processor without a checkpoint.
forecast::HistoryLoader StoreHistory(store::Store* store, const std::vector<std::string>& fields);

}  // namespace mare::cli
