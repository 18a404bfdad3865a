// RollupProcessor: the rollup stream processor on its own thread. It reads the raw topic as
// consumer group "rollup", feeds RollupState, appends what changed to the rollups topic every
// emit_interval, and checkpoints state and input offsets together every checkpoint_interval.
// `mare run` starts one beside the sources; `mare stream` runs one alone.
//
//   auto p = RollupProcessor::Start(options, log, dead_letter, &registry);  // Result<unique_ptr>
//   ...
//   Status s = (*p)->Stop();    // emits what is pending, writes a final checkpoint
//
// On Kafka (group_mode) several processors share the raw partitions as one consumer group, and
// the checkpoint lives in Kafka instead of a file: every emit_interval one transaction carries
// the rollups emitted, each changed partition's state (topic rollup-state, compacted) and the
// group's input offsets. A partition that moves to another processor (a rebalance, or a
// processor killed) is restored there from its last committed state and read on from the
// offsets committed with it (docs/formats/kafka.md).
//
// A step that fails with a transient error (a full disk: an append to rollups, a checkpoint)
// is retried with backoff as a restart would: the state and the raw offsets rewound to the
// last checkpoint, what followed read and emitted again (identical messages), so nothing is
// skipped or counted twice; health() says why while it cannot. In group mode the member leaves
// the group and joins again instead (its transaction aborted or fenced by its successor).
//
// Exactly-once with respect to the log: on start the checkpoint (or nothing: from the oldest
// retained reading) gives both the state and the raw offsets it reflects, so every reading is
// counted once. Messages appended after the last checkpoint are appended again, identical, by
// the restarted processor (docs/formats/rollup-checkpoint.md explains why they are).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/metrics.h"
#include "common/status.h"
#include "log/consumer_thread.h"
#include "log/duplicate_filter.h"
#include "log/log.h"
#include "processors/rollup/rollup_state.h"
#include "processors/rollup/window.h"
#include "reading/dead_letter.h"

namespace mare::rollup {

// The [rollup] section of the configuration, and the flags of `mare stream`.
struct RollupOptions {
  bool enabled = true;
  std::vector<Resolution> resolutions = RollupStateOptions{}.resolutions;  // 1m, 1h, 1d
  int64_t lateness_us = 600'000'000;                                       // 10m
  // While nothing arrives, the watermark runs on with the wall clock (RollupState::
  // AdvanceIdleWatermark): the last windows of a quiet sensor or network close (and their hour's
  // forecast is issued) once the window and the lateness are over, not at the next reading.
  bool idle_watermark = true;
  int64_t emit_interval_us = 1'000'000;                                    // 1s
  int64_t checkpoint_interval_us = 1'000'000;                              // 1s
  // The embedded log's codec for the output topic's batches (docs/formats/log.md, "Compressed
  // batches"): its JSON records compress about tenfold in the batches the processor appends.
  std::string compression = "zstd";
  std::string checkpoint_dir;  // required: <data_dir>/rollup; holds the file "checkpoint"

  std::string input_topic = "raw";
  std::string output_topic = "rollups";
  // The output topic's age retention (log.retention), beside its compaction.
  int64_t output_retention_us = 7LL * 86'400'000'000;
  std::string group = "rollup";
  size_t poll_records = 4096;
  // Kafka: share the partitions with the group's other processors; state in state_topic,
  // committed in Kafka transactions with the rollups and offsets. member: unique in the group.
  bool group_mode = false;
  std::string member;
  std::string state_topic = "rollup-state";
  // Log::Sync() before each checkpoint, so that what the checkpoint says was read and emitted
  // is on disk too (a power loss then cannot leave a checkpoint ahead of the log).
  bool sync_log_before_checkpoint = true;
  // A second copy of a reading in the raw topic is not counted (log/duplicate_filter.h); set by
  // config/ from [log] dedup, as for every consumer of raw.
  log::DuplicateFilterOptions dedup;
};

class RollupProcessor {
 public:
  // Loads the checkpoint, creates the output topic (as many partitions as the input) and
  // starts the thread. dead_letter may be null (late readings are then only counted).
  static Result<std::unique_ptr<RollupProcessor>> Start(const RollupOptions& options, log::Log* log,
                                                        DeadLetter* dead_letter, metrics::Registry* registry);
  ~RollupProcessor();  // Stop()

  // Emits what is pending, writes a final checkpoint, joins the thread. Returns the first
  // error the thread met (it stops on an error: nothing is skipped). Idempotent.
  Status Stop();

  // False while the thread retries a failed step, or once it stopped on an error (Stop()).
  bool healthy() const { return thread_.healthy(); }
  log::ConsumerHealth health() const { return thread_.health(); }
  // Raw records not yet read, summed over partitions (as of the last refresh, every second).
  int64_t lag() const { return thread_.lag(); }
  // Raw records read so far (the sum of the next offsets over partitions), counted or not.
  int64_t consumed() const { return thread_.consumed(); }
  std::string checkpoint_path() const { return options_.checkpoint_dir + "/checkpoint"; }

 private:
  RollupProcessor(const RollupOptions& options, log::Log* log, DeadLetter* dead_letter, metrics::Registry* registry,
                  int32_t partitions);
  Status Recover();
  // The state and the input positions as the checkpoint has them (none: from the oldest).
  Status Rewind();
  // The duplicate filter of the partitions read from the state's positions (Rewind, Restore).
  Status RebuildFilter(const std::vector<int32_t>& partitions);
  Status JoinGroup(int64_t start_timeout_us = -1);  // log::GroupOptions::start_timeout_us
  // In group mode, after a transient failure: a new member, as a restart would make (the old
  // one's transaction may be stuck half aborted, or its consumer in error for good).
  Status Rejoin();
  Result<std::vector<int64_t>> Restore(const std::vector<int32_t>& partitions, const std::vector<int64_t>& committed);
  Status CommitTransaction();
  Status Step();
  Status EmitPending();
  // Appends messages_ to the output topic (in group mode: produces them in the transaction).
  Status AppendMessages();
  Status Checkpoint();
  void RefreshLag();
  void RefreshHealth();

  const RollupOptions options_;
  log::Log* const log_;
  DeadLetter* const dead_letter_;
  RollupState state_;
  log::DuplicateFilter duplicates_;  // what the state skipped is not checkpointed: rebuilt
  std::unique_ptr<log::Consumer> consumer_;     // the checkpoint-file mode
  std::unique_ptr<log::GroupMember> member_;   // group mode
  std::vector<bool> changed_;                  // group mode: partitions changed since the last commit
  std::vector<log::ConsumedRecord> batch_;
  RollupMessages messages_;  // kept from one emission to the next
  Status flush_status_;      // of the parts of an emission appended while it is made
  std::vector<std::vector<log::Record>> by_partition_;
  std::string checkpoint_scratch_;
  int64_t next_emit_us_ = 0;
  int64_t next_checkpoint_us_ = 0;
  int64_t next_lag_us_ = 0;
  int64_t last_read_us_ = 0;  // monotonic: when a poll last returned records (or the start)
  uint64_t counted_before_ = 0;
  uint64_t dropped_before_ = 0;

  log::ConsumerThread thread_;

  metrics::Counter* readings_;
  metrics::Counter* emitted_;
  metrics::Counter* dropped_late_;
  metrics::Counter* duplicates_dropped_;
  metrics::Gauge* watermark_;
  metrics::Gauge* lag_gauge_;
  metrics::Gauge* open_windows_;
  metrics::Histogram* checkpoint_seconds_;
  metrics::Gauge* consumer_up_;
  metrics::Counter* failures_;
};

}  // namespace mare::rollup
