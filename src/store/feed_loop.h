// FeedLoop: the loop the store's feeders share (the raw topic into the columnar store, the
// forecasts topic into the forecast table), on a thread of its own. It reads the topic from the
// position its FeedTarget holds durably, hands it each poll, lets it make durable what is due,
// commits that position to the consumer group and keeps the lag. A step that fails with a
// transient error is retried with backoff (log::ConsumerThread); any other stops it.
//
// A feeder states only what differs: its target (what records become, when they are durable)
// and its options and gauges.
//
//   Status s = loop_.Start(this, log, {.name = "store", .kept = "readings", .topic = "raw", .group = "store"},
//                          {.lag = &registry->GetGauge(...)});
//   ...
//   s = loop_.Stop();   // the target's Finish, unless failing
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "common/metrics.h"
#include "common/status.h"
#include "log/consumer_thread.h"
#include "log/duplicate_filter.h"
#include "log/log.h"

namespace mare::store {

// What a FeedLoop feeds. Called from the loop's thread only (Start and Stop aside).
class FeedTarget {
 public:
  virtual ~FeedTarget() = default;
  // The next offset of each partition that the target holds durably: reading starts there, and
  // the consumer group is committed to it.
  virtual std::vector<int64_t> durable_offsets() const = 0;
  // Takes one poll's records (their views end at the next poll).
  virtual Status Apply(const std::vector<log::ConsumedRecord>& records) = 0;
  // After every poll, with records or not: makes durable what is due (a flush once enough is
  // read, a sync once a second). `read`: the next offset of each partition past what Apply
  // took. True when durable_offsets() may have moved.
  virtual Result<bool> Persist(const std::vector<int64_t>& read) = 0;
  // Makes durable all it holds, up to `read`: at Stop unless failing, and after a failure
  // before reading on (unless the loop reads again from durable_offsets()).
  virtual Status Finish(const std::vector<int64_t>& read) = 0;
  // Once a second and whenever the loop's health changes: the target's own gauges.
  virtual void RefreshGauges() {}
};

struct FeedLoopOptions {
  std::string name;   // starts its log lines: "store", "store: forecasts"
  std::string kept;   // what the log keeps while the loop retries, for its log lines: "readings"
  std::string topic;  // "raw"
  std::string group;  // committed to the durable position, for `mare log groups` (advisory)
  size_t poll_records = 8192;
  // For a topic that another process makes with its first record (forecasts): the loop waits
  // for it. Otherwise Start fails without it.
  bool wait_for_topic = false;
  // After a failure, read again from durable_offsets(): for a target whose failed write may
  // have taken part of a batch (a journal). Otherwise the target finishes what it holds (a
  // memtable) and the loop reads on from where it was.
  bool reread_after_failure = false;
  // Records repeating the key and timestamp of one appended within the horizon before are read
  // but not handed to the target (log/duplicate_filter.h); rebuilt whenever the loop subscribes.
  log::DuplicateFilterOptions dedup;
};

// The loop's gauges and counters, registered by the feeder under its own names.
struct FeedLoopMetrics {
  metrics::Gauge* lag = nullptr;         // records of the topic not yet read
  metrics::Gauge* up = nullptr;          // optional: 1 while consuming, 0 while retrying or stopped
  metrics::Counter* failures = nullptr;  // optional: failed steps, each retried unless permanent
  metrics::Counter* duplicates = nullptr;  // optional: records the duplicate filter dropped
};

class FeedLoop {
 public:
  FeedLoop() = default;
  FeedLoop(const FeedLoop&) = delete;
  FeedLoop& operator=(const FeedLoop&) = delete;

  // Subscribes (unless waiting for the topic) and starts the thread.
  Status Start(FeedTarget* target, log::Log* log, FeedLoopOptions options, FeedLoopMetrics metrics);
  // Finishes the target (unless failing: a restart then reads again from the log) and joins the
  // thread; the error it stopped on or was retrying. Idempotent.
  Status Stop();

  bool healthy() const { return thread_.healthy(); }
  log::ConsumerHealth health() const { return thread_.health(); }
  int64_t lag() const { return thread_.lag(); }
  // Records read so far (the sum of the next offsets over partitions).
  int64_t consumed() const { return thread_.consumed(); }

 private:
  Status Subscribe();  // seeks to the target's durable offsets
  Status Step();
  Status Recover();
  void Commit();
  void RefreshLag();

  FeedTarget* target_ = nullptr;
  log::Log* log_ = nullptr;
  FeedLoopOptions options_;
  FeedLoopMetrics metrics_;
  std::unique_ptr<log::Consumer> consumer_;
  std::vector<log::ConsumedRecord> batch_;
  std::vector<int64_t> read_;  // next offset per partition past what the target took
  log::DuplicateFilter duplicates_;
  int64_t next_lag_us_ = 0;
  int64_t next_topic_check_us_ = 0;

  log::ConsumerThread thread_;
};

}  // namespace mare::store
