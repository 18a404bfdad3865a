// LogFollower: the loop every sink that copies a topic to a remote server runs (Elasticsearch,
// ClickHouse): on a thread of its own it reads the topic in batches, hands them to its
// Destination, and saves the positions after a batch only once the destination acknowledged all
// of it. A pipelined destination is written by a second thread while the next batch is read, or
// by several (Slots()), each writing a batch of its own; positions are then saved in batch order
// only (in_order_commits.h). Any failure is retried with backoff on the same batch, so positions never run ahead of
// the data: a crash or an outage ends in a resend, which the destination makes idempotent
// (deterministic ids, replacing tables). The log keeps everything meanwhile; the lag gauge shows it.
//
// On a log with consumer groups (Kafka) the follower is a member of group "<consumer>-<topic>"
// (without transactions): the followers of every process with the same config share the
// topic's partitions, each writing and saving only its own. When the group takes partitions
// away, the follower first finishes what it read (its batches acknowledged and their positions
// saved) for up to revoke_timeout_us, then gives the rest up unsaved; partitions lost (its session
// expired: others may own them already) are given up at once, nothing more saved about them. On
// partitions given it reads their positions from the destination, which stays the source of
// truth (Kafka's committed offsets are only for its tools), and keeps the duplicate filter of
// those it kept. On the embedded log, which one process owns, it follows every partition.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "common/metrics.h"
#include "common/status.h"
#include "log/duplicate_filter.h"
#include "log/log.h"
#include "sinks/in_order_commits.h"
#include "sinks/sink_health.h"

namespace mare::sinks {

// Where a LogFollower delivers one topic. Called from the follower's thread only.
class Destination {
 public:
  virtual ~Destination() = default;
  // Makes what it needs (tables, templates) and reads the saved positions: the next offset of
  // each of `partitions` partitions into *next (0 where none was saved). Retried until OK. In a
  // consumer group, called again whenever partitions are given, with no batch in flight.
  virtual Status Prepare(int32_t partitions, std::map<int32_t, int64_t>* next) = 0;
  // Takes the records of one poll into the pending batch (their views end at the next poll);
  // records it cannot read go to the dead-letter file here.
  virtual void Add(const std::vector<log::ConsumedRecord>& records) = 0;
  // True when Add and Seal may run on one thread while Flush and SavePositions run on another:
  // the next batch is then read and encoded while the server takes the current one.
  virtual bool Pipelined() const { return false; }
  // How many sealed batches a pipelined destination writes at once, each in a slot of its own
  // (0 to Slots()-1) by a writer thread of its own: Seal(slot) and Flush(slot) of different slots
  // run concurrently. 1 for one at a time.
  virtual int Slots() const { return 1; }
  // The pending batch becomes the one Flush(slot) writes, and the pending one starts empty.
  // Called only once the slot's previous batch is flushed and its positions saved or left to
  // an earlier batch's writer, or forgotten.
  virtual void Seal(int slot) { (void)slot; }
  // Drops the slot's sealed batch, whatever of it was written (its partitions were given up
  // before it was acknowledged: their next owner sends it again from the saved positions), so
  // that the next Seal(slot) starts afresh. By the slot's writer, or the reader when none is busy.
  virtual void Forget(int slot) = 0;
  // Writes the slot's sealed batch. OK once every record of it is acknowledged or dead-lettered
  // (then the batch is forgotten); an error keeps what is still to send, and Flush is called
  // again after a backoff.
  virtual Status Flush(int slot) = 0;
  // Saves the positions after flushed batches; retried until OK. Called by one thread at a time,
  // with positions that only grow, and only after every batch before them was flushed.
  virtual Status SavePositions(const std::map<int32_t, int64_t>& next) = 0;
};

struct LogFollowerOptions {
  std::string name;      // "clickhouse sink": starts its log lines
  std::string topic;     // "raw"
  std::string consumer;  // its group's name in the log (for `mare log groups`)
  std::string server;    // the destination's address, for log lines
  // What the positions belong to (the server and its database or index prefix). On a log with
  // consumer groups, the followers of one topic into one destination form one group, named
  // <consumer>-<topic>-<8 hex digits of this>; into another destination, another group, which
  // reads every partition too (a second ClickHouse must not get only half of the readings).
  std::string destination;
  size_t batch = 5000;   // records per batch at most
  // How long a batch may wait for more records before it is flushed; 0: each poll is a batch.
  int64_t max_delay_us = 0;
  int64_t retry_initial_us = 100'000;
  int64_t retry_max_us = 5'000'000;
  // In a group: how long giving partitions up may wait for what was read of them to be written
  // (the whole group's rebalance waits meanwhile); past it the rest is dropped unsaved. 0: no limit.
  int64_t revoke_timeout_us = 30'000'000;
  // For raw: records repeating the key and timestamp of one appended within the horizon before
  // are read but not handed to the destination (log/duplicate_filter.h); rebuilt at Prepare,
  // except, in a group, for the partitions it kept across a rebalance with the filter exact.
  log::DuplicateFilterOptions dedup;
};

// Its metrics' names (labelled topic=...), declared in each sink's metrics header.
struct LogFollowerMetrics {
  metrics::Metric records_read;   // counter
  metrics::Metric errors;         // counter: failed attempts, retried
  metrics::Metric lag;            // gauge: records not yet committed
  metrics::Metric batch_seconds;  // histogram: a batch's first write to its saved position
  metrics::Metric duplicates;     // counter: records the duplicate filter dropped
  metrics::Metric partitions;     // gauge: partitions this follower owns (all, outside a group)
  metrics::Metric rebalances;     // counter: assignments the consumer group gave it
};

// The Kafka group of the followers of `topic` into `destination` (LogFollowerOptions::destination).
std::string SinkGroupName(const std::string& consumer, const std::string& topic, std::string_view destination);

class LogFollower {
 public:
  LogFollower(LogFollowerOptions options, std::unique_ptr<Destination> destination, log::Log* log,
              const LogFollowerMetrics& names, metrics::Registry* registry);
  ~LogFollower();
  LogFollower(const LogFollower&) = delete;
  LogFollower& operator=(const LogFollower&) = delete;

