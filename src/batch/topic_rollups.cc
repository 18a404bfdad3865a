#include "batch/topic_rollups.h"

#include <algorithm>
#include <chrono>
#include <limits>

#include "sinks/rollup_message.h"

namespace mare::batch {
namespace {

// Reads every partition of the topic from its first retained record to its end.
template <typename F>
Status ReadAll(log::Log& log, const std::string& topic, F&& each) {
  auto consumer = log.Subscribe("mare-batch", topic);
  if (!consumer.ok()) return consumer.status();
  auto info = log.Describe(topic);
  if (!info.ok()) return info.status();
  std::vector<int64_t> end(info->size());
  for (const log::PartitionInfo& p : *info) {
    MARE_RETURN_IF_ERROR((*consumer)->Seek(p.partition, p.start_offset));
    end[static_cast<size_t>(p.partition)] = p.end_offset;
  }
  // Done once every partition's position reaches its end as of Describe. Positions, not record
  // counts: a compacted topic (rollups) has gaps in its offsets.
  auto left = [&] {
    for (size_t p = 0; p < end.size(); ++p) {
      if ((*consumer)->Position(static_cast<int32_t>(p)) < end[p]) return true;
    }
    return false;
  };
  std::vector<log::ConsumedRecord> records;
  int idle = 0;
  while (left() && idle < 20) {
    records.clear();
    MARE_RETURN_IF_ERROR((*consumer)->Poll(&records, 4096, std::chrono::milliseconds(100)));
    if (records.empty()) {
      ++idle;  // records appended since Describe count nothing; a partition cut short stops us here
      continue;
    }
    idle = 0;
    for (const auto& r : records) {
      if (!each(r)) return Status::OK();
    }
  }
  return Status::OK();
}

}  // namespace

Status ReadTopicRollups(log::Log& log, const std::string& topic, int64_t from_us, int64_t to_us,
                        const std::vector<uint32_t>& sensors, const std::vector<std::string>& resolutions,
                        RollupsByKey* out, std::set<std::string>* keys) {
  sinks::RollupReader reader;
  sinks::RollupMessage m;
  Status bad;
  MARE_RETURN_IF_ERROR(ReadAll(log, topic, [&](const log::ConsumedRecord& r) {
    if (r.timestamp_us < from_us || r.timestamp_us >= to_us) return true;  // the record's time is its window's start
    Status s = reader.Read(r.value, &m);
    if (!s.ok()) {
      bad = s;
      return false;
    }
    if (!sensors.empty() && std::find(sensors.begin(), sensors.end(), m.sensor_id) == sensors.end()) return true;
    if (std::find(resolutions.begin(), resolutions.end(), m.resolution) == resolutions.end()) return true;
    std::string key = KeyOf(m);
    if (keys != nullptr) keys->insert(key);
    if (out != nullptr) {
      auto [it, inserted] = out->try_emplace(key, m);
      if (!inserted && m.revision >= it->second.revision) it->second = m;
    }
    return true;
  }));
  return bad;
}

Result<std::optional<int64_t>> RetainedSince(log::Log& log, const std::string& topic) {
  auto info = log.Describe(topic);
  if (!info.ok()) return info.status();
  bool dropped = std::any_of(info->begin(), info->end(), [](const log::PartitionInfo& p) { return p.start_offset > 0; });
  if (!dropped) return std::optional<int64_t>();
  auto consumer = log.Subscribe("mare-batch", topic);
  if (!consumer.ok()) return consumer.status();
  int64_t oldest = std::numeric_limits<int64_t>::max();
  for (const log::PartitionInfo& p : *info) {
    if (p.end_offset <= p.start_offset) continue;
    MARE_RETURN_IF_ERROR((*consumer)->Seek(p.partition, p.start_offset));
  }
  // The first record of each partition is about its oldest event time (a partition is in
  // arrival order, which is nearly event-time order).
  std::vector<log::ConsumedRecord> records;
  std::vector<bool> seen(info->size(), false);
  for (int round = 0; round < 20; ++round) {
    records.clear();
    MARE_RETURN_IF_ERROR((*consumer)->Poll(&records, 1024, std::chrono::milliseconds(100)));
    for (const auto& r : records) {
      if (seen[static_cast<size_t>(r.partition)]) continue;
      seen[static_cast<size_t>(r.partition)] = true;
      oldest = std::min(oldest, r.timestamp_us);
    }
    if (std::all_of(info->begin(), info->end(), [&](const log::PartitionInfo& p) {
          return p.end_offset <= p.start_offset || seen[static_cast<size_t>(p.partition)];
        })) {
      break;
    }
  }
  if (oldest == std::numeric_limits<int64_t>::max()) return std::optional<int64_t>();
  return std::optional<int64_t>(oldest);
}

}  // namespace mare::batch
