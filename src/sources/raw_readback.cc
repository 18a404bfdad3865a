#include "sources/raw_readback.h"

#include <algorithm>

#include "log/partition_reader.h"

namespace mare {

Result<uint64_t> ReadRawTail(log::Log* log, const std::string& topic, int32_t partition, int64_t span_us,
                             const std::function<void(const log::ConsumedRecord&)>& each) {
  auto reader = log::PartitionReader::Open(log, kDedupReadbackGroup, topic);
  if (!reader.ok()) return reader.status();
  return reader->ReadAppendedWithin(partition, reader->end(partition), span_us, each);
}

Result<std::optional<std::string>> FindRawRecord(log::Log* log, const std::string& topic, int32_t partition,
                                                 std::string_view key, int64_t timestamp_us, int64_t max_records) {
  auto reader = log::PartitionReader::Open(log, kDedupReadbackGroup, topic);
  if (!reader.ok()) return reader.status();
  log::PartitionReader& r = *reader;
  const int64_t end = r.end(partition);
  const int64_t lowest = std::max(r.start(partition), end - max_records);
  // Backwards in chunks from the end: a duplicate's first copy is usually recent.
  for (int64_t hi = end; hi > lowest;) {
    int64_t lo = std::max(lowest, hi - 4096);
    std::optional<std::string> found;
    Status s = r.Read(partition, lo, hi, [&](const log::ConsumedRecord& record) {
      if (record.timestamp_us == timestamp_us && record.key == key) found = std::string(record.value);
    });
    if (!s.ok()) return s;
    if (found) return found;
    hi = lo;
  }
  return std::optional<std::string>();
}

}  // namespace mare