  // Subscribes (or joins the group) and starts the thread. Fails only for a topic that does not
  // exist, or a group the log cannot join.
  Status Start();
  void Stop();
  SinkHealth health() const { return health_.Get(options_.topic); }

 private:
  void Run();
  // Reads the next records, from the consumer or the group member.
  Status Poll(std::vector<log::ConsumedRecord>* records);
  // The group's handlers, on the reader thread inside Poll.
  void Revoked(const std::vector<int32_t>& partitions);
  void Lost(const std::vector<int32_t>& partitions);
  Result<std::vector<int64_t>> Assigned(const std::vector<int32_t>& partitions);
  // After Finish gave up (or instead of it): every batch read and not acknowledged is dropped,
  // its positions never saved; the writers wait for the next batch.
  void Abandon();
  // Whether retries end: stopped, or past give_up_at_.
  bool Ending() const;
  // After a failed poll in a group: finishes what was read, leaves and joins again.
  void Rejoin(const Status& why);
  Status JoinGroup();
  // Hands the pending batch over (or writes it) and waits until every batch read so far is
  // acknowledged and its positions saved; false when stopped first.
  bool Finish();
  // The pending batch, sealed: handed to a writer (pipelined) or written here. False when
  // stopped first.
  bool SealPending();
  // Flushes the sealed batch of slot 0 and saves `next`, retrying; false when stopped first.
  bool Write(const std::map<int32_t, int64_t>& next, int64_t batch_start);
  // A pipelined destination's writer thread of `slot`: flushes each batch sealed there, then
  // saves the positions after every batch acknowledged in order (commits_).
  void WriteHandedOver(int slot);
  // Seals the pending batch into a free slot for its writer; waits while every slot is writing,
  // or while as many batches as there are slots wait for their positions to be saved. False
  // when stopped first.
  bool HandOver(const std::map<int32_t, int64_t>& next, int64_t batch_start);
  // Takes the positions the writers saved into committed_ and the log's consumer group.
  void CommitWritten();
  // Sleeps *backoff (cut short by Stop) and doubles it; false once stopped.
  bool Backoff(int64_t* backoff);
  void Warn(const Status& s, int64_t backoff);
  void UpdateLag();
  void SetOwned();  // the partitions gauge, from committed_
  // Calls `attempt` until OK, backing off between tries; false when stopped first.
  template <typename F>
  bool UntilDone(F attempt);

  const LogFollowerOptions options_;
  std::unique_ptr<Destination> destination_;
  log::Log* log_;
  std::unique_ptr<log::Consumer> consumer_;  // outside a group: every partition
  std::unique_ptr<log::GroupMember> member_;  // in a group
  bool group_mode_ = false;
  int32_t partitions_ = 0;
  std::atomic<bool> stop_{false};
  // Monotonic µs past which writes and saves are not retried (Revoked's bound, or at once when
  // partitions are lost); kNever otherwise.
  static constexpr int64_t kNever = INT64_MAX;
  std::atomic<int64_t> give_up_at_{kNever};
  std::thread thread_;
  std::vector<std::thread> writers_;  // a pipelined destination's, one per slot
  bool pipelined_ = false;

  // Between the reader and a pipelined destination's writers.
  std::mutex mu_;
  std::condition_variable cv_;
  struct Slot {
    bool busy = false;  // a sealed batch waits for its writer or is being written
    uint64_t batch = 0;  // its number in commits_
  };
  std::vector<Slot> slots_;
  InOrderCommits commits_;              // the batches handed over, until their positions are saved
  std::mutex save_mu_;                  // one SavePositions at a time, in batch order
  std::map<int32_t, int64_t> written_;  // positions saved by the writers, not yet in committed_
  bool unsaved_ = false;                // a writer took acknowledged batches and gave up saving them (until Abandon)

  // The reader's: next offset per partition owned, as saved by the destination; its keys are
  // the partitions owned.
  std::map<int32_t, int64_t> committed_;
  // The pending batch: the positions after it, its records, when its first was read.
  std::map<int32_t, int64_t> next_;
  size_t pending_ = 0;
  int64_t batch_start_ = 0;
  log::DuplicateFilter duplicates_;
  // Per partition, the offset after the last record the filter judged (while enabled): kept
  // across a revocation only if everything read was written and saved (Revoked).
  std::map<int32_t, int64_t> judged_;
  std::vector<log::ConsumedRecord> kept_;  // a poll's records less the duplicates
  std::atomic<int64_t> last_warning_{0};  // of Warn, by any writer
  HealthRecorder health_;

  metrics::Counter& records_read_;
  metrics::Counter& errors_;
  metrics::Gauge& lag_;
  metrics::Histogram& batch_seconds_;
  metrics::Counter& duplicates_dropped_;
  metrics::Gauge& owned_;
  metrics::Counter& rebalances_;
};

}  // namespace mare::sinks
