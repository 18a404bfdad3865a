// DuplicateFilter: the filter every consumer of the raw topic applies (the rollups, the store, the
// sinks), so that two copies of a reading that both reached the log (two `mare ingest` processes
// on Kafka, each given one) are counted once by all of them alike, without talking (issue 19).
//
// The rule, on the log alone: a record is a duplicate when an earlier record of its partition
// has the same key and timestamp (for raw: sensor and event time) and was appended at most
// `horizon` before it. Every consumer reads a partition in offset order, so all of them keep the
// same copy, the first. The rule looks only at the records appended within the horizon before
// the one judged, so a consumer (re)starting at offset N rebuilds all it needs from the records
// appended within the horizon before N - 1's (Rebuild; where they begin is asked of Kafka's index
// by append time, found by bisection in the embedded log): where it starts never changes what it
// keeps. Memory: 40 to 56 bytes per record appended within the
// horizon (a FIFO of 24-byte entries and a hash table of 8-byte slots a quarter to half full;
// up to 88 after the rate fell, until it shrinks): for 1,000 readings a second and the
// 10-minute horizon, 600,000 records, 24 to 34 MB.
//
// Keys in decimal (sensor ids) are compared exactly; any other key by a 64-bit hash.
// Not thread-safe: one per consumer, used from its thread.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"
#include "log/log.h"

namespace mare::log {

// Owned here, set by config/ for every consumer of raw alike ([log] dedup, ingest.dedup_horizon).
struct DuplicateFilterOptions {
  bool enabled = false;
  int64_t horizon_us = 600'000'000;  // 10m: ingest.dedup_horizon
};

// The group of the consumer Rebuild reads with; it never commits.
inline constexpr const char* kDuplicateFilterGroup = "mare-dedup-readback";

class DuplicateFilter {
 public:
  explicit DuplicateFilter(DuplicateFilterOptions options = {});
  ~DuplicateFilter();
  DuplicateFilter(DuplicateFilter&&) noexcept;
  DuplicateFilter& operator=(DuplicateFilter&&) noexcept;

  bool enabled() const { return options_.enabled; }
  const DuplicateFilterOptions& options() const { return options_; }

  // Whether `record` is a duplicate under the rule; it is remembered either way. A partition's
  // records must come in offset order, each once (after a Rebuild or Reset where they go back).
  // Always false when not enabled.
  bool Drop(const ConsumedRecord& record);

  // Forgets what it knew of the partitions and reads back, from `topic` of `log`, what Drop needs
  // to judge each one's records from `next[i]` on as it would after reading all before.
  Status Rebuild(Log* log, const std::string& topic, const std::vector<std::pair<int32_t, int64_t>>& next);
  void Reset();                   // every partition
  void Reset(int32_t partition);  // one

  size_t records() const;  // remembered, all partitions together
  size_t MemoryBytes() const;

 private:
  class Partition;
  DuplicateFilterOptions options_;
  std::vector<std::unique_ptr<Partition>> partitions_;  // by partition, made on first use
};

}  // namespace mare::log
