// StoreFeeder: the store's consumer of the raw topic, on its own thread. It parses each
// reading, adds it to the store's memtable and flushes it (with the raw position it covers)
// every flush_rows readings or flush_interval. The raw topic is the store's write-ahead log:
// on start it seeks to the store's durable position, so after a crash the readings the
// memtable lost are read again, and none that a segment holds is added twice.
//
// A flush or retention step that fails with a transient error (a full disk) is retried with
// backoff, the memtable kept and no more read meanwhile, until it succeeds: the store catches
// up by itself once space returns (health() says why while it cannot).
//
//   auto feeder = StoreFeeder::Start(store, log, parser_options, &registry);  // Result<unique_ptr>
//   ...
//   (*feeder)->Stop();   // flushes, so a restart has nothing to replay
#pragma once

#include <memory>
#include <string>

#include "common/metrics.h"
#include "common/status.h"
#include "log/consumer_thread.h"
#include "log/log.h"
#include "reading/parser.h"
#include "store/store.h"

namespace mare::store {

struct FeederOptions {
  std::string topic = "raw";
  std::string group = "store";  // committed after each flush, for `mare log groups` (advisory)
  size_t poll_records = 8192;
  int64_t retention_check_us = 60'000'000;
};

class StoreFeeder {
 public:
  static Result<std::unique_ptr<StoreFeeder>> Start(Store* store, log::Log* log, const ParserOptions& parser_options,
                                                    const FeederOptions& options, metrics::Registry* registry);
  ~StoreFeeder();

  // Flushes what is read (unless failing: a restart then reads it again from the log), joins
  // the thread; the error it stopped on or was retrying. Idempotent.
  Status Stop();
  bool healthy() const { return thread_.healthy(); }
  log::ConsumerHealth health() const { return thread_.health(); }
  int64_t lag() const { return thread_.lag(); }
  // Raw records read so far (the sum of the next offsets over partitions).
  int64_t consumed() const { return thread_.consumed(); }

 private:
  StoreFeeder(Store* store, log::Log* log, const ParserOptions& parser_options, const FeederOptions& options,
              metrics::Registry* registry);
  Status Recover();
  Status Step();
  Status FlushAndCommit();
  Status Retry();  // after a transient failure: the flush that failed, before reading more
  void RefreshLag();
  void RefreshHealth();

  Store* const store_;
  log::Log* const log_;
  const FeederOptions options_;
  ReadingParser parser_;
  std::unique_ptr<log::Consumer> consumer_;
  std::vector<log::ConsumedRecord> batch_;
  std::vector<int64_t> next_offsets_;
  PaddedBuffer lines_;
  int64_t next_lag_us_ = 0;
  int64_t next_retention_us_ = 0;

  log::ConsumerThread thread_;

  metrics::Counter* rejected_;
  metrics::Gauge* lag_gauge_;
  metrics::Gauge* segments_gauge_;
  metrics::Gauge* bytes_gauge_;
  metrics::Gauge* rows_gauge_;
  metrics::Gauge* memtable_gauge_;
  metrics::Gauge* consumer_up_;
  metrics::Counter* failures_;
};

}  // namespace mare::store
