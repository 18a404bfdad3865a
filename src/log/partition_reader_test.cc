// PartitionReader over a log whose partitions hold offsets without records, as Kafka's do once
// written in transactions (each commit's marker, an aborted transaction's records): a range
// ending in them is read to its end, and reading back by append time starts from the newest
// record below the end, so that ingest's dedup windows are rebuilt from such a topic.
#include "log/partition_reader.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "common/scratch_dir.h"
#include "log/forwarding_log.h"
#include "log/log_with_topics.h"

namespace mare::log {
namespace {

constexpr int64_t kReaderSecond = 1'000'000;

std::atomic<int64_t> reader_clock{1'700'000'000'000'000};
int64_t ReaderClock() { return reader_clock.load(); }

// The embedded log, whose consumers never return a record valued "#" (a marker, or an aborted
// record, to a read_committed Kafka consumer) but move past it, as a Kafka consumer's position
// moves past them at the partition's end.
class LogWithMarkers final : public ForwardingLog {
 public:
  using ForwardingLog::ForwardingLog;

  Result<std::unique_ptr<Consumer>> Subscribe(const std::string& g, const std::string& t) override {
    auto c = ForwardingLog::Subscribe(g, t);
    if (!c.ok()) return c.status();
    return std::unique_ptr<Consumer>(std::make_unique<HidingConsumer>(std::move(*c)));
  }

 private:
  class HidingConsumer final : public Consumer {
   public:
    explicit HidingConsumer(std::unique_ptr<Consumer> real) : real_(std::move(real)) {}
    int64_t Position(int32_t p) const override { return real_->Position(p); }
    Status Seek(int32_t p, int64_t offset) override { return real_->Seek(p, offset); }
    Status Poll(std::vector<ConsumedRecord>* out, size_t max, std::chrono::milliseconds timeout) override {
      MARE_RETURN_IF_ERROR(real_->Poll(out, max, timeout));
      std::erase_if(*out, [](const ConsumedRecord& r) { return r.value == "#"; });
      return Status::OK();
    }
    Status Commit(int32_t p, int64_t next) override { return real_->Commit(p, next); }
    int64_t Committed(int32_t p) const override { return real_->Committed(p); }
    int64_t EndOffset(int32_t p) const override { return real_->EndOffset(p); }

   private:
    std::unique_ptr<Consumer> real_;
  };
};

// Appends values to a partition, a second apart each.
void AppendEach(Log* log, int32_t partition, const std::vector<std::string>& values) {
  for (const std::string& v : values) {
    reader_clock += kReaderSecond;
    Record r{.timestamp_us = reader_clock.load(), .key = "1", .value = v};
    ASSERT_TRUE(log->Append("raw", partition, std::span<const Record>(&r, 1)).ok());
  }
}

std::vector<std::string> ValuesRead(PartitionReader& reader, int32_t partition, int64_t from, int64_t to) {
  std::vector<std::string> out;
  Status s = reader.Read(partition, from, to, [&](const ConsumedRecord& r) { out.emplace_back(r.value); });
  EXPECT_TRUE(s.ok()) << s.ToString();
  return out;
}

TEST(PartitionReaderTest, RangesEndingInOffsetsWithoutRecordsAreReadToTheirEnd) {
  ScratchDir dir("mare-partition-reader-test");
  auto real = OpenLogWithTopics({.dir = dir.path(), .now_us = &ReaderClock}, {{.name = "raw", .partitions = 3}});
  ASSERT_TRUE(real.ok()) << real.status().ToString();
  LogWithMarkers log(real->get());
  // Partition 0: a committed transaction (two records, its marker), an aborted one (two
  // records and its marker), then another committed one. Partition 1: only an aborted one.
  AppendEach(&log, 0, {"a", "b", "#", "#", "#", "#", "c", "#"});
  AppendEach(&log, 1, {"#", "#"});
  auto reader = PartitionReader::Open(&log, "readback", "raw");
  ASSERT_TRUE(reader.ok()) << reader.status().ToString();
  ASSERT_EQ(reader->end(0), 8);

  // At once, not after the reader's wait for records that do not come (10 s).
  auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(ValuesRead(*reader, 0, 0, 8), (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_EQ(ValuesRead(*reader, 0, 7, 8), std::vector<std::string>{});
  EXPECT_EQ(ValuesRead(*reader, 0, 2, 6), std::vector<std::string>{});
  EXPECT_EQ(ValuesRead(*reader, 1, 0, 2), std::vector<std::string>{});
  auto t = reader->AppendTime(0, 2);  // the first record at the offset or after it
  ASSERT_TRUE(t.ok()) << t.status().ToString();

  // By append time: from the newest record ("c", offset 6), not the marker at 7; partition 1,
  // with no record at all, gives none.
  std::vector<std::string> within;
  auto n = reader->ReadAppendedWithin({{0, 8}, {1, 2}}, 5 * kReaderSecond,
                                      [&](const ConsumedRecord& r) { within.emplace_back(r.value); });
  ASSERT_TRUE(n.ok()) << n.status().ToString();
  EXPECT_EQ(*n, 2u);  // "b" (5 s before "c") and "c"
  EXPECT_EQ(within, (std::vector<std::string>{"b", "c"}));
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(5));
}

}  // namespace
}  // namespace mare::log
