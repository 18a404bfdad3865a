// ForecastFeeder: the store's consumer of the forecasts topic, on its own thread. Each batch of
// records goes into the store's ForecastTable (journal first, then the rows SQL reads as table
// `forecasts`). On start it seeks to the offsets the journal holds, so after a crash the records
// it lacks are read again and those it holds are not applied twice (they would only be upserted
// again by key). The topic is made by the forecast processor, here or on another machine: until
// it exists the feeder waits for it. Every minute it applies the table's retention
// (store.forecast_retention), which rewrites the journal once it is mostly dropped issues.
//
//   auto feeder = ForecastFeeder::Start(&store->forecasts(), log, {}, &registry);  // Result<unique_ptr>
//   ...
//   (*feeder)->Stop();
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "common/metrics.h"
#include "common/status.h"
#include "log/log.h"
#include "store/feed_loop.h"
#include "store/forecast_table.h"

namespace mare::store {

struct ForecastFeederOptions {
  std::string topic = "forecasts";
  std::string group = "store-forecasts";  // committed after each batch, for `mare log groups` (advisory)
  size_t poll_records = 4096;
  int64_t sync_interval_us = 1'000'000;  // fdatasync of the journal at most this often
  int64_t retention_check_us = 60'000'000;  // the table's retention is applied this often (and at start)
};

class ForecastFeeder : private FeedTarget {
 public:
  static Result<std::unique_ptr<ForecastFeeder>> Start(ForecastTable* table, log::Log* log, const ForecastFeederOptions& options,
                                                       metrics::Registry* registry);
  ~ForecastFeeder() override;

  // Syncs the journal and joins the thread; the error it stopped on or was retrying. Idempotent.
  Status Stop() { return loop_.Stop(); }
  bool healthy() const { return loop_.healthy(); }
  log::ConsumerHealth health() const { return loop_.health(); }
  int64_t lag() const { return loop_.lag(); }

 private:
  ForecastFeeder(ForecastTable* table, const ForecastFeederOptions& options, metrics::Registry* registry);
  // FeedTarget: the table takes each poll (journal first); the journal is synced at most once
  // per sync_interval_us, and at Stop.
  std::vector<int64_t> durable_offsets() const override { return table_->next_offsets(); }
  Status Apply(const std::vector<log::ConsumedRecord>& records) override;
  Result<bool> Persist(const std::vector<int64_t>& read) override;
  Status Finish(const std::vector<int64_t>&) override { return table_->Sync(); }

  ForecastTable* const table_;
  const ForecastFeederOptions options_;
  bool applied_ = false;  // records applied since the last Persist
  bool dirty_ = false;    // records applied since the last sync
  int64_t next_sync_us_ = 0;
  int64_t next_retention_us_ = 0;

  metrics::Counter* skipped_;
  metrics::Counter* expired_;
  metrics::Gauge* rows_gauge_;

  FeedLoop loop_;  // last: its thread stops before the rest goes
};

}  // namespace mare::store
