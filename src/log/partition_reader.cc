#include "log/partition_reader.h"

#include <algorithm>
#include <chrono>
#include <map>

namespace mare::log {
namespace {

constexpr auto kPollTimeout = std::chrono::milliseconds(500);
constexpr int kMaxEmptyPolls = 20;  // 10 s without a record below the end: the log is away

}  // namespace

Result<PartitionReader> PartitionReader::Open(Log* log, const std::string& group, const std::string& topic) {
  auto info = log->Describe(topic);
  if (!info.ok()) return info.status();
  auto c = log->Subscribe(group, topic);
  if (!c.ok()) return c.status();
  PartitionReader r;
  r.consumer_ = std::move(*c);
  r.info_ = std::move(*info);
  // Every partition at its end, so that a poll returns only the partition being read.
  for (const PartitionInfo& p : r.info_) MARE_RETURN_IF_ERROR(r.consumer_->Seek(p.partition, p.end_offset));
  return r;
}

int64_t PartitionReader::start(int32_t partition) const {
  for (const PartitionInfo& p : info_) {
    if (p.partition == partition) return p.start_offset;
  }
  return 0;
}

int64_t PartitionReader::end(int32_t partition) const {
  for (const PartitionInfo& p : info_) {
    if (p.partition == partition) return p.end_offset;
  }
  return 0;
}

Status PartitionReader::Read(int32_t partition, int64_t from, int64_t to,
                             const std::function<void(const ConsumedRecord&)>& each) {
  return Read(std::vector<Range>{{partition, from, to}}, each);
}

Status PartitionReader::Read(const std::vector<Range>& ranges, const std::function<void(const ConsumedRecord&)>& each) {
  std::map<int32_t, Range> left;  // by partition: the next offset to read, and the range's end
  for (const Range& r : ranges) {
    if (r.from >= r.to) continue;
    MARE_RETURN_IF_ERROR(consumer_->Seek(r.partition, r.from));
    left[r.partition] = r;
  }
  std::vector<int32_t> read;
  for (const auto& [p, r] : left) read.push_back(p);
  int empty = 0;
  while (!left.empty()) {
    MARE_RETURN_IF_ERROR(consumer_->Poll(&batch_, 4096, kPollTimeout));
    for (const ConsumedRecord& c : batch_) {
      auto it = left.find(c.partition);
      if (it == left.end()) continue;  // done, or not asked for (appended since Open)
      if (c.offset < it->second.to) each(c);
      it->second.from = c.offset + 1;
      if (it->second.from >= it->second.to) left.erase(it);
    }
    // A range may end in offsets that hold no record (on Kafka, transactions' markers and
    // aborted records): the consumer's position passes them.
    std::erase_if(left, [&](const auto& e) { return consumer_->Position(e.first) >= e.second.to; });
    if (!batch_.empty()) {
      empty = 0;
    } else if (!left.empty() && ++empty >= kMaxEmptyPolls) {
      const Range& r = left.begin()->second;
      return Status::Unavailable("partition " + std::to_string(r.partition) + ": nothing read at offset " +
                                 std::to_string(r.from) + " of " + std::to_string(r.to));
    }
  }
  for (int32_t p : read) MARE_RETURN_IF_ERROR(consumer_->Seek(p, end(p)));
  return Status::OK();
}

Result<int64_t> PartitionReader::AppendTime(int32_t partition, int64_t offset) {
  int64_t t = 0;
  bool found = false;
  // A few offsets: one may hold no record (on Kafka, a transaction's marker).
  MARE_RETURN_IF_ERROR(Read(partition, offset, std::max(offset + 1, std::min(end(partition), offset + 8)),
                            [&](const ConsumedRecord& r) {
                              if (!found) t = r.append_time_us;
                              found = true;
                            }));
  if (!found) return Status::NotFound("no record at offset " + std::to_string(offset));
  return t;
}

Result<uint64_t> PartitionReader::ReadAppendedWithin(const std::vector<std::pair<int32_t, int64_t>>& ends,
                                                     int64_t span_us,
                                                     const std::function<void(const ConsumedRecord&)>& each) {
  std::vector<Range> ranges;  // [oldest retained, end) at first
  for (const auto& [p, e] : ends) {
    int64_t to = std::min(e, end(p));
    if (to > start(p)) ranges.push_back({p, start(p), to});
  }
  if (ranges.empty()) return uint64_t{0};
  // The append time of each partition's newest record, which every record to read back is
  // within span_us of. The last offsets may hold none (on Kafka, transactions' markers and
  // aborted records): then further back, in windows growing fourfold.
  std::map<int32_t, int64_t> newest;
  std::map<int32_t, int64_t> below;  // the partitions still looked for, and where from
  for (const Range& r : ranges) below[r.partition] = r.to;
  for (int64_t window = 1; !below.empty(); window *= 4) {
    std::vector<Range> lasts;
    for (const auto& [p, hi] : below) lasts.push_back({p, std::max(start(p), hi - window), hi});
    MARE_RETURN_IF_ERROR(Read(lasts, [&](const ConsumedRecord& c) { newest[c.partition] = c.append_time_us; }));
    for (const Range& l : lasts) {
      if (newest.contains(l.partition) || l.from <= start(l.partition)) {
        below.erase(l.partition);
      } else {
        below[l.partition] = l.from;
      }
    }
  }
  std::erase_if(ranges, [&](const Range& r) { return !newest.contains(r.partition); });  // no record at all
  if (ranges.empty()) return uint64_t{0};
  std::vector<std::pair<int32_t, int64_t>> thresholds;
  for (const Range& r : ranges) thresholds.emplace_back(r.partition, newest[r.partition] - span_us);
  auto indexed = consumer_->OffsetsForTimes(thresholds);
  if (!indexed.ok()) return indexed.status();
  for (size_t i = 0; i < ranges.size(); ++i) {
    Range& r = ranges[i];
    int64_t first = 0;
    if (*indexed) {
      first = (**indexed)[i];
    } else {  // the oldest record appended at the threshold or later, by bisection
      int64_t lo = r.from, hi = r.to - 1;
      while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        auto t = AppendTime(r.partition, mid);
        if (!t.ok()) return t.status();
        if (*t >= thresholds[i].second) {
          hi = mid;
        } else {
          lo = mid + 1;
        }
      }
      first = lo;
    }
    // At most end - 1, which is within the span: also if the index and the records disagree.
    r.from = std::clamp(first, r.from, r.to - 1);
  }
  uint64_t n = 0;
  MARE_RETURN_IF_ERROR(Read(ranges, [&](const ConsumedRecord& c) {
    ++n;
    each(c);
  }));
  return n;
}

}  // namespace mare::log
