// What `mare run` and `mare forecast run` share to run the forecast processor: its HTTP answer
// (GET /api/v1/forecast) and its history loader from the store (hourly means over SQL).
#pragma once

#include "processors/forecast/forecast_processor.h"
#include "server/http_server.h"
#include "store/store.h"

namespace mare::cli {

// GET /api/v1/forecast?sensor_id=7&field=temperature[&day_ahead=true]: the latest forecast
// record's value of the series (docs/formats/forecasts.md), 404 while there is none. field
// defaults to the first of `fields`.
void AddForecastRoute(HttpServer* http, const forecast::ForecastProcessor* processor,
                      const std::vector<std::string>& fields);

// Hourly means of each field per sensor from the store, for a processor without a checkpoint.
forecast::HistoryLoader StoreHistory(store::Store* store, const std::vector<std::string>& fields);

}  // namespace mare::cli
