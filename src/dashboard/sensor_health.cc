#include "dashboard/sensor_health.h"

#include <algorithm>
#include <cmath>

#include "common/time.h"
#include "common/json_out.h"
#include "query/executor.h"
#include "query/sensors.h"

namespace mare::dashboard {
namespace {


void AppendValue(JsonOut& j, const query::Value& v) {
  if (v.null) {
    j.Null();
  } else if (v.type == query::Type::kText) {
    j.Str(v.s);
  } else if (v.type == query::Type::kTimestamp) {
    j.Str(FormatTimestamp(v.i));
  } else if (v.type == query::Type::kBoolean) {
    j.Bool(v.i != 0);
  } else {
    j.Num(v.AsDouble());
  }
}

}  // namespace

void SensorHealth::CountFaults(int64_t now_us) {
  faults_at_us_ = now_us;
  faults_.clear();
  faults_known_ = false;
  if (!store_->schema().Find("status", store::FieldType::kText)) return;
  query::QueryResult result;
  query::SqlError error;
  if (!query::RunQuery(*store_,
                       "SELECT sensor_id, count(*) FROM readings WHERE ts > now() - INTERVAL '1 hour' AND status <> 'ok' "
                       "GROUP BY sensor_id",
                       {.max_rows = 1'000'000, .now_us = now_us, .threads = 1}, &result, &error)) {
    return;
  }
  for (const auto& row : result.rows) {
    if (!row[0].null && !row[1].null) faults_[static_cast<uint32_t>(row[0].i)] = row[1].i;
  }
  faults_known_ = true;
}

std::string SensorHealth::Json(int64_t now_us) {
  JsonOut j;
  j.Open('[');
  if (store_ == nullptr) return j.Close(']').Take();

  std::vector<query::SensorInfo> sensors = query::ListSensors(*store_);
  // The newest reading of each sensor, every field of it.
  query::QueryResult latest;
  query::SqlError error;
  std::map<uint32_t, size_t> latest_row;
  if (query::RunQuery(*store_, "SELECT * FROM readings LATEST ON ts PARTITION BY sensor_id",
                      {.max_rows = 10'000'000, .now_us = now_us, .threads = 1}, &latest, &error)) {
    auto id = std::find(latest.names.begin(), latest.names.end(), "sensor_id") - latest.names.begin();
    for (size_t r = 0; r < latest.rows.size(); ++r) {
      if (static_cast<size_t>(id) < latest.names.size() && !latest.rows[r][id].null) {
        latest_row[static_cast<uint32_t>(latest.rows[r][id].i)] = r;
      }
    }
  }
  if (now_us - faults_at_us_ >= kFaultsEveryUs) CountFaults(now_us);

  for (const query::SensorInfo& s : sensors) {
    // Arrival rate: readings the store gained over the last seconds.
    auto& history = counts_[s.sensor_id];
    history.emplace_back(now_us, s.readings);
    while (history.size() > 2 && history.front().first < now_us - kRateWindowUs) history.pop_front();
    double rate = 0;
    const auto& [t0, n0] = history.front();
    if (now_us - t0 >= 1'000'000) {
      rate = std::max<double>(0, static_cast<double>(s.readings - n0) / (static_cast<double>(now_us - t0) / 1e6));
    } else if (s.readings > 1 && s.last_seen_us > s.first_seen_us) {
      // Just started watching: the long-run rate in event time.
      rate = static_cast<double>(s.readings - 1) / (static_cast<double>(s.last_seen_us - s.first_seen_us) / 1e6);
    }
    double interval_s = rate > 0 ? 1.0 / rate
                        : s.readings > 1 ? static_cast<double>(s.last_seen_us - s.first_seen_us) / 1e6 / static_cast<double>(s.readings - 1)
                                         : 60.0;
    double age_s = static_cast<double>(now_us - s.last_seen_us) / 1e6;
    bool stale = age_s > std::max(60.0, 5 * interval_s);

    j.Open('{');
    j.Key("sensor_id").Int(s.sensor_id);
    j.Key("first_seen").Str(FormatTimestamp(s.first_seen_us));
    j.Key("last_seen").Str(FormatTimestamp(s.last_seen_us));
    j.Key("age_s").Num(std::round(age_s * 10) / 10);
    j.Key("readings").Int(s.readings);
    j.Key("rate").Num(std::round(rate * 1000) / 1000);
    j.Key("values").Open('{');
    std::string status;
    bool has_status = false;
    double lat = 0, lon = 0;
    bool has_lat = false, has_lon = false;
    if (auto it = latest_row.find(s.sensor_id); it != latest_row.end()) {
      const auto& row = latest.rows[it->second];
      for (size_t c = 0; c < latest.names.size(); ++c) {
        const std::string& name = latest.names[c];
        const query::Value& v = row[c];
        if (name == "ts" || name == "sensor_id" || v.null) continue;
        if (name == "lat") {
          lat = v.AsDouble();
          has_lat = true;
          continue;
        }
        if (name == "lon") {
          lon = v.AsDouble();
          has_lon = true;
          continue;
        }
        if (name == "status" && v.type == query::Type::kText) {
          status = v.s;
          has_status = true;
        }
        j.Key(name);
        AppendValue(j, v);
      }
    }
    j.Close('}');
    j.Key("position");
    if (has_lat && has_lon) {
      j.Open('{').Key("lat").Num(lat).Key("lon").Num(lon).Close('}');
    } else if (s.has_position) {
      j.Open('{').Key("lat").Num(s.lat).Key("lon").Num(s.lon).Close('}');
    } else {
      j.Null();
    }
    j.Key("status");
    has_status ? j.Str(status) : j.Null();
    bool fault = has_status && status != "ok";
    j.Key("stale").Bool(stale);
    j.Key("faults_1h");
    if (faults_known_) {
      auto f = faults_.find(s.sensor_id);
      j.Int(f == faults_.end() ? 0 : f->second);
    } else {
      j.Null();
    }
    int64_t rejects = rejects_.Since(s.sensor_id, now_us - kMicrosPerHour);
    auto r = rejects_.sensors().find(s.sensor_id);
    j.Key("rejects").Int(rejects);
    j.Key("rejects_total").Int(r == rejects_.sensors().end() ? 0 : r->second.total);
    j.Key("health").Str(stale ? "stale" : fault ? "fault" : rejects > 0 ? "rejects" : "ok");
    j.Close('}');
  }
  // Forget sensors the store no longer has (retention).
  for (auto it = counts_.begin(); it != counts_.end();) {
    it = it->second.back().first != now_us ? counts_.erase(it) : std::next(it);
  }
  return j.Close(']').Take();
}

}  // namespace mare::dashboard
