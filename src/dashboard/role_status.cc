#include "dashboard/role_status.h"

#include <simdjson.h>

#include <cmath>

#include "common/json_out.h"

namespace mare::dashboard {

std::string EncodeRoleStatus(const RoleStatus& s) {
  JsonOut j;
  j.Open('{').Key("version").Int(1).Key("role").Str(s.role).Key("instance").Str(s.instance).Key("host").Str(s.host);
  j.Key("pid").Int(s.pid).Key("time_us").Int(s.time_us).Key("interval_us").Int(s.interval_us).Key("stopped").Bool(s.stopped);
  j.Key("metrics").Open('[');
  for (const MetricSample& m : s.metrics) {
    if (!std::isfinite(m.value)) continue;  // JSON has no NaN; a reader sees the series as absent
    j.Open('{').Key("name").Str(m.name).Key("labels").Open('{');
    for (const auto& [k, v] : m.labels) j.Key(k).Str(v);
    j.Close('}').Key("value").Num(m.value).Close('}');
  }
  j.Close(']').Close('}');
  return j.Take();
}

namespace {

Status Bad(const std::string& what) { return Status::InvalidArgument("role status: " + what); }

template <typename T>
bool Get(simdjson::dom::object o, std::string_view key, T* out) {
  return o[key].get(*out) == simdjson::SUCCESS;
}

}  // namespace

Result<RoleStatus> DecodeRoleStatus(std::string_view json) {
  simdjson::dom::parser parser;
  simdjson::padded_string padded(json);
  simdjson::dom::object o;
  if (parser.parse(padded).get(o) != simdjson::SUCCESS) return Bad("not a JSON object");
  int64_t version = 0;
  if (!Get(o, "version", &version) || version != 1) return Bad("version is not 1");
  RoleStatus s;
  std::string_view text;
  if (!Get(o, "role", &text) || text.empty()) return Bad("no role");
  s.role = text;
  if (!Get(o, "instance", &text) || text.empty()) return Bad("no instance");
  s.instance = text;
  if (Get(o, "host", &text)) s.host = text;
  if (!Get(o, "time_us", &s.time_us)) return Bad("no time_us");
  Get(o, "pid", &s.pid);
  Get(o, "interval_us", &s.interval_us);
  Get(o, "stopped", &s.stopped);
  simdjson::dom::array metrics;
  if (!Get(o, "metrics", &metrics)) return Bad("no metrics array");
  for (simdjson::dom::element e : metrics) {
    simdjson::dom::object m;
    if (e.get(m) != simdjson::SUCCESS) return Bad("a metric is not an object");
    MetricSample sample;
    if (!Get(m, "name", &text) || text.empty()) return Bad("a metric without a name");
    sample.name = text;
    if (m["value"].get_double().get(sample.value) != simdjson::SUCCESS) return Bad("metric " + sample.name + " without a number");
    simdjson::dom::object labels;
    if (Get(m, "labels", &labels)) {
      for (auto [k, lv] : labels) {
        std::string_view label;
        if (lv.get(label) != simdjson::SUCCESS) return Bad("metric " + sample.name + ": label " + std::string(k) + " is not a string");
        sample.labels.emplace_back(std::string(k), std::string(label));
      }
    }
    s.metrics.push_back(std::move(sample));
  }
  return s;
}

std::vector<MetricSample> SampleMetrics(metrics::Registry& registry, const std::vector<metrics::Metric>& families) {
  std::vector<MetricSample> out;
  for (const metrics::Metric& f : families) {
    for (auto& [labels, value] : registry.Samples(f)) out.push_back({std::string(f.name), std::move(labels), value});
  }
  return out;
}

}  // namespace mare::dashboard
