#include "sources/raw_readback.h"

#include <algorithm>
#include <chrono>
#include <vector>

namespace mare {
namespace {

constexpr auto kPollTimeout = std::chrono::milliseconds(500);
constexpr int kMaxEmptyPolls = 20;  // 10 s without a record below the end: the log is away

// A consumer of the topic that reads only `partition`: every other partition sits at its end.
struct PartitionReader {
  std::unique_ptr<log::Consumer> consumer;
  int32_t partition = 0;
  int64_t start = 0, end = 0;
  std::vector<log::ConsumedRecord> batch;

  static Result<PartitionReader> Open(log::Log* log, const std::string& topic, int32_t partition) {
    auto info = log->Describe(topic);
    if (!info.ok()) return info.status();
    auto c = log->Subscribe(kDedupReadbackGroup, topic);
    if (!c.ok()) return c.status();
    PartitionReader r;
    r.consumer = std::move(*c);
    r.partition = partition;
    for (const log::PartitionInfo& p : *info) {
      if (Status s = r.consumer->Seek(p.partition, p.end_offset); !s.ok()) return s;
      if (p.partition == partition) {
        r.start = p.start_offset;
        r.end = p.end_offset;
      }
    }
    return r;
  }

  // Reads [from, to) of the partition, calling `each` with every record.
  Status Read(int64_t from, int64_t to, const std::function<void(const log::ConsumedRecord&)>& each) {
    if (Status s = consumer->Seek(partition, from); !s.ok()) return s;
    int empty = 0;
    int64_t next = from;
    while (next < to) {
      if (Status s = consumer->Poll(&batch, 4096, kPollTimeout); !s.ok()) return s;
      if (batch.empty()) {
        if (++empty >= kMaxEmptyPolls) {
          return Status::Unavailable("raw topic partition " + std::to_string(partition) + ": nothing read at offset " +
                                     std::to_string(next) + " of " + std::to_string(to));
        }
        continue;
      }
      empty = 0;
      for (const log::ConsumedRecord& r : batch) {
        if (r.partition != partition) continue;
        next = r.offset + 1;
        if (r.offset < to) each(r);
      }
    }
    return consumer->Seek(partition, end);
  }

  // The append time of the record at `offset` (or the first one after it).
  Result<int64_t> AppendTime(int64_t offset) {
    int64_t t = 0;
    bool found = false;
    Status s = Read(offset, offset + 1, [&](const log::ConsumedRecord& r) {
      t = r.append_time_us;
      found = true;
    });
    if (!s.ok()) return s;
    if (!found) return Status::NotFound("no record at offset " + std::to_string(offset));
    return t;
  }
};

}  // namespace

Result<uint64_t> ReadRawTail(log::Log* log, const std::string& topic, int32_t partition, int64_t span_us,
                             const std::function<void(const log::ConsumedRecord&)>& each) {
  auto reader = PartitionReader::Open(log, topic, partition);
  if (!reader.ok()) return reader.status();
  PartitionReader& r = *reader;
  if (r.end <= r.start) return uint64_t{0};
  auto newest = r.AppendTime(r.end - 1);
  if (!newest.ok()) return newest.status();
  // Append times only grow along a partition: the first record within the span, by bisection.
  const int64_t threshold = *newest - span_us;
  int64_t lo = r.start, hi = r.end - 1;
  while (lo < hi) {
    int64_t mid = lo + (hi - lo) / 2;
    auto t = r.AppendTime(mid);
    if (!t.ok()) return t.status();
    if (*t >= threshold) {
      hi = mid;
    } else {
      lo = mid + 1;
    }
  }
  uint64_t n = 0;
  Status s = r.Read(lo, r.end, [&](const log::ConsumedRecord& record) {
    ++n;
    each(record);
  });
  if (!s.ok()) return s;
  return n;
}

Result<std::optional<std::string>> FindRawRecord(log::Log* log, const std::string& topic, int32_t partition,
                                                 std::string_view key, int64_t timestamp_us, int64_t max_records) {
  auto reader = PartitionReader::Open(log, topic, partition);
  if (!reader.ok()) return reader.status();
  PartitionReader& r = *reader;
  const int64_t lowest = std::max(r.start, r.end - max_records);
  // Backwards in chunks from the end: a duplicate's first copy is usually recent.
  for (int64_t hi = r.end; hi > lowest;) {
    int64_t lo = std::max(lowest, hi - 4096);
    std::optional<std::string> found;
    Status s = r.Read(lo, hi, [&](const log::ConsumedRecord& record) {
      if (record.timestamp_us == timestamp_us && record.key == key) found = std::string(record.value);
    });
    if (!s.ok()) return s;
    if (found) return found;
    hi = lo;
  }
  return std::optional<std::string>();
}

}  // namespace mare
