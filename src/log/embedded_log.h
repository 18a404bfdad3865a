// The embedded log: mare's own durable log, a directory of append-only segment files per
// topic partition (format: docs/formats/log.md). Needs no other server.
//
// Durability: Append() write()s each batch before returning, so a killed process loses
// nothing acknowledged. fsync policy "interval" (default) syncs every fsync_interval_us from a
// background thread, bounding what a power loss can take; "batch" syncs before each Append
// returns; "never" leaves it to the operating system.
//
// On open, each partition's newest segment is checked batch by batch: a torn tail (a batch cut
// short by a crash) is truncated away and reported in the log and in metrics; a batch whose
// checksum does not match is corruption, and opening fails with Status::Corruption naming
// the file and position, unless repair is set, which truncates there and says so.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "common/metrics.h"
#include "log/log.h"

namespace mare::log {

enum class FsyncPolicy { kInterval, kBatch, kNever };

// "interval", "batch", "never": the policy's name in config log.fsync.
inline const char* FsyncPolicyName(FsyncPolicy p) {
  return p == FsyncPolicy::kBatch ? "batch" : p == FsyncPolicy::kNever ? "never" : "interval";
}

struct EmbeddedLogOptions {
  std::string dir;                                  // created if absent
  FsyncPolicy fsync = FsyncPolicy::kInterval;
  int64_t fsync_interval_us = 1'000'000;
  int64_t segment_bytes = 64LL << 20;               // roll to a new segment past this size
  int64_t segment_age_us = 3'600'000'000;           // ... or when the active one is this old
  int64_t retention_check_interval_us = 60'000'000;  // also how often compaction looks for work
  // Compaction of topics created with `compact` (docs/formats/log.md, "Compaction"): a closed
  // segment is compacted once its newest batch is this old, so recent records stay whole
  // (Kafka's min.compaction.lag.ms) ...
  int64_t compaction_lag_us = 0;
  // ... and a partition once its not yet compacted bytes are at least this share of its closed
  // segments' (Kafka's min.cleanable.dirty.ratio), which bounds how often old segments are read
  // and rewritten again.
  double compaction_dirty_ratio = 0.5;
  // Memory of one compaction pass: the key -> newest offset table (24 bytes a key, at most 3/4
  // full). A pass covers as many new records as their distinct keys fit in it.
  int64_t compaction_map_bytes = 32LL << 20;
  // Tests: called after each step of a segment's compaction ("written": the compacted copy is
  // written and synced; "renamed": it has replaced the segment); true stops the compaction
  // there, as a crash would.
  std::function<bool(std::string_view step)> compaction_fault;
  bool read_only = false;  // for `mare log` beside a running process: no lock, no truncation
  bool repair = false;     // truncate at a corrupt batch instead of failing to open
                           // (read_only: stop reading there instead of failing)
  metrics::Registry* metrics = nullptr;  // defaults to Registry::Global()
  // Wall clock (UTC microseconds) for append times, segment age and retention; defaults to
  // NowMicros. Tests substitute a fake clock to exercise retention without waiting.
  int64_t (*now_us)() = nullptr;
};

Result<std::unique_ptr<Log>> OpenEmbeddedLog(const EmbeddedLogOptions& options);

}  // namespace mare::log
