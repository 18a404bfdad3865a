#include "dashboard/pipeline.h"

#include <algorithm>

#include "common/time.h"
#include "common/json_out.h"
#include "dashboard/metrics_text.h"

namespace mare::dashboard {

PipelineHealth::PipelineHealth(metrics::Registry* registry, const PipelineSettings& settings)
    : registry_(registry), settings_(settings), started_us_(NowMicros()) {}

double PipelineHealth::accepted_per_s() const {
  std::lock_guard lock(mu_);
  return history_.empty() ? 0 : history_.back().accepted_per_s;
}

std::string PipelineHealth::Json() const {
  std::lock_guard lock(mu_);
  return json_;
}

std::string PipelineHealth::HistoryJson() const {
  std::lock_guard lock(mu_);
  JsonOut j;
  j.Open('{').Key("now").Raw(json_).Key("history").Open('[');
  for (const Point& p : history_) {
    j.Open('{').Key("t").Str(FormatTimestamp(p.t_us)).Key("accepted_per_s").Num(p.accepted_per_s);
    j.Key("rejected_per_s").Num(p.rejected_per_s).Close('}');
  }
  j.Close(']').Close('}');
  return j.Take();
}

void PipelineHealth::Sample(int64_t now_us, int64_t unattributed_rejects) {
  MetricSet m(ParseMetricsText(registry_->Render()));
  const double accepted = m.Sum("mare_source_readings_accepted_total");
  const double received = m.Sum("mare_source_readings_received_total");
  const double rejected = m.Sum("mare_source_readings_rejected_total");

  Point p{now_us, accepted, rejected, 0, 0};
  {
    std::lock_guard lock(mu_);
    // Rates over the last few seconds: steadier than second to second.
    const Point* base = nullptr;
    for (auto it = history_.rbegin(); it != history_.rend(); ++it) {
      base = &*it;
      if (now_us - it->t_us >= kRateWindowUs) break;
    }
    if (base != nullptr && now_us > base->t_us) {
      double secs = static_cast<double>(now_us - base->t_us) / 1e6;
      p.accepted_per_s = std::max(0.0, (accepted - base->accepted) / secs);
      p.rejected_per_s = std::max(0.0, (rejected - base->rejected) / secs);
    }
  }

  JsonOut j;
  j.Open('{');
  j.Key("time").Str(FormatTimestamp(now_us));
  j.Key("uptime_s").Num(static_cast<double>(now_us - started_us_) / 1e6);
  j.Key("accepted_total").Num(accepted).Key("received_total").Num(received).Key("rejected_total").Num(rejected);
  j.Key("accepted_per_s").Num(p.accepted_per_s).Key("rejected_per_s").Num(p.rejected_per_s);

  j.Key("sources").Open('[');
  for (const std::string& source : m.LabelValues("mare_source_readings_received_total", "source")) {
    j.Open('{').Key("source").Str(source);
    j.Key("received").Num(m.Sum("mare_source_readings_received_total", {{"source", source}}));
    j.Key("accepted").Num(m.Sum("mare_source_readings_accepted_total", {{"source", source}}));
    j.Key("rejected").Num(m.Sum("mare_source_readings_rejected_total", {{"source", source}}));
    auto connections = m.Find("mare_source_connections", {{"source", source}});
    j.Key("connections");
    connections ? j.Num(*connections) : j.Null();
    j.Close('}');
  }
  j.Close(']');

  j.Key("rejects_by_reason").Open('{');
  for (const std::string& reason : m.LabelValues("mare_source_readings_rejected_total", "reason")) {
    double n = m.Sum("mare_source_readings_rejected_total", {{"reason", reason}});
    if (n > 0) j.Key(reason).Num(n);
  }
  j.Close('}');
  j.Key("udp_kernel_drops").Num(m.Sum("mare_source_udp_kernel_drops_total"));
  j.Key("dead_letter").Open('{');
  j.Key("written").Num(m.Sum("mare_dead_letter_written_total")).Key("dropped").Num(m.Sum("mare_dead_letter_dropped_total"));
  j.Key("unattributed").Int(unattributed_rejects).Close('}');

  j.Key("log").Open('{');
  j.Key("fsync").Str(settings_.log_fsync);
  j.Key("retention").Str(FormatDuration(settings_.log_retention_us));
  j.Key("retention_bytes").Int(settings_.log_retention_bytes);
  j.Key("topics").Open('[');
  for (const std::string& topic : m.LabelValues("mare_log_disk_bytes", "topic")) {
    j.Open('{').Key("topic").Str(topic);
    j.Key("bytes").Num(m.Sum("mare_log_disk_bytes", {{"topic", topic}}));
    j.Key("records_appended").Num(m.Sum("mare_log_appended_records_total", {{"topic", topic}}));
    j.Key("end_offset").Num(m.Sum("mare_log_end_offset", {{"topic", topic}}));
    j.Key("segments_deleted").Num(m.Sum("mare_log_segments_deleted_total", {{"topic", topic}}));
    j.Close('}');
  }
  j.Close(']').Close('}');

  // Who reads the log, and how far behind the end each one is.
  j.Key("lags").Open('[');
  if (auto lag = m.Find("mare_rollup_lag_records")) j.Open('{').Key("consumer").Str("rollup").Key("records").Num(*lag).Close('}');
  if (auto lag = m.Find("mare_store_lag_records")) j.Open('{').Key("consumer").Str("store").Key("records").Num(*lag).Close('}');
  for (const std::string& sink : m.LabelValues("mare_sink_lag_records", "sink")) {
    j.Open('{').Key("consumer").Str("sink " + sink).Key("records").Num(m.Sum("mare_sink_lag_records", {{"sink", sink}})).Close('}');
  }
  j.Close(']');

  j.Key("rollup").Open('{');
  j.Key("enabled").Bool(settings_.rollup_enabled);
  auto watermark = m.Find("mare_rollup_watermark_seconds");
  j.Key("watermark");
  if (watermark && *watermark > 0) {
    j.Str(FormatTimestamp(static_cast<int64_t>(*watermark * 1e6)));
  } else {
    j.Null();
  }
  j.Key("lateness").Str(FormatDuration(settings_.rollup_lateness_us));
  j.Key("open_windows").Num(m.Sum("mare_rollup_open_windows"));
  j.Key("emitted").Num(m.Sum("mare_rollup_emitted_total"));
  j.Key("dropped_late").Num(m.Sum("mare_rollup_dropped_late_total"));
  j.Key("readings").Num(m.Sum("mare_rollup_readings_total"));
  j.Close('}');

  j.Key("store").Open('{');
  j.Key("enabled").Bool(settings_.store_enabled);
  j.Key("rows").Num(m.Sum("mare_store_rows") + m.Sum("mare_store_memtable_rows"));
  j.Key("memtable_rows").Num(m.Sum("mare_store_memtable_rows"));
  j.Key("segments").Num(m.Sum("mare_store_segments"));
  j.Key("bytes").Num(m.Sum("mare_store_bytes"));
  j.Key("retention").Str(settings_.store_retention_us > 0 ? FormatDuration(settings_.store_retention_us) : "none (keeps everything)");
  j.Close('}');

  j.Key("sinks").Open('[');
  std::vector<std::string> sinks = m.LabelValues("mare_sink_connected", "sink");
  if (std::find(sinks.begin(), sinks.end(), "mariadb") == sinks.end()) sinks.insert(sinks.begin(), "mariadb");
  for (const std::string& sink : sinks) {
    bool enabled = m.Find("mare_sink_connected", {{"sink", sink}}).has_value();
    j.Open('{').Key("sink").Str(sink).Key("enabled").Bool(enabled);
    j.Key("connected").Bool(m.Sum("mare_sink_connected", {{"sink", sink}}) > 0);
    j.Key("rows_written").Num(m.Sum("mare_sink_rows_written_total", {{"sink", sink}}));
    j.Key("errors").Num(m.Sum("mare_sink_errors_total", {{"sink", sink}}));
    j.Key("lag_records").Num(m.Sum("mare_sink_lag_records", {{"sink", sink}}));
    j.Close('}');
  }
  j.Close(']');

  j.Key("queries").Open('{');
  j.Key("ok").Num(m.Sum("mare_query_requests_total", {{"status", "ok"}}));
  j.Key("invalid").Num(m.Sum("mare_query_requests_total", {{"status", "invalid"}}));
  j.Key("failed").Num(m.Sum("mare_query_requests_total", {{"status", "failed"}}));
  j.Close('}');
  j.Close('}');

  std::lock_guard lock(mu_);
  json_ = j.Take();
  history_.push_back(p);
  while (!history_.empty() && history_.front().t_us < now_us - kHistoryUs) history_.pop_front();
}

}  // namespace mare::dashboard
