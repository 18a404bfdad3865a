// Reading the raw topic back for deduplication: the tail each partition's dedup window is
// rebuilt from when ingest starts (so a reading resent across a restart is still recognised),
// and the first copy of a reading a conflicting duplicate is set against in the dead-letter file.
// Both use a consumer of their own that never commits (group "mare-ingest-dedup"), through
// log::PartitionReader, which the consumers' duplicate filters share (log/duplicate_filter.h).
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "common/status.h"
#include "log/log.h"

namespace mare {

inline constexpr const char* kDedupReadbackGroup = "mare-ingest-dedup";

// Calls `each` with every record of partition `partition` appended within `span_us` before the
// partition's newest record (by append time), in offset order: the records the window held when
// the previous process stopped, for sensors that were sending then. Returns how many.
Result<uint64_t> ReadRawTail(log::Log* log, const std::string& topic, int32_t partition, int64_t span_us,
                             const std::function<void(const log::ConsumedRecord&)>& each);

// The value of the newest record of `partition` with this key and event time, searched among the
// last `max_records` records; nullopt if none is there.
Result<std::optional<std::string>> FindRawRecord(log::Log* log, const std::string& topic, int32_t partition,
                                                 std::string_view key, int64_t timestamp_us, int64_t max_records);

}  // namespace mare
