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
#include <utility>
#include <vector>

#include "common/status.h"
#include "log/log.h"

namespace mare::log {

class PartitionReader {
 public:
  // A consumer of `topic` in group `group` (never committed) with every partition at its end.
  static Result<PartitionReader> Open(Log* log, const std::string& group, const std::string& topic);

  // The partition's oldest retained offset and its end as of Open: the offset its next record
  // will get (on Kafka, read_committed, the last stable offset: an open transaction's start).
  int64_t start(int32_t partition) const;
  int64_t end(int32_t partition) const;

  // Calls `each` with every record of [from, to) of the partition, in offset order. Offsets
  // that hold no record (on Kafka, transactions' markers and aborted records) are passed over.
  Status Read(int32_t partition, int64_t from, int64_t to, const std::function<void(const ConsumedRecord&)>& each);
  // The same for ranges of distinct partitions, read together (one fetch serves them all), in
  // offset order within each partition.
  struct Range {
    int32_t partition = 0;
    int64_t from = 0, to = 0;
  };
  Status Read(const std::vector<Range>& ranges, const std::function<void(const ConsumedRecord&)>& each);
  // The append time of the record at `offset` (or of the first one after it).
  Result<int64_t> AppendTime(int32_t partition, int64_t offset);
  // For each (partition, end): calls `each` with the records of [first, end) in offset order,
  // where `first` is the oldest retained offset appended at most `span_us` before the newest
  // record below end (a partition without one is skipped). Returns how many. The partitions go
  // together: their newest records in one read (or a few, back past offsets without records), their `first`s in one request where the log indexes records by append time
  // (Consumer::OffsetsForTimes; elsewhere by bisection, as append times only grow along a
  // partition), and their ranges in one read.
  Result<uint64_t> ReadAppendedWithin(const std::vector<std::pair<int32_t, int64_t>>& ends, int64_t span_us,
                                      const std::function<void(const ConsumedRecord&)>& each);
  Result<uint64_t> ReadAppendedWithin(int32_t partition, int64_t end, int64_t span_us,
                                      const std::function<void(const ConsumedRecord&)>& each) {
    return ReadAppendedWithin({{partition, end}}, span_us, each);
  }

 private:
  std::unique_ptr<Consumer> consumer_;
  std::vector<PartitionInfo> info_;
  std::vector<ConsumedRecord> batch_;
};

}  // namespace mare::log
