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
#include "log/log.h"
#include "reading/parser.h"
#include "store/feed_loop.h"
#include "store/store.h"

namespace mare::store {

struct FeederOptions {
  std::string topic = "raw";
  std::string group = "store";  // committed after each flush, for `mare log groups` (advisory)
  size_t poll_records = 8192;
  int64_t retention_check_us = 60'000'000;
};

class StoreFeeder : private FeedTarget {
 public:
  static Result<std::unique_ptr<StoreFeeder>> Start(Store* store, log::Log* log, const ParserOptions& parser_options,
                                                    const FeederOptions& options, metrics::Registry* registry);
  ~StoreFeeder() override;

  // Flushes what is read (unless failing: a restart then reads it again from the log), joins
  // the thread; the error it stopped on or was retrying. Idempotent.
  Status Stop() { return loop_.Stop(); }
  bool healthy() const { return loop_.healthy(); }
  log::ConsumerHealth health() const { return loop_.health(); }
  int64_t lag() const { return loop_.lag(); }
  // Raw records read so far (the sum of the next offsets over partitions).
  int64_t consumed() const { return loop_.consumed(); }

 private:
  StoreFeeder(Store* store, const ParserOptions& parser_options, const FeederOptions& options, metrics::Registry* registry);
  // FeedTarget: the memtable takes each poll; a flush (with the raw position it covers) once
  // it is full or old enough, then retention when due.
  std::vector<int64_t> durable_offsets() const override { return store_->raw_offsets(); }
  Status Apply(const std::vector<log::ConsumedRecord>& records) override;
  Result<bool> Persist(const std::vector<int64_t>& read) override;
  Status Finish(const std::vector<int64_t>& read) override;
  void RefreshGauges() override;

  Store* const store_;
  const FeederOptions options_;
  ReadingParser parser_;
  PaddedBuffer lines_;
  int64_t next_retention_us_ = 0;

  metrics::Counter* rejected_;
  metrics::Gauge* segments_gauge_;
  metrics::Gauge* bytes_gauge_;
  metrics::Gauge* rows_gauge_;
  metrics::Gauge* memtable_gauge_;

  FeedLoop loop_;  // last: its thread stops before the rest goes
};

}  // namespace mare::store
