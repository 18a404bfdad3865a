// A series' models judged on their recent day-ahead forecasts: each model's MAE over the last
// days and its skill against persistence, and its weight in the ensemble that is issued. What
// GET /api/v1/forecast/skill answers and the dashboard's Stats view shows.
//
//   SeriesSkill s = forecaster.Skill(30);
//   std::string json = SkillValue(sensor_id, "temperature", s);
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace mare::forecast {

struct ModelSkill {
  std::string model;
  int64_t hours = 0;    // judged hours (00:00 UTC issues' leads whose hour is observed)
  double mae = 0;       // NaN with no hours
  double skill = 0;     // 1 − MAE / persistence's MAE; NaN without persistence's
  double weight = 0;    // mean over leads of its weight in the latest day-ahead ensemble; NaN for the ensemble
};

struct SeriesSkill {
  int64_t as_of = 0;       // hours since the epoch: errors of origins before it are counted
  int days = 0;            // ... and not older than this many days
  std::string in_use;      // what is issued: "ensemble" or "ensemble+local_ridge" (selection.h)
  std::string leading;     // the model with the largest weight in it ("" before any)
  std::vector<ModelSkill> models;  // AllModels() order, the ensemble last
};

// {"sensor_id":7,"field":"temperature","as_of":"...","days":30,"in_use":"ensemble",
//  "leading":"ridge","models":[{"model":"persistence","hours":720,"mae":1.2,"skill":0,"weight":0.1},...]}
std::string SkillValue(uint64_t sensor_id, std::string_view field, const SeriesSkill& skill);

}  // namespace mare::forecast
