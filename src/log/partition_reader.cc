#include "log/partition_reader.h"

#include <algorithm>
#include <chrono>

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
  if (from >= to) return Status::OK();
  MARE_RETURN_IF_ERROR(consumer_->Seek(partition, from));
  int empty = 0;
  int64_t next = from;
  while (next < to) {
    MARE_RETURN_IF_ERROR(consumer_->Poll(&batch_, 4096, kPollTimeout));
    if (batch_.empty()) {
      if (++empty >= kMaxEmptyPolls) {
        return Status::Unavailable("partition " + std::to_string(partition) + ": nothing read at offset " +
                                   std::to_string(next) + " of " + std::to_string(to));
      }
      continue;
    }
    empty = 0;
    for (const ConsumedRecord& r : batch_) {
      if (r.partition != partition) continue;
      next = r.offset + 1;
      if (r.offset < to) each(r);
    }
  }
  return consumer_->Seek(partition, end(partition));
}

Result<int64_t> PartitionReader::AppendTime(int32_t partition, int64_t offset) {
  int64_t t = 0;
  bool found = false;
  MARE_RETURN_IF_ERROR(Read(partition, offset, offset + 1, [&](const ConsumedRecord& r) {
    t = r.append_time_us;
    found = true;
  }));
  if (!found) return Status::NotFound("no record at offset " + std::to_string(offset));
  return t;
}

Result<uint64_t> PartitionReader::ReadAppendedWithin(int32_t partition, int64_t end, int64_t span_us,
                                                     const std::function<void(const ConsumedRecord&)>& each) {
  const int64_t start = this->start(partition);
  end = std::min(end, this->end(partition));
  if (end <= start) return uint64_t{0};
  auto newest = AppendTime(partition, end - 1);
  if (!newest.ok()) return newest.status();
  const int64_t threshold = *newest - span_us;
  int64_t lo = start, hi = end - 1;
  while (lo < hi) {
    int64_t mid = lo + (hi - lo) / 2;
    auto t = AppendTime(partition, mid);
    if (!t.ok()) return t.status();
    if (*t >= threshold) {
      hi = mid;
    } else {
      lo = mid + 1;
    }
  }
  uint64_t n = 0;
  MARE_RETURN_IF_ERROR(Read(partition, lo, end, [&](const ConsumedRecord& r) {
    ++n;
    each(r);
  }));
  return n;
}

}  // namespace mare::log
