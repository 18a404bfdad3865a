// PartitionReader: reads ranges of one topic's partitions back, by offset or by append time,
// with a consumer of its own that never commits: what ingest's dedup windows and the consumers'
// duplicate filters are rebuilt from (sources/raw_readback.h, log/duplicate_filter.h).
//
//   auto reader = PartitionReader::Open(log, "mare-dedup-readback", "raw");  // Result<PartitionReader>
//   reader->ReadAppendedWithin(2, /*end=*/1000, /*span_us=*/600'000'000, each);
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"
#include "log/log.h"

namespace mare::log {

class PartitionReader {
 public:
  // A consumer of `topic` in group `group` (never committed) with every partition at its end.
  static Result<PartitionReader> Open(Log* log, const std::string& group, const std::string& topic);

  // The partition's oldest retained offset and the offset its next record will get, as of Open.
  int64_t start(int32_t partition) const;
  int64_t end(int32_t partition) const;

  // Calls `each` with every record of [from, to) of the partition, in offset order.
  Status Read(int32_t partition, int64_t from, int64_t to, const std::function<void(const ConsumedRecord&)>& each);
  // The append time of the record at `offset` (or of the first one after it).
  Result<int64_t> AppendTime(int32_t partition, int64_t offset);
  // Calls `each` with the records of [first, end) in offset order, where `first` is the oldest
  // retained offset appended at most `span_us` before the record at end - 1 (append times only
  // grow along a partition, so it is found by bisection). Returns how many.
  Result<uint64_t> ReadAppendedWithin(int32_t partition, int64_t end, int64_t span_us,
                                      const std::function<void(const ConsumedRecord&)>& each);

 private:
  std::unique_ptr<Consumer> consumer_;
  std::vector<PartitionInfo> info_;
  std::vector<ConsumedRecord> batch_;
};

}  // namespace mare::log
