#include "batch/reconcile.h"

#include <fmt/format.h>

#include <cmath>

#include "batch/batch_metrics.h"
#include "batch/batch_rollup.h"
#include "common/time.h"

namespace mare::batch {
namespace {

bool Near(double a, double b, double tolerance) {
  if (a == b) return true;
  return std::fabs(a - b) <= tolerance * std::max(std::fabs(a), std::fabs(b));
}

// Which numbers differ, or empty.
std::string Compare(const sinks::RollupMessage& s, const sinks::RollupMessage& b, double tolerance) {
  std::string what;
  auto add = [&](const char* name, double sv, double bv) { what += fmt::format("{}{} {} (stream) vs {} (batch)", what.empty() ? "" : ", ", name, sv, bv); };
  if (s.count != b.count) add("count", static_cast<double>(s.count), static_cast<double>(b.count));
  if (s.min != b.min) add("min", s.min, b.min);
  if (s.max != b.max) add("max", s.max, b.max);
  if (s.first != b.first) add("first", s.first, b.first);
  if (s.last != b.last) add("last", s.last, b.last);
  if (!Near(s.mean, b.mean, tolerance)) add("mean", s.mean, b.mean);
  if (!Near(s.stddev, b.stddev, tolerance)) add("stddev", s.stddev, b.stddev);
  return what;
}

int64_t LengthOf(const std::vector<rollup::Resolution>& resolutions, const std::string& name) {
  for (const auto& r : resolutions) {
    if (r.name == name) return r.length_us;
  }
  return 0;
}

// The likely cause of readings the batch counted and the stream did not (`missing` of them).
std::string MoreInBatch(const sinks::RollupMessage& window, int64_t length, int64_t missing, bool stream_has_row,
                        const std::string& key, const Evidence& e) {
  int64_t end = window.window_start_us + length;
  std::vector<std::string> causes;
  if (!stream_has_row && e.topic_keys != nullptr && e.topic_keys->count(key)) {
    return "window missing in the sink: the rollups topic has it (a sink outage, or the sink is behind)";
  }
  int64_t late = e.late != nullptr ? static_cast<int64_t>(e.late->Count(window.sensor_id, window.window_start_us, end)) : 0;
  if (late > 0) {
    causes.push_back(fmt::format("{} reading{} dropped as too late (dead-letter `late` entries in this window)", late,
                                 late == 1 ? "" : "s"));
    missing -= late;
  }
  if (missing > 0) {
    std::string n = late > 0 ? fmt::format("the other {}", missing) : fmt::format("{} reading{}", missing, missing == 1 ? "" : "s");
    if (e.raw_retained_since_us && window.window_start_us < *e.raw_retained_since_us) {
      causes.push_back(fmt::format("{} in a gap of the log's retention (the raw topic holds nothing before {})", n,
                                   FormatTimestamp(*e.raw_retained_since_us)));
    } else {
      causes.push_back(fmt::format("{} in the store but never in the stream: imported after the window closed (mare import)", n));
    }
  }
  if (missing < 0) causes.push_back(fmt::format("{} more late entries than missing readings", -missing));
  std::string out;
  for (const auto& c : causes) out += (out.empty() ? "" : "; ") + c;
  return out.empty() ? "unknown" : out;
}

}  // namespace

std::string KeyOf(const sinks::RollupMessage& m) {
  return fmt::format("{}/{}/{}/{}", m.sensor_id, m.field, m.resolution, m.window_start_us);
}

const char* KindName(Difference::Kind kind) {
  switch (kind) {
    case Difference::Kind::kMissingInStream: return "missing_in_stream";
    case Difference::Kind::kMissingInBatch: return "missing_in_batch";
    case Difference::Kind::kCount: return "count";
    case Difference::Kind::kValues: return "values";
  }
  return "?";
}

Result<ReconcileReport> Reconcile(const store::Store& store, const ReconcileOptions& options, const RollupsByKey& stream,
                                  const Evidence& evidence, metrics::Registry* registry) {
  ReconcileReport report;
  const auto& resolutions = options.recompute.resolutions;
  auto summary = Recompute(store, options.recompute, [&](std::span<const BatchRollup> rollups) {
    for (const BatchRollup& r : rollups) {
      sinks::RollupMessage m = ToSinkMessage(r, resolutions[r.resolution]);
      report.batch.emplace(KeyOf(m), std::move(m));
    }
    return Status::OK();
  });
  if (!summary.ok()) return summary.status();
  report.recompute = *summary;
  auto b = report.batch.begin();
  auto s = stream.begin();
  while (b != report.batch.end() || s != stream.end()) {
    ++report.compared;
    Difference d;
    if (s == stream.end() || (b != report.batch.end() && b->first < s->first)) {
      d.kind = Difference::Kind::kMissingInStream;
      d.key = b->first;
      d.batch = b->second;
      d.what = fmt::format("no stream row; the batch counts {}", b->second.count);
      d.cause = MoreInBatch(b->second, LengthOf(resolutions, b->second.resolution), b->second.count, false, d.key, evidence);
      ++b;
    } else if (b == report.batch.end() || s->first < b->first) {
      d.kind = Difference::Kind::kMissingInBatch;
      d.key = s->first;
      d.stream = s->second;
      d.what = fmt::format("the store has no reading; the stream counted {}", s->second.count);
      d.cause = "the store lacks these readings (its retention, or readings still in the log only)";
      ++s;
    } else {
      d.key = b->first;
      d.what = Compare(s->second, b->second, options.relative_tolerance);
      if (d.what.empty()) {
        ++report.equal;
        ++b;
        ++s;
        continue;
      }
      d.stream = s->second;
      d.batch = b->second;
      if (s->second.count < b->second.count) {
        d.kind = Difference::Kind::kCount;
        d.cause = MoreInBatch(b->second, LengthOf(resolutions, b->second.resolution), b->second.count - s->second.count, true,
                              d.key, evidence);
      } else if (s->second.count > b->second.count) {
        d.kind = Difference::Kind::kCount;
        d.cause = "the stream counted more readings than the store holds: second copies of a reading (same sensor and time: "
                  "the stream counts each, the store keeps the later), store retention, or the store behind the log";
      } else {
        d.kind = Difference::Kind::kValues;
        bool order_only = s->second.min == b->second.min && s->second.max == b->second.max &&
                          Near(s->second.mean, b->second.mean, options.relative_tolerance) &&
                          Near(s->second.stddev, b->second.stddev, options.relative_tolerance);
        d.cause = order_only ? "same readings, first/last differ: equal event times ordered differently (readings stored before the "
                               "store kept one per sensor and time)"
                             : "same number of readings, different values: the row was changed outside mare";
      }
      ++b;
      ++s;
    }
    report.differences.push_back(std::move(d));
  }
  if (registry != nullptr) {
    registry->GetGauge(batch_metrics::kComparedWindows).Set(static_cast<double>(report.compared));
    registry->GetGauge(batch_metrics::kDifferingWindows).Set(static_cast<double>(report.differences.size()));
  }
  return report;
}

}  // namespace mare::batch
