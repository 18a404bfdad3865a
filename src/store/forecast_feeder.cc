#include "store/forecast_feeder.h"

#include <spdlog/spdlog.h>

#include "common/time.h"
#include "store/store_metrics.h"

namespace mare::store {

Result<std::unique_ptr<ForecastFeeder>> ForecastFeeder::Start(ForecastTable* table, log::Log* log,
                                                              const ForecastFeederOptions& options, metrics::Registry* registry) {
  std::unique_ptr<ForecastFeeder> f(new ForecastFeeder(table, options, registry));
  MARE_RETURN_IF_ERROR(f->loop_.Start(f.get(), log,
                                      {.name = "store: forecasts",
                                       .kept = "forecasts",
                                       .topic = options.topic,
                                       .group = options.group,
                                       .poll_records = options.poll_records,
                                       .wait_for_topic = true,
                                       // The journal holds the truth: after a failed write, read on from its offsets.
                                       .reread_after_failure = true},
                                      {.lag = &registry->GetGauge(store_metrics::kForecastLagRecords)}));
  return f;
}

ForecastFeeder::ForecastFeeder(ForecastTable* table, const ForecastFeederOptions& options, metrics::Registry* registry)
    : table_(table), options_(options) {
  skipped_ = &registry->GetCounter(store_metrics::kForecastRecordsSkipped);
  expired_ = &registry->GetCounter(store_metrics::kForecastRowsExpired);
  rows_gauge_ = &registry->GetGauge(store_metrics::kForecastRows);
  rows_gauge_->Set(static_cast<double>(table_->rows()));
}

ForecastFeeder::~ForecastFeeder() {
  if (Status s = Stop(); !s.ok()) spdlog::error("store: forecasts: {}", s.ToString());
}

Status ForecastFeeder::Apply(const std::vector<log::ConsumedRecord>& records) {
  uint64_t skipped = 0;
  MARE_RETURN_IF_ERROR(table_->Apply(records, &skipped));
  if (skipped > 0) skipped_->Add(static_cast<double>(skipped));
  rows_gauge_->Set(static_cast<double>(table_->rows()));
  applied_ = dirty_ = true;
  return Status::OK();
}

Result<bool> ForecastFeeder::Persist(const std::vector<int64_t>&) {
  // The group is committed after each batch applied, synced or not: it is advisory, for
  // `mare log groups`, and the journal holds the position.
  bool moved = applied_;
  applied_ = false;
  int64_t now = MonotonicMicros();
  if (now >= next_retention_us_) {
    auto dropped = table_->ApplyRetention(NowMicros());
    if (!dropped.ok()) return dropped.status();
    if (*dropped > 0) {
      expired_->Add(static_cast<double>(*dropped));
      rows_gauge_->Set(static_cast<double>(table_->rows()));
    }
    next_retention_us_ = now + options_.retention_check_us;
  }
  if (dirty_ && now >= next_sync_us_) {
    MARE_RETURN_IF_ERROR(table_->Sync());
    dirty_ = false;
    next_sync_us_ = now + options_.sync_interval_us;
  }
  return moved;
}

}  // namespace mare::store
