#include "dashboard/pipeline.h"

#include <algorithm>
#include <optional>
#include <tuple>

#include "common/time.h"
#include "common/json_out.h"
#include "log/log_metrics.h"
#include "processors/forecast/forecast_metrics.h"
#include "processors/rollup/rollup_metrics.h"
#include "query/query_metrics.h"
#include "reading/dead_letter_metrics.h"
#include "sinks/mariadb/sink_metrics.h"
#include "sources/source_metrics.h"
#include "store/store_metrics.h"

namespace mare::dashboard {

PipelineHealth::PipelineHealth(metrics::Registry* registry, const PipelineSettings& settings)
    : registry_(registry), settings_(settings), started_us_(NowMicros()) {}

std::pair<double, double> PipelineHealth::Rates(const Totals& now, const Totals& base, double secs) {
  if (secs <= 0) return {0, 0};
  return {std::max(0.0, (now.accepted - base.accepted) / secs), std::max(0.0, (now.rejected - base.rejected) / secs)};
}

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

const std::vector<metrics::Metric>& PipelineHealth::Metrics() {
  static const std::vector<metrics::Metric> families = {
      source_metrics::kReadingsAccepted, source_metrics::kReadingsReceived, source_metrics::kReadingsRejected,
      source_metrics::kMqttUp, source_metrics::kOpenConnections, source_metrics::kUdpDatagramsDropped,
      dead_letter_metrics::kReadingsWritten, dead_letter_metrics::kReadingsDropped,
      log_metrics::kDiskBytes, log_metrics::kRecordsAppended, log_metrics::kEndOffset, log_metrics::kSegmentsDeleted,
      rollup_metrics::kLagRecords, rollup_metrics::kWatermarkSeconds, rollup_metrics::kOpenWindows,
      rollup_metrics::kMessagesEmitted, rollup_metrics::kLateReadingsDropped, rollup_metrics::kReadingsCounted,
      forecast_metrics::kLagRecords,
      store_metrics::kLagRecords, store_metrics::kForecastLagRecords, store_metrics::kDiskRows,
      store_metrics::kMemtableRows, store_metrics::kDiskSegments, store_metrics::kDiskBytes,
      sink_metrics::kLagRecords, sink_metrics::kOpenConnections, sink_metrics::kRowsWritten, sink_metrics::kErrors,
      query_metrics::kRequests,
  };
  return families;
}

metrics::Registry* PipelineHealth::Merged(const std::vector<RoleStatus>& others, std::unique_ptr<metrics::Registry>* merged) {
  if (others.empty()) return registry_;
  *merged = std::make_unique<metrics::Registry>();
  for (const metrics::Metric& f : Metrics()) {
    for (const auto& [labels, value] : registry_->Samples(f)) (*merged)->GetGauge(f, labels).Set(value);
  }
  for (const RoleStatus& role : others) {
    for (const MetricSample& sample : role.metrics) {
      metrics::Labels labels = sample.labels;
      labels.emplace_back("process", role.Key());  // a label no metric of the view has
      (*merged)->GetGauge(sample.name, "", labels).Set(sample.value);
    }
  }
  return merged->get();
}

namespace {

// The largest value among the series of `metric` matching `match`, if any: for a figure of the
// whole pipeline that several processes see (a watermark, a topic's end offset), not a sum.
std::optional<double> Max(metrics::Registry& m, const metrics::Metric& metric, const metrics::Labels& match = {}) {
  std::optional<double> out;
  for (const auto& [labels, value] : m.Samples(metric)) {
    bool matches = std::all_of(match.begin(), match.end(),
                               [&](const auto& want) { return std::find(labels.begin(), labels.end(), want) != labels.end(); });
    if (matches && (!out || value > *out)) out = value;
  }
  return out;
}

}  // namespace

void PipelineHealth::Sample(int64_t now_us, int64_t unattributed_rejects) {
  registry_->Refresh();  // the gauges kept fresh on demand (bytes on disk, ...), as a scrape would see them
  const std::vector<RoleStatus> others = settings_.other_roles ? settings_.other_roles() : std::vector<RoleStatus>{};
  std::unique_ptr<metrics::Registry> merged;
  metrics::Registry& m = *Merged(others, &merged);
  const double accepted = m.Sum(source_metrics::kReadingsAccepted);
  const double received = m.Sum(source_metrics::kReadingsReceived);
  const double rejected = m.Sum(source_metrics::kReadingsRejected);

  // A source registers its counters when it starts: each one listed is on.
  Point p{now_us, {accepted, rejected}, 0, 0, {}};
  for (const std::string& source : m.LabelValues(source_metrics::kReadingsReceived, "source")) {
    p.by_source.emplace_back(source, Totals{m.Sum(source_metrics::kReadingsAccepted, {{"source", source}}),
                                            m.Sum(source_metrics::kReadingsRejected, {{"source", source}})});
  }
  std::vector<std::pair<double, double>> source_rates;
  {
    std::lock_guard lock(mu_);
    // Rates over the last few seconds: steadier than second to second.
    const Point* base = nullptr;
    for (auto it = history_.rbegin(); it != history_.rend(); ++it) {
      base = &*it;
      if (now_us - it->t_us >= kRateWindowUs) break;
    }
    double secs = base != nullptr ? static_cast<double>(now_us - base->t_us) / 1e6 : 0;
    std::tie(p.accepted_per_s, p.rejected_per_s) = Rates(p.all, base ? base->all : Totals{}, secs);
    for (const auto& [source, totals] : p.by_source) {
      Totals was;  // a source that started after the base sample started from 0
      if (base != nullptr) {
        for (const auto& [name, t] : base->by_source) {
          if (name == source) was = t;
        }
      }
      source_rates.push_back(Rates(totals, was, secs));
    }
  }

  JsonOut j;
  j.Open('{');
  j.Key("time").Str(FormatTimestamp(now_us));
  j.Key("uptime_s").Num(static_cast<double>(now_us - started_us_) / 1e6);
  j.Key("accepted_total").Num(accepted).Key("received_total").Num(received).Key("rejected_total").Num(rejected);
  j.Key("accepted_per_s").Num(p.accepted_per_s).Key("rejected_per_s").Num(p.rejected_per_s);

  j.Key("sources").Open('[');
  for (size_t i = 0; i < p.by_source.size(); ++i) {
    const auto& [source, totals] = p.by_source[i];
    j.Open('{').Key("source").Str(source);
    j.Key("received").Num(m.Sum(source_metrics::kReadingsReceived, {{"source", source}}));
    j.Key("accepted").Num(totals.accepted).Key("rejected").Num(totals.rejected);
    j.Key("accepted_per_s").Num(source_rates[i].first).Key("rejected_per_s").Num(source_rates[i].second);
    // The MQTT source has one connection, to its broker: 1 while up, 0 while it reconnects.
    auto connections = source == "mqtt" ? m.Find(source_metrics::kMqttUp, {})
                                        : m.Find(source_metrics::kOpenConnections, {{"source", source}});
    j.Key("connections");
    connections ? j.Num(*connections) : j.Null();
    j.Close('}');
  }
  j.Close(']');

  j.Key("rejects_by_reason").Open('{');
  for (const std::string& reason : m.LabelValues(source_metrics::kReadingsRejected, "reason")) {
    double n = m.Sum(source_metrics::kReadingsRejected, {{"reason", reason}});
    if (n > 0) j.Key(reason).Num(n);
  }
  j.Close('}');
  j.Key("udp_kernel_drops").Num(m.Sum(source_metrics::kUdpDatagramsDropped));
  j.Key("dead_letter").Open('{');
  j.Key("written").Num(m.Sum(dead_letter_metrics::kReadingsWritten)).Key("dropped").Num(m.Sum(dead_letter_metrics::kReadingsDropped));
  j.Key("unattributed").Int(unattributed_rejects).Close('}');

  j.Key("log").Open('{');
  j.Key("fsync").Str(settings_.log_fsync);
  j.Key("retention").Str(FormatDuration(settings_.log_retention_us));
  j.Key("retention_bytes").Int(settings_.log_retention_bytes);
  j.Key("topics").Open('[');
  for (const std::string& topic : m.LabelValues(log_metrics::kDiskBytes, "topic")) {
    j.Open('{').Key("topic").Str(topic);
    j.Key("bytes").Num(m.Sum(log_metrics::kDiskBytes, {{"topic", topic}}));
    j.Key("records_appended").Num(m.Sum(log_metrics::kRecordsAppended, {{"topic", topic}}));
    j.Key("end_offset").Num(m.Sum(log_metrics::kEndOffset, {{"topic", topic}}));
    j.Key("segments_deleted").Num(m.Sum(log_metrics::kSegmentsDeleted, {{"topic", topic}}));
    j.Close('}');
  }
  j.Close(']').Close('}');

  // Who reads the log, and how far behind the end each one is.
  j.Key("lags").Open('[');
  // Summed over the processes that share a consumer's work (`mare stream` members each lag on their partitions).
  auto lag = [&](const metrics::Metric& metric, const char* consumer) {
    if (m.Find(metric)) j.Open('{').Key("consumer").Str(consumer).Key("records").Num(m.Sum(metric)).Close('}');
  };
  lag(rollup_metrics::kLagRecords, "rollup");
  lag(store_metrics::kLagRecords, "store");
  lag(forecast_metrics::kLagRecords, "forecast");
  lag(store_metrics::kForecastLagRecords, "store forecasts");
  for (const std::string& sink : m.LabelValues(sink_metrics::kLagRecords, "sink")) {
    j.Open('{').Key("consumer").Str("sink " + sink).Key("records").Num(m.Sum(sink_metrics::kLagRecords, {{"sink", sink}})).Close('}');
  }
  j.Close(']');

  j.Key("rollup").Open('{');
  j.Key("enabled").Bool(settings_.rollup_enabled);
  auto watermark = Max(m, rollup_metrics::kWatermarkSeconds);
  j.Key("watermark");
  if (watermark && *watermark > 0) {
    j.Str(FormatTimestamp(static_cast<int64_t>(*watermark * 1e6)));
  } else {
    j.Null();
  }
  j.Key("lateness").Str(FormatDuration(settings_.rollup_lateness_us));
  j.Key("open_windows").Num(m.Sum(rollup_metrics::kOpenWindows));
  j.Key("emitted").Num(m.Sum(rollup_metrics::kMessagesEmitted));
  j.Key("dropped_late").Num(m.Sum(rollup_metrics::kLateReadingsDropped));
  j.Key("readings").Num(m.Sum(rollup_metrics::kReadingsCounted));
  j.Close('}');

  j.Key("store").Open('{');
  j.Key("enabled").Bool(settings_.store_enabled);
  j.Key("rows").Num(m.Sum(store_metrics::kDiskRows) + m.Sum(store_metrics::kMemtableRows));
  j.Key("memtable_rows").Num(m.Sum(store_metrics::kMemtableRows));
  j.Key("segments").Num(m.Sum(store_metrics::kDiskSegments));
  j.Key("bytes").Num(m.Sum(store_metrics::kDiskBytes));
  j.Key("retention").Str(settings_.store_retention_us > 0 ? FormatDuration(settings_.store_retention_us) : "none (keeps everything)");
  j.Close('}');

  j.Key("sinks").Open('[');
  std::vector<std::string> sinks = m.LabelValues(sink_metrics::kOpenConnections, "sink");
  if (std::find(sinks.begin(), sinks.end(), "mariadb") == sinks.end()) sinks.insert(sinks.begin(), "mariadb");
  for (const std::string& sink : sinks) {
    bool enabled = m.Find(sink_metrics::kOpenConnections, {{"sink", sink}}).has_value();
    j.Open('{').Key("sink").Str(sink).Key("enabled").Bool(enabled);
    j.Key("connected").Bool(m.Sum(sink_metrics::kOpenConnections, {{"sink", sink}}) > 0);
    j.Key("rows_written").Num(m.Sum(sink_metrics::kRowsWritten, {{"sink", sink}}));
    j.Key("errors").Num(m.Sum(sink_metrics::kErrors, {{"sink", sink}}));
    j.Key("lag_records").Num(m.Sum(sink_metrics::kLagRecords, {{"sink", sink}}));
    j.Close('}');
  }
  j.Close(']');

  j.Key("queries").Open('{');
  j.Key("ok").Num(m.Sum(query_metrics::kRequests, {{"status", "ok"}}));
  j.Key("invalid").Num(m.Sum(query_metrics::kRequests, {{"status", "invalid"}}));
  j.Key("failed").Num(m.Sum(query_metrics::kRequests, {{"status", "failed"}}));
  j.Close('}');

  // Every process of the pipeline: this one, and the others by their newest status.
  j.Key("roles").Open('[');
  j.Open('{').Key("role").Str(settings_.role).Key("instance").Str(settings_.instance).Key("local").Bool(true);
  j.Key("time").Str(FormatTimestamp(now_us)).Key("age_s").Num(0).Key("stale").Bool(false).Close('}');
  for (const RoleStatus& r : others) {
    const int64_t age_us = std::max<int64_t>(0, now_us - r.time_us);
    j.Open('{').Key("role").Str(r.role).Key("instance").Str(r.instance).Key("local").Bool(false);
    j.Key("host").Str(r.host).Key("pid").Int(r.pid);
    j.Key("time").Str(FormatTimestamp(r.time_us)).Key("age_s").Num(static_cast<double>(age_us / 100'000) / 10);
    j.Key("stale").Bool(age_us > settings_.stale_after_us).Close('}');
  }
  j.Close(']');
  j.Close('}');

  std::lock_guard lock(mu_);
  json_ = j.Take();
  history_.push_back(p);
  while (!history_.empty() && history_.front().t_us < now_us - kHistoryUs) history_.pop_front();
}

}  // namespace mare::dashboard
