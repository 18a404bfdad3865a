#include "cli/forecast_wiring.h"

#include <fmt/format.h>
#include <httplib.h>

#include <charconv>

#include "common/json_writer.h"
#include "common/time.h"
#include "query/executor.h"

namespace mare::cli {

namespace {

constexpr const char* kNotStarted = "the forecast processor has not started: it waits for the rollups topic";

}  // namespace

void AddForecastRoute(HttpServer* http, std::function<const forecast::ForecastProcessor*()> get,
                      const std::vector<std::string>& fields) {
  http->routes().Get("/api/v1/forecast", [get, fields](const httplib::Request& req, httplib::Response& res) {
    auto error = [&](int status, const std::string& message) { AnswerError(res, status, message); };
    const forecast::ForecastProcessor* processor = get();
    if (processor == nullptr) return error(503, kNotStarted);
    std::string id = req.get_param_value("sensor_id");
    uint64_t sensor_id = 0;
    if (id.empty() || std::from_chars(id.data(), id.data() + id.size(), sensor_id).ptr != id.data() + id.size()) {
      return error(400, "sensor_id: an integer is required");
    }
    std::string field = req.has_param("field") ? req.get_param_value("field") : fields.front();
    std::string day = req.get_param_value("day_ahead");
    bool day_ahead = day == "true" || day == "1";
    std::string value = processor->Latest(sensor_id, field, day_ahead);
    if (value.empty()) {
      // No forecast yet is an answer, not an error (a 404 is a console error in every browser).
      std::string body = fmt::format("{{\"sensor_id\":{},\"field\":", sensor_id);
      AppendJsonString(&body, field);
      body += fmt::format(",\"day_ahead\":{},\"forecast\":null}}\n", day_ahead ? "true" : "false");
      res.set_content(body, "application/json");
      return;
    }
    res.set_content(value + "\n", "application/json");
  });
  // Each model's MAE and skill over the last 30 days and its weight in the ensemble (the Stats view).
  http->routes().Get("/api/v1/forecast/skill", [get, fields](const httplib::Request& req, httplib::Response& res) {
    const forecast::ForecastProcessor* processor = get();
    if (processor == nullptr) return AnswerError(res, 503, kNotStarted);
    std::string id = req.get_param_value("sensor_id");
    uint64_t sensor_id = 0;
    std::string field = req.has_param("field") ? req.get_param_value("field") : fields.front();
    std::string value;
    if (!id.empty() && std::from_chars(id.data(), id.data() + id.size(), sensor_id).ptr == id.data() + id.size()) {
      value = processor->Skill(sensor_id, field);
    } else {
      res.status = 400;
      value = "{\"error\":\"sensor_id: an integer is required\"}";
    }
    if (value.empty() && res.status != 400) {
      // As for the forecast: none yet is an answer, not an error.
      value = fmt::format("{{\"sensor_id\":{},\"field\":", sensor_id);
      AppendJsonString(&value, field);
      value += ",\"models\":null}";
    }
    res.set_content(value + "\n", "application/json");
  });
}

forecast::HistoryLoader StoreHistory(store::Store* store, const std::vector<std::string>& fields) {
  return [store, fields](int64_t hours,
                         const std::function<void(uint64_t, const std::string&, const forecast::HourlySeries&)>& add) {
    query::QueryOptions options;
    options.max_rows = 100'000'000;
    options.limits.timeout_us = 0;
    query::QueryResult newest;
    query::SqlError error;
    if (!query::RunQuery(*store, "SELECT max(ts) FROM readings", options, &newest, &error)) {
      return Status::IOError("store: " + error.message);
    }
    if (newest.rows.empty() || newest.rows[0][0].null) return Status::OK();  // an empty store
    const int64_t from_hour = newest.rows[0][0].i / 3'600'000'000 - hours;
    for (const std::string& field : fields) {
      std::string column = "\"";
      for (char c : field) column += c == '"' ? std::string("\"\"") : std::string(1, c);
      column += "\"";
      std::string sql = fmt::format(
          "SELECT sensor_id, time_bucket('1h', ts) AS hour, avg({0}) AS mean FROM readings WHERE ts >= TIMESTAMP '{1}' "
          "AND {0} IS NOT NULL GROUP BY sensor_id, hour ORDER BY sensor_id, hour",
          column, FormatTimestamp(from_hour * 3'600'000'000));
      query::QueryResult result;
      if (!query::RunQuery(*store, sql, options, &result, &error)) {
        // A field the store has never seen is no history, not an error.
        if (error.message.find("unknown column") != std::string::npos) continue;
        return Status::IOError("store: " + error.message);
      }
      forecast::HourlySeries series;
      uint64_t sensor = 0;
      auto flush = [&] {
        if (!series.values.empty()) add(sensor, field, series);
        series = {};
      };
      for (const auto& row : result.rows) {
        if (row[0].null || row[1].null || row[2].null) continue;
        uint64_t s = static_cast<uint64_t>(row[0].i);
        int64_t hour = row[1].i / 3'600'000'000;
        if (s != sensor) flush();
        sensor = s;
        if (series.values.empty()) series.first_hour = hour;
        series.values.resize(static_cast<size_t>(hour - series.first_hour), forecast::kMissing);
        series.values.push_back(row[2].AsDouble());
      }
      flush();
    }
    return Status::OK();
  };
}

}  // namespace mare::cli
