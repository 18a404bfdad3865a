// The embedded log's behaviour: offsets, consumer groups, recovery from torn and corrupted
// segments, retention, read-only followers, the writer lock and fsync policies.
#include "log/embedded_log.h"

#include <fcntl.h>
#include <gtest/gtest.h>

#include "common/scratch_dir.h"
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "common/metrics.h"
#include "common/time.h"
#include "log/file.h"
#include "log/format.h"
#include "log/log_metrics.h"

namespace mare::log {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

std::atomic<int64_t> fake_now{1'700'000'000'000'000};
int64_t FakeNow() { return fake_now.load(); }

class EmbeddedLogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    options_.dir = dir_;
    options_.metrics = &registry_;
  }

  std::unique_ptr<Log> Open(const EmbeddedLogOptions& options) {
    auto log = OpenEmbeddedLog(options);
    EXPECT_TRUE(log.ok()) << log.status().ToString();
    return log ? std::move(*log) : nullptr;
  }
  std::unique_ptr<Log> Open() { return Open(options_); }

  // Appends one record to raw's `partition`: the offset it got, or -1 when the append failed.
  static int64_t AppendOne(Log& log, int32_t partition = 0) {
    int64_t first = -1;
    std::vector<Record> r = {{1, "k", "v"}};
    return log.Append("raw", partition, r, &first).ok() ? first : -1;
  }

  // Appends `batches` batches of `per_batch` records; record values are "<partition>:<offset>".
  static void Fill(Log& log, const std::string& topic, int32_t partition, int batches, int per_batch,
                   size_t value_bytes = 16) {
    for (int b = 0; b < batches; ++b) {
      auto info = log.Describe(topic);
      int64_t next = (*info)[static_cast<size_t>(partition)].end_offset;
      std::vector<std::string> values;
      for (int i = 0; i < per_batch; ++i) {
        std::string v = std::to_string(partition) + ":" + std::to_string(next + i);
        v.resize(std::max(v.size(), value_bytes), ' ');
        values.push_back(std::move(v));
      }
      std::vector<Record> records;
      for (const auto& v : values) records.push_back({1'600'000'000'000'000 + next, "sensor", v});
      int64_t first = -1;
      ASSERT_TRUE(log.Append(topic, partition, records, &first).ok());
      ASSERT_EQ(first, next);
    }
  }

  // Everything the consumer can read now: (partition, offset, value).
  struct Seen {
    int32_t partition;
    int64_t offset;
    std::string value;
  };
  static std::vector<Seen> Drain(Consumer& c, size_t max_per_poll = 1000) {
    std::vector<Seen> seen;
    std::vector<ConsumedRecord> batch;
    for (;;) {
      Status s = c.Poll(&batch, max_per_poll, 0ms);
      EXPECT_TRUE(s.ok()) << s.ToString();
      if (!s.ok() || batch.empty()) return seen;
      for (const auto& r : batch) seen.push_back({r.partition, r.offset, std::string(r.value)});
    }
  }

  std::string SegmentPath(const std::string& topic, int partition, int64_t base) {
    return dir_ + "/topics/" + topic + "/" + std::to_string(partition) + "/" + format::SegmentFileName(base);
  }
  std::vector<std::string> SegmentFiles(const std::string& topic, int partition) {
    std::vector<std::string> out;
    for (const auto& e : fs::directory_iterator(dir_ + "/topics/" + topic + "/" + std::to_string(partition))) {
      out.push_back(e.path().filename().string());
    }
    std::sort(out.begin(), out.end());
    return out;
  }
  static std::string ReadFile(const std::string& path) {
    std::string s(fs::file_size(path), '\0');
    FILE* f = std::fopen(path.c_str(), "rb");
    EXPECT_EQ(std::fread(s.data(), 1, s.size(), f), s.size());
    std::fclose(f);
    return s;
  }
  static void WriteFile(const std::string& path, const std::string& s) {
    FILE* f = std::fopen(path.c_str(), "wb");
    EXPECT_EQ(std::fwrite(s.data(), 1, s.size(), f), s.size());
    std::fclose(f);
  }
  // Where each batch of a segment starts, from the length fields.
  static std::vector<size_t> BatchStarts(const std::string& segment) {
    std::vector<size_t> starts;
    for (size_t pos = 0; pos + format::kBatchHeaderSize <= segment.size();
         pos += format::GetU32(segment.data() + pos + format::kLengthAt)) {
      starts.push_back(pos);
    }
    return starts;
  }
  // raw/0 written as 5 batches of 3 records of 40 bytes (offsets 0..14), the log closed: its
  // segment's bytes, for a test to damage.
  std::string WriteFiveBatches() {
    {
      auto log = Open();
      EXPECT_TRUE(log->CreateTopic({.name = "raw", .partitions = 1}).ok());
      Fill(*log, "raw", 0, 5, 3, 40);
    }
    return ReadFile(SegmentPath("raw", 0, 0));
  }

  ScratchDir scratch_{"mare-log-test"};
  const std::string dir_ = scratch_.path();
  metrics::Registry registry_;
  EmbeddedLogOptions options_;
};

TEST_F(EmbeddedLogTest, AppendAssignsConsecutiveOffsetsPerPartitionAndConsumersReadThemBack) {
  auto log = Open();
  ASSERT_TRUE(log->CreateTopic({.name = "raw", .partitions = 3}).ok());
  EXPECT_EQ(log->Topics(), std::vector<std::string>{"raw"});
  EXPECT_EQ(log->Partitions("raw"), 3);
  EXPECT_EQ(log->Partitions("nope"), 0);

  std::vector<Record> a = {{100, "1", R"({"v":1})"}, {101, "4", R"({"v":2})"}, {102, "1", R"({"v":3})"}};
  std::vector<Record> b = {{200, "7", R"({"v":4})"}};
  int64_t first = -1;
  ASSERT_TRUE(log->Append("raw", 1, a, &first).ok());
  EXPECT_EQ(first, 0);
  ASSERT_TRUE(log->Append("raw", 1, b, &first).ok());
  EXPECT_EQ(first, 3);
  ASSERT_TRUE(log->Append("raw", 2, b, &first).ok());
  EXPECT_EQ(first, 0);  // offsets are per partition

  auto c = log->Subscribe("store", "raw");
  ASSERT_TRUE(c.ok());
  std::vector<ConsumedRecord> got;
  ASSERT_TRUE((*c)->Poll(&got, 100, 0ms).ok());
  ASSERT_EQ(got.size(), 5u);
  std::map<int32_t, std::vector<int64_t>> offsets;
  for (const auto& r : got) offsets[r.partition].push_back(r.offset);
  EXPECT_EQ(offsets[1], (std::vector<int64_t>{0, 1, 2, 3}));
  EXPECT_EQ(offsets[2], (std::vector<int64_t>{0}));
  for (const auto& r : got) {
    if (r.partition == 1 && r.offset == 1) {
      EXPECT_EQ(r.timestamp_us, 101);
      EXPECT_EQ(r.key, "4");
      EXPECT_EQ(r.value, R"({"v":2})");
      EXPECT_GT(r.append_time_us, 0);
    }
  }
  EXPECT_EQ((*c)->Position(1), 4);
  EXPECT_EQ((*c)->Position(0), 0);

  auto info = log->Describe("raw");
  ASSERT_TRUE(info.ok());
  EXPECT_EQ((*info)[1].start_offset, 0);
  EXPECT_EQ((*info)[1].end_offset, 4);
  EXPECT_EQ((*info)[0].end_offset, 0);
  EXPECT_EQ((*info)[0].oldest_append_time_us, 0);
  EXPECT_GT((*info)[1].bytes, 0);
  EXPECT_EQ((*info)[1].segments, 1);
}

TEST_F(EmbeddedLogTest, PollHonoursMaxRecordsAndResumesInsideABatch) {
  auto log = Open();
  ASSERT_TRUE(log->CreateTopic({.name = "raw", .partitions = 1}).ok());
  Fill(*log, "raw", 0, 3, 10);
  auto c = log->Subscribe("g", "raw");
  std::vector<int64_t> offsets;
  std::vector<ConsumedRecord> got;
  for (int i = 0; i < 10; ++i) {
    ASSERT_TRUE((*c)->Poll(&got, 7, 0ms).ok());
    EXPECT_LE(got.size(), 7u);
    for (const auto& r : got) offsets.push_back(r.offset);
  }
  ASSERT_EQ(offsets.size(), 30u);
  for (int64_t i = 0; i < 30; ++i) EXPECT_EQ(offsets[static_cast<size_t>(i)], i);

  ASSERT_TRUE((*c)->Seek(0, 15).ok());
  ASSERT_TRUE((*c)->Poll(&got, 1, 0ms).ok());
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].offset, 15);
  EXPECT_EQ(got[0].value.substr(0, 4), "0:15");
  ASSERT_TRUE((*c)->Seek(0, 1000).ok());  // clamped to the end
  EXPECT_EQ((*c)->Position(0), 30);
}

TEST_F(EmbeddedLogTest, CommittedPositionIsWhereTheGroupResumes) {
  auto log = Open();
  ASSERT_TRUE(log->CreateTopic({.name = "raw", .partitions = 2}).ok());
  Fill(*log, "raw", 0, 2, 5);
  auto c = log->Subscribe("store", "raw");
  EXPECT_EQ((*c)->Committed(0), -1);
  EXPECT_TRUE(log->Groups("raw").empty());
  ASSERT_TRUE((*c)->Commit(0, 7).ok());
  EXPECT_EQ((*c)->Committed(0), 7);
  EXPECT_EQ(log->Groups("raw"), std::vector<std::string>{"store"});
  EXPECT_TRUE(fs::exists(dir_ + "/consumers/store/raw.offsets"));

  auto again = log->Subscribe("store", "raw");
  EXPECT_EQ((*again)->Committed(0), 7);
  EXPECT_EQ((*again)->Position(0), 7);
  auto seen = Drain(**again);
  ASSERT_EQ(seen.size(), 3u);
  EXPECT_EQ(seen[0].offset, 7);

  auto other = log->Subscribe("dashboard", "raw");  // another group starts from the oldest
  EXPECT_EQ((*other)->Position(0), 0);
  EXPECT_EQ(Drain(**other).size(), 10u);
}

TEST_F(EmbeddedLogTest, LagIsWhatIsLeftToReadOfEveryPartition) {
  auto log = Open();
  ASSERT_TRUE(log->CreateTopic({.name = "raw", .partitions = 3}).ok());
  Fill(*log, "raw", 0, 2, 5);
  Fill(*log, "raw", 2, 1, 4);
  auto c = log->Subscribe("store", "raw");
  EXPECT_EQ((*c)->Lag(3), 14);
  EXPECT_EQ((*c)->Lag(1), 10);  // the first partitions only
  ASSERT_TRUE((*c)->Seek(0, 6).ok());
  EXPECT_EQ((*c)->Lag(3), 8);
  // From other positions (a sink's, committed elsewhere); one past the end counts as none left.
  EXPECT_EQ((*c)->Lag(3, [](int32_t p) { return p == 2 ? int64_t{9} : int64_t{1}; }), 9);
  Drain(**c);
  EXPECT_EQ((*c)->Lag(3), 0);
}

// A consumer that has not learnt a partition's end (Kafka, before its first fetch) skips it.
TEST(ConsumerLag, PartitionsWithAnUnknownEndAreSkippedAndNoneKnownIsMinusOne) {
  class Ends final : public Consumer {
   public:
    explicit Ends(std::vector<int64_t> ends) : ends_(std::move(ends)) {}
    int64_t Position(int32_t) const override { return 2; }
    Status Seek(int32_t, int64_t) override { return Status::OK(); }
    Status Poll(std::vector<ConsumedRecord>*, size_t, std::chrono::milliseconds) override { return Status::OK(); }
    Status Commit(int32_t, int64_t) override { return Status::OK(); }
    int64_t Committed(int32_t) const override { return -1; }
    int64_t EndOffset(int32_t p) const override { return ends_[static_cast<size_t>(p)]; }

   private:
    std::vector<int64_t> ends_;
  };
  EXPECT_EQ(Ends({5, -1, 7}).Lag(3), 8);
  EXPECT_EQ(Ends({-1, -1}).Lag(2), -1);
  EXPECT_EQ(Ends({}).Lag(0), -1);
}

TEST_F(EmbeddedLogTest, ReopenKeepsOffsetsCommittedPositionsAndTopicSettings) {
  {
    auto log = Open();
    ASSERT_TRUE(log->CreateTopic({.name = "raw", .partitions = 2, .retention_us = 3'600'000'000}).ok());
    Fill(*log, "raw", 0, 4, 8);
    Fill(*log, "raw", 1, 1, 3);
    auto c = log->Subscribe("store", "raw");
    ASSERT_TRUE((*c)->Commit(0, 20).ok());
    ASSERT_TRUE((*c)->Commit(1, 3).ok());
  }
  auto log = Open();
  EXPECT_EQ(log->Topics(), std::vector<std::string>{"raw"});
  ASSERT_TRUE(log->CreateTopic({.name = "raw", .partitions = 16}).ok());  // keeps its 2 partitions
  EXPECT_EQ(log->Partitions("raw"), 2);
  auto info = log->Describe("raw");
  EXPECT_EQ((*info)[0].end_offset, 32);
  EXPECT_EQ((*info)[1].end_offset, 3);
  EXPECT_EQ(AppendOne(*log), 32);

  auto c = log->Subscribe("store", "raw");
  EXPECT_EQ((*c)->Committed(0), 20);
  EXPECT_EQ((*c)->Committed(1), 3);
  auto seen = Drain(**c);
  ASSERT_EQ(seen.size(), 13u);  // 20..32 of partition 0, nothing new on partition 1
  EXPECT_EQ(seen.front().offset, 20);
  EXPECT_EQ(seen.front().value.substr(0, 4), "0:20");
}

// A topic keeps the partitioner it was created with: a topic from before mare recorded one
// (topic.toml format 1) goes on placing sensors by sensor_id mod partitions, where its data and
// the rollup state kept per partition already are; a new topic uses Kafka's murmur2.
TEST_F(EmbeddedLogTest, TopicsKeepThePartitionerTheyWereCreatedWith) {
  {
    auto log = Open();
    ASSERT_TRUE(log->CreateTopic({.name = "raw", .partitions = 4}).ok());
    ASSERT_TRUE(log->CreateTopic({.name = "old", .partitions = 4}).ok());
    EXPECT_EQ(log->TopicPartitioner("raw"), Partitioner::kMurmur2);
    EXPECT_EQ(log->TopicPartitioner("absent"), Partitioner::kMurmur2);  // as it would be created
  }
  // "old" as an earlier mare wrote it.
  const std::string old_meta = dir_ + "/topics/old/topic.toml";
  ASSERT_TRUE(file::WriteAtomically(old_meta, "# mare log topic old (docs/formats/log.md)\nformat = 1\npartitions = 4\n"
                                               "retention_us = 604800000000\nretention_bytes = 0\n").ok());
  {
    auto log = Open();
    EXPECT_EQ(log->TopicPartitioner("raw"), Partitioner::kMurmur2);
    EXPECT_EQ(log->TopicPartitioner("old"), Partitioner::kModulo);
    // New retention rewrites topic.toml; the partitioner asked for is not the topic's and is ignored.
    ASSERT_TRUE(log->CreateTopic({.name = "old", .partitions = 4, .retention_us = 3'600'000'000,
                                  .partitioner = Partitioner::kMurmur2}).ok());
    EXPECT_EQ(log->TopicPartitioner("old"), Partitioner::kModulo);
  }
  auto text = file::ReadAll(old_meta);
  ASSERT_TRUE(text.ok());
  EXPECT_NE(text->find("format = 1\n"), std::string::npos) << *text;  // still readable by the earlier mare
  EXPECT_NE(text->find("retention_us = 3600000000\n"), std::string::npos) << *text;
  auto log = Open();
  EXPECT_EQ(log->TopicPartitioner("old"), Partitioner::kModulo);
  EXPECT_EQ(log->TopicPartitioner("raw"), Partitioner::kMurmur2);
}

TEST_F(EmbeddedLogTest, ConcurrentAppendersKeepPerPartitionOrderWithoutGaps) {
  options_.segment_bytes = 64 << 10;  // several rolls along the way
  auto log = Open();
  constexpr int kPartitions = 4, kThreads = 6, kBatches = 300, kPerBatch = 16;
  ASSERT_TRUE(log->CreateTopic({.name = "raw", .partitions = kPartitions}).ok());
  constexpr size_t kTotal = size_t{kThreads} * kBatches * kPerBatch;

  // A consumer reads while the appenders run.
  std::vector<Seen> seen;
  std::thread reader([&] {
    auto c = log->Subscribe("check", "raw");
    std::vector<ConsumedRecord> batch;
    auto deadline = std::chrono::steady_clock::now() + 20s;
    while (seen.size() < kTotal && std::chrono::steady_clock::now() < deadline) {
      ASSERT_TRUE((*c)->Poll(&batch, 500, 100ms).ok());
      for (const auto& r : batch) seen.push_back({r.partition, r.offset, std::string(r.value)});
    }
  });
  std::vector<std::thread> appenders;
  for (int t = 0; t < kThreads; ++t) {
    appenders.emplace_back([&, t] {
      std::vector<std::string> values(kPerBatch);
      std::vector<Record> records(kPerBatch);
      for (int b = 0; b < kBatches; ++b) {
        int32_t partition = (t + b) % kPartitions;  // each thread writes every partition; all share them
        for (int i = 0; i < kPerBatch; ++i) {
          values[static_cast<size_t>(i)] = std::to_string(t) + " " + std::to_string(b * kPerBatch + i);
          records[static_cast<size_t>(i)] = {0, "s", values[static_cast<size_t>(i)]};
        }
        ASSERT_TRUE(log->Append("raw", partition, records).ok());
      }
    });
  }
  for (auto& t : appenders) t.join();
  reader.join();

  ASSERT_EQ(seen.size(), kTotal);
  std::map<int32_t, int64_t> next_offset;
  std::map<std::pair<int32_t, int>, int> last_seq;  // (partition, thread) -> last sequence number
  for (const auto& r : seen) {
    EXPECT_EQ(r.offset, next_offset[r.partition]++) << "partition " << r.partition;
    int thread = std::stoi(r.value.substr(0, r.value.find(' ')));
    int seq = std::stoi(r.value.substr(r.value.find(' ') + 1));
    auto key = std::make_pair(r.partition, thread);
    if (last_seq.count(key)) {
      EXPECT_GT(seq, last_seq[key]);
    }
    last_seq[key] = seq;
  }
  auto info = log->Describe("raw");
  int64_t total = 0;
  for (const auto& p : *info) total += p.end_offset;
  EXPECT_EQ(total, static_cast<int64_t>(kTotal));
}

TEST_F(EmbeddedLogTest, PollWaitsForAnAppendFromAnotherThread) {
  auto log = Open();
  ASSERT_TRUE(log->CreateTopic({.name = "raw", .partitions = 2}).ok());
  auto c = log->Subscribe("g", "raw");
  std::thread appender([&] {
    std::this_thread::sleep_for(50ms);
    std::vector<Record> r = {{1, "k", "v"}};
    ASSERT_TRUE(log->Append("raw", 1, r).ok());
  });
  auto start = std::chrono::steady_clock::now();
  std::vector<ConsumedRecord> got;
  ASSERT_TRUE((*c)->Poll(&got, 10, 10s).ok());
  auto waited = std::chrono::steady_clock::now() - start;
  appender.join();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_LT(waited, 5s);  // woken by the append, not by the timeout

  start = std::chrono::steady_clock::now();
  ASSERT_TRUE((*c)->Poll(&got, 10, 30ms).ok());
  EXPECT_TRUE(got.empty());  // a timeout is not an error
  EXPECT_GE(std::chrono::steady_clock::now() - start, 30ms);
}

// A crash in the middle of writing a batch leaves a torn tail: recovery cuts it off and keeps
// every complete batch, whichever byte the write stopped at.
TEST_F(EmbeddedLogTest, TornTailIsTruncatedAndAppendingContinuesAtTheRightOffset) {
  std::string path = SegmentPath("raw", 0, 0);
  size_t last_batch = 0;
  for (size_t cut : {size_t{1}, size_t{7}, size_t{20}, size_t{55}, size_t{56}, size_t{57}, size_t{100}, size_t{0}}) {
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    std::string bytes = WriteFiveBatches();
    auto starts = BatchStarts(bytes);
    ASSERT_EQ(starts.size(), 5u);
    last_batch = bytes.size() - starts[4];
    if (cut == 0) cut = last_batch - 1;  // all but the final byte
    ASSERT_LT(cut, last_batch);
    ASSERT_EQ(::truncate(path.c_str(), static_cast<off_t>(bytes.size() - cut)), 0);

    metrics::Registry registry;
    EmbeddedLogOptions o = options_;
    o.metrics = &registry;
    auto log = Open(o);
    ASSERT_NE(log, nullptr) << "cut " << cut;
    auto info = log->Describe("raw");
    EXPECT_EQ((*info)[0].end_offset, 12) << "cut " << cut;
    EXPECT_EQ(fs::file_size(path), starts[4]);
    EXPECT_EQ(registry.GetCounter(log_metrics::kBytesTruncated).value(), last_batch - cut);

    auto c = log->Subscribe("g", "raw");
    auto seen = Drain(**c);
    ASSERT_EQ(seen.size(), 12u);
    for (size_t i = 0; i < seen.size(); ++i) {
      EXPECT_EQ(seen[i].value.substr(0, seen[i].value.find(' ')), "0:" + std::to_string(i));
    }

    int64_t first = -1;
    std::vector<Record> r = {{1, "k", "after"}};
    ASSERT_TRUE(log->Append("raw", 0, r, &first).ok());
    EXPECT_EQ(first, 12);
  }
}

// A group appended together to partitions 0, 1 and 3 (AppendTogether); values "g<p>:<i>".
// Each partition first gets batches of its own.
static void AppendGroup(Log& log, std::vector<std::vector<std::string>>* values, std::vector<std::vector<Record>>* records) {
  values->assign(4, {});
  records->assign(4, {});
  std::vector<PartitionRecords> parts;
  for (int32_t p : {3, 0, 1}) {  // any order: they are written in partition order
    for (int i = 0; i < 3; ++i) (*values)[static_cast<size_t>(p)].push_back("g" + std::to_string(p) + ":" + std::to_string(i));
    for (const auto& v : (*values)[static_cast<size_t>(p)]) (*records)[static_cast<size_t>(p)].push_back({1, "sensor", v});
    parts.push_back({p, (*records)[static_cast<size_t>(p)]});
  }
  std::vector<Status> results;
  ASSERT_TRUE(log.AppendTogether("raw", parts, &results).ok());
  ASSERT_EQ(results.size(), 3u);
  for (const Status& s : results) EXPECT_TRUE(s.ok());
}

// kill -9 while a group was being written: the parts written before the kill are in the
// files, whole, and the others are not (or torn). At reopen nothing of the group is left,
// what came before it is whole, and appending continues at the offsets before the group.
TEST_F(EmbeddedLogTest, AGroupAKillCutShortLeavesNothingOfItAtReopen) {
  // Which parts the kill left: written in partition order 0, 1, 3, the last cut at `cut`
  // bytes (0: not written at all).
  struct Kill {
    int parts_written;  // of 0, 1, 3
    size_t cut;         // bytes of the next part written before the kill
  };
  for (Kill kill : {Kill{2, 0}, Kill{2, 30}, Kill{2, 100}, Kill{1, 0}, Kill{1, 57}, Kill{0, 10}}) {
    SCOPED_TRACE(testing::Message() << kill.parts_written << " parts written, the next cut at " << kill.cut);
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    std::vector<int64_t> before(4);
    {
      auto log = Open();
      ASSERT_TRUE(log->CreateTopic({.name = "raw", .partitions = 4}).ok());
      for (int32_t p = 0; p < 4; ++p) Fill(*log, "raw", p, 2, 2 + p);
      auto infos = log->Describe("raw");
      ASSERT_TRUE(infos.ok());
      for (const auto& info : *infos) before[static_cast<size_t>(info.partition)] = info.end_offset;
      std::vector<std::vector<std::string>> values;
      std::vector<std::vector<Record>> records;
      AppendGroup(*log, &values, &records);
    }
    // The kill: the parts after the written ones never reached the files, the next one only
    // its first `cut` bytes.
    const int order[] = {0, 1, 3};
    for (int k = kill.parts_written; k < 3; ++k) {
      std::string path = SegmentPath("raw", order[k], 0);
      std::string bytes = ReadFile(path);
      size_t group_part = BatchStarts(bytes).back();
      size_t keep = group_part + (k == kill.parts_written ? kill.cut : 0);
      ASSERT_LT(keep, bytes.size());
      ASSERT_EQ(::truncate(path.c_str(), static_cast<off_t>(keep)), 0);
    }

    metrics::Registry registry;
    EmbeddedLogOptions o = options_;
    o.metrics = &registry;
    auto log = Open(o);
    ASSERT_NE(log, nullptr);
    auto infos = log->Describe("raw");
    ASSERT_TRUE(infos.ok());
    for (const auto& info : *infos) {
      EXPECT_EQ(info.end_offset, before[static_cast<size_t>(info.partition)]) << "partition " << info.partition;
    }
    EXPECT_GT(registry.GetCounter(log_metrics::kBytesTruncated).value(), 0u);
    auto c = log->Subscribe("g", "raw");
    auto seen = Drain(**c);
    int64_t total = 0;
    for (int64_t n : before) total += n;
    EXPECT_EQ(static_cast<int64_t>(seen.size()), total);
    for (const auto& r : seen) EXPECT_NE(r.value[0], 'g') << "partition " << r.partition << " offset " << r.offset;
    for (int32_t p = 0; p < 4; ++p) {
      int64_t first = -1;
      std::vector<Record> r = {{1, "k", "after"}};
      ASSERT_TRUE(log->Append("raw", p, r, &first).ok());
      EXPECT_EQ(first, before[static_cast<size_t>(p)]);
    }
    log.reset();
    // Reopened again, the log is as it was left: the recovery is not repeated on newer data.
    auto again = Open();
    ASSERT_NE(again, nullptr);
    auto reopened = again->Describe("raw");
    ASSERT_TRUE(reopened.ok());
    for (const auto& info : *reopened) EXPECT_EQ(info.end_offset, before[static_cast<size_t>(info.partition)] + 1);
  }
}

// A group whose every part was written is kept whole at reopen, whether its parts are the
// partitions' last batches or other batches followed them.
TEST_F(EmbeddedLogTest, ACompleteGroupIsKeptWholeWhateverFollowsIt) {
  for (bool followed : {false, true}) {
    SCOPED_TRACE(followed ? "batches after the group in partitions 1 and 3" : "the group at the tails");
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    {
      auto log = Open();
      ASSERT_TRUE(log->CreateTopic({.name = "raw", .partitions = 4}).ok());
      for (int32_t p = 0; p < 4; ++p) Fill(*log, "raw", p, 1, 2);
      std::vector<std::vector<std::string>> values;
      std::vector<std::vector<Record>> records;
      AppendGroup(*log, &values, &records);
      if (followed) {
        Fill(*log, "raw", 1, 1, 1);
        Fill(*log, "raw", 3, 2, 1);  // the group's last part is no longer a tail
      }
    }
    auto log = Open();
    ASSERT_NE(log, nullptr);
    auto c = log->Subscribe("g", "raw");
    auto seen = Drain(**c);
    std::map<int32_t, std::vector<std::string>> group;
    for (const auto& r : seen) {
      if (r.value[0] == 'g') group[r.partition].push_back(r.value);
    }
    ASSERT_EQ(group.size(), 3u);
    for (int32_t p : {0, 1, 3}) {
      EXPECT_EQ(group[p], (std::vector<std::string>{"g" + std::to_string(p) + ":0", "g" + std::to_string(p) + ":1",
                                                    "g" + std::to_string(p) + ":2"}));
    }
    EXPECT_EQ(seen.size(), 8u + 9u + (followed ? 3u : 0u));
  }
}

// A write of a group that fails (a full disk; here the file size limit) takes back the parts
// written before it: nothing of the group is in the log, and the log goes on.
TEST_F(EmbeddedLogTest, AGroupWhoseLastWriteFailsLeavesNothingOfIt) {
  auto log = Open();
  ASSERT_TRUE(log->CreateTopic({.name = "raw", .partitions = 4}).ok());
  for (int32_t p = 0; p < 3; ++p) Fill(*log, "raw", p, 1, 1);
  Fill(*log, "raw", 3, 1, 1, 8192);  // partition 3's file is the largest: its part will not fit
  std::vector<uintmax_t> sizes;
  for (int32_t p = 0; p < 4; ++p) sizes.push_back(fs::file_size(SegmentPath("raw", p, 0)));
  struct rlimit saved;
  ASSERT_EQ(::getrlimit(RLIMIT_FSIZE, &saved), 0);
  auto old_handler = std::signal(SIGXFSZ, SIG_IGN);
  struct rlimit limited = saved;
  limited.rlim_cur = sizes[3] + 10;
  ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &limited), 0);
  std::vector<std::vector<std::string>> values;
  std::vector<std::vector<Record>> records;
  values.assign(4, {});
  records.assign(4, {});
  std::vector<PartitionRecords> parts;
  for (int32_t p : {0, 1, 3}) {
    values[static_cast<size_t>(p)] = {"g" + std::to_string(p) + ":0", "g" + std::to_string(p) + ":1"};
    for (const auto& v : values[static_cast<size_t>(p)]) records[static_cast<size_t>(p)].push_back({1, "sensor", v});
    parts.push_back({p, records[static_cast<size_t>(p)]});
  }
  std::vector<Status> results;
  Status s = log->AppendTogether("raw", parts, &results);
  ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &saved), 0);
  std::signal(SIGXFSZ, old_handler);
  EXPECT_FALSE(s.ok());
  for (const Status& r : results) EXPECT_FALSE(r.ok());
  for (int32_t p = 0; p < 4; ++p) {
    EXPECT_EQ(fs::file_size(SegmentPath("raw", p, 0)), sizes[static_cast<size_t>(p)]) << "partition " << p;
    EXPECT_EQ((*log->Describe("raw"))[static_cast<size_t>(p)].end_offset, 1) << "partition " << p;
  }
  ASSERT_TRUE(log->AppendTogether("raw", parts, &results).ok());
  auto c = log->Subscribe("g", "raw");
  auto seen = Drain(**c);
  EXPECT_EQ(seen.size(), 4u + 6u);
  for (const auto& r : seen) {
    if (r.value[0] == 'g') {
      EXPECT_EQ(r.offset, 1 + (r.value.back() - '0')) << r.value;  // the second try's, where the first's would be
    }
  }
}

// A group of one part (the others empty) is a plain batch; the same partition twice is refused.
TEST_F(EmbeddedLogTest, AppendTogetherOfOnePartIsAnAppendAndRefusesAPartitionTwice) {
  auto log = Open();
  ASSERT_TRUE(log->CreateTopic({.name = "raw", .partitions = 2}).ok());
  std::vector<Record> a = {{1, "k", "a"}};
  std::vector<Record> none;
  std::vector<Status> results;
  std::vector<PartitionRecords> one = {{0, none}, {1, a}};
  ASSERT_TRUE(log->AppendTogether("raw", one, &results).ok());
  std::string bytes = ReadFile(SegmentPath("raw", 1, 0));
  EXPECT_EQ(format::GetU16(bytes.data() + format::kAttributesAt) & format::kAttrGroup, 0);
  std::vector<PartitionRecords> twice = {{1, a}, {1, a}, {0, a}};
  Status s = log->AppendTogether("raw", twice, &results);
  EXPECT_EQ(s.code(), Status::Code::kInvalidArgument) << s.ToString();
  ASSERT_EQ(results.size(), 3u);
  for (const Status& r : results) EXPECT_FALSE(r.ok());
  EXPECT_EQ((*log->Describe("raw"))[0].end_offset, 0);
  EXPECT_EQ((*log->Describe("raw"))[1].end_offset, 1);
}

TEST_F(EmbeddedLogTest, ZeroFilledTailFromAPowerLossIsTruncated) {
  std::string path = SegmentPath("raw", 0, 0);
  {
    auto log = Open();
    ASSERT_TRUE(log->CreateTopic({.name = "raw", .partitions = 1}).ok());
    Fill(*log, "raw", 0, 3, 2);
  }
  size_t good = fs::file_size(path);
  WriteFile(path, ReadFile(path) + std::string(4096, '\0'));
  auto log = Open();
  ASSERT_NE(log, nullptr);
  EXPECT_EQ((*log->Describe("raw"))[0].end_offset, 6);
  EXPECT_EQ(fs::file_size(path), good);
}

// A complete batch that fails its checksum is not a crash artifact: opening refuses and says
// where, unless asked to repair.
TEST_F(EmbeddedLogTest, CorruptBatchFailsToOpenNamingFileAndPositionAndRepairTruncatesThere) {
  std::string path = SegmentPath("raw", 0, 0);
  std::string bytes = WriteFiveBatches();
  auto starts = BatchStarts(bytes);
  bytes[starts[2] + format::kBatchHeaderSize + 20] ^= 0x40;  // a payload byte of batch 2
  WriteFile(path, bytes);

  auto failed = OpenEmbeddedLog(options_);
  ASSERT_FALSE(failed.ok());
  EXPECT_TRUE(failed.status().IsCorruption()) << failed.status().ToString();
  EXPECT_NE(failed.status().message().find(path), std::string::npos) << failed.status().message();
  EXPECT_NE(failed.status().message().find("at byte " + std::to_string(starts[2])), std::string::npos)
      << failed.status().message();
  EXPECT_EQ(fs::file_size(path), bytes.size());  // nothing was touched

  options_.repair = true;
  auto log = Open();
  ASSERT_NE(log, nullptr);
  EXPECT_EQ((*log->Describe("raw"))[0].end_offset, 6);
  EXPECT_EQ(fs::file_size(path), starts[2]);
  auto seen = Drain(**log->Subscribe("g", "raw"));
  ASSERT_EQ(seen.size(), 6u);
  EXPECT_EQ(seen[5].value.substr(0, 3), "0:5");
  EXPECT_EQ(AppendOne(*log), 6);
}

TEST_F(EmbeddedLogTest, DamageInAnOlderSegmentIsReportedNotSkipped) {
  options_.segment_bytes = 1024;
  {
    auto log = Open();
    ASSERT_TRUE(log->CreateTopic({.name = "raw", .partitions = 1}).ok());
    Fill(*log, "raw", 0, 20, 4, 40);
  }
  auto files = SegmentFiles("raw", 0);
  ASSERT_GE(files.size(), 3u);
  std::string oldest = dir_ + "/topics/raw/0/" + files[0];
  std::string original = ReadFile(oldest);
  auto starts = BatchStarts(original);
  ASSERT_GE(starts.size(), 2u);

  // A damaged header is found at open (headers of every segment are checked).
  std::string bytes = original;
  bytes[starts[1] + format::kRecordCountAt] ^= 0x01;
  WriteFile(oldest, bytes);
  auto failed = OpenEmbeddedLog(options_);
  ASSERT_FALSE(failed.ok());
  EXPECT_TRUE(failed.status().IsCorruption());
  EXPECT_NE(failed.status().message().find(oldest + " at byte " + std::to_string(starts[1])), std::string::npos)
      << failed.status().message();

  // A damaged payload in an older segment is found when it is read.
  bytes = original;
  bytes[starts[1] + format::kBatchHeaderSize + 3] ^= 0x01;
  WriteFile(oldest, bytes);
  auto log = Open();
  ASSERT_NE(log, nullptr);
  auto c = log->Subscribe("g", "raw");
  std::vector<ConsumedRecord> got;
  Status s;
  for (int i = 0; i < 10 && s.ok(); ++i) s = (*c)->Poll(&got, 3, 0ms);
  EXPECT_TRUE(s.IsCorruption()) << s.ToString();
  EXPECT_NE(s.message().find(oldest), std::string::npos) << s.message();
  // Bodies are checked once per process, up to the first bad one: a second reader still
  // stops there.
  auto c2 = log->Subscribe("g2", "raw");
  s = Status::OK();
  for (int i = 0; i < 10 && s.ok(); ++i) s = (*c2)->Poll(&got, 1000, 0ms);
  EXPECT_TRUE(s.IsCorruption()) << s.ToString();
}

// Retention goes by when the log accepted a batch, never by the readings' event time: a
// replayed archive from 2012 stays for the full retention period.
TEST_F(EmbeddedLogTest, RetentionByAgeDeletesWholeOldSegmentsByAppendTime) {
  fake_now = 1'700'000'000'000'000;
  options_.now_us = FakeNow;
  options_.segment_bytes = 1024;
  const int64_t hour = 3'600'000'000;
  auto log = Open();
  ASSERT_TRUE(log->CreateTopic({.name = "raw", .partitions = 1, .retention_us = 24 * hour}).ok());
  auto lagging = log->Subscribe("slow", "raw");  // positioned at offset 0, never reads

  const int64_t year_2012 = 1'330'000'000'000'000;
  const std::string value(60, 'x');
  std::vector<Record> archive(4, Record{year_2012, "1", value});
  for (int i = 0; i < 20; ++i) ASSERT_TRUE(log->Append("raw", 0, archive).ok());
  auto before = *log->Describe("raw");
  ASSERT_GE(before[0].segments, 3);
  EXPECT_EQ(before[0].start_offset, 0);

  fake_now += 23 * hour;  // within retention: everything stays, although the events are 12 years old
  ASSERT_TRUE(log->Append("raw", 0, archive).ok());
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(log->Append("raw", 0, archive).ok());  // rolls again
  EXPECT_EQ((*log->Describe("raw"))[0].start_offset, 0);
  EXPECT_EQ(registry_.GetCounter(log_metrics::kSegmentsDeleted, {{"topic", "raw"}, {"reason", "age"}}).value(),
            0u);

  fake_now += 2 * hour;  // the first 20 batches are now 25 h old, the later ones 2 h
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(log->Append("raw", 0, archive).ok());
  auto after = *log->Describe("raw");
  EXPECT_EQ(after[0].start_offset, 80);  // the first 20 batches went, nothing appended at hour 23
  EXPECT_EQ(after[0].end_offset, 164);
  EXPECT_GT(registry_.GetCounter(log_metrics::kSegmentsDeleted, {{"topic", "raw"}, {"reason", "age"}}).value(),
            0u);
  EXPECT_EQ(after[0].oldest_append_time_us, fake_now - 2 * hour);

  // The consumer that was at 0 continues from the new start.
  EXPECT_EQ((*lagging)->Position(0), after[0].start_offset);
  std::vector<ConsumedRecord> got;
  ASSERT_TRUE((*lagging)->Poll(&got, 1, 0ms).ok());
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].offset, after[0].start_offset);
  EXPECT_EQ(got[0].timestamp_us, year_2012);
  EXPECT_EQ(SegmentFiles("raw", 0).size(), static_cast<size_t>(after[0].segments));
}

TEST_F(EmbeddedLogTest, TheActiveSegmentIsNeverDeleted) {
  fake_now = 1'700'000'000'000'000;
  options_.now_us = FakeNow;
  options_.segment_age_us = 365LL * kMicrosPerDay;  // so the background check does not roll it
  options_.retention_check_interval_us = 5'000;
  auto log = Open();
  ASSERT_TRUE(log->CreateTopic({.name = "raw", .partitions = 1, .retention_us = 1'000'000}).ok());
  Fill(*log, "raw", 0, 3, 5);
  fake_now += 30LL * kMicrosPerDay;
  std::this_thread::sleep_for(60ms);  // several retention checks
  auto info = *log->Describe("raw");
  EXPECT_EQ(info[0].segments, 1);
  EXPECT_EQ(info[0].start_offset, 0);
  EXPECT_EQ(Drain(**log->Subscribe("g", "raw")).size(), 15u);
}

TEST_F(EmbeddedLogTest, IdleSegmentsRollByAgeSoRetentionCanDeleteThem) {
  fake_now = 1'700'000'000'000'000;
  options_.now_us = FakeNow;
  options_.segment_age_us = 3'600'000'000;
  options_.retention_check_interval_us = 5'000;
  auto log = Open();
  ASSERT_TRUE(log->CreateTopic({.name = "raw", .partitions = 1, .retention_us = 7'200'000'000}).ok());
  Fill(*log, "raw", 0, 3, 5);
  fake_now += 3 * 3'600'000'000LL;  // older than both segment age and retention, no appends since
  auto deadline = std::chrono::steady_clock::now() + 5s;
  while ((*log->Describe("raw"))[0].start_offset != 15 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(5ms);
  }
  auto info = *log->Describe("raw");
  EXPECT_EQ(info[0].start_offset, 15);
  EXPECT_EQ(info[0].end_offset, 15);
  EXPECT_EQ(info[0].segments, 1);  // a fresh, empty active segment
  EXPECT_EQ(AppendOne(*log), 15);
}

TEST_F(EmbeddedLogTest, RetentionBySizeKeepsEachPartitionUnderItsLimit) {
  options_.segment_bytes = 1024;
  auto log = Open();
  ASSERT_TRUE(log->CreateTopic({.name = "raw", .partitions = 2, .retention_us = 0, .retention_bytes = 4096}).ok());
  auto lagging = log->Subscribe("slow", "raw");
  Fill(*log, "raw", 0, 60, 3, 80);
  Fill(*log, "raw", 1, 2, 3, 80);
  auto info = *log->Describe("raw");
  EXPECT_GT(info[0].start_offset, 0);
  EXPECT_EQ(info[0].end_offset, 180);
  EXPECT_LE(info[0].bytes, 4096 + 1024);  // the limit, plus at most the active segment's overshoot
  EXPECT_GT(info[0].bytes, 4096 - 1024);
  EXPECT_EQ(info[1].start_offset, 0);  // per partition
  EXPECT_GT(registry_.GetCounter(log_metrics::kSegmentsDeleted, {{"topic", "raw"}, {"reason", "size"}}).value(),
            0u);

  auto seen = Drain(**lagging);
  ASSERT_FALSE(seen.empty());
  std::map<int32_t, int64_t> first;
  for (const auto& s : seen) first.try_emplace(s.partition, s.offset);
  EXPECT_EQ(first[0], info[0].start_offset);
  EXPECT_EQ(first[1], 0);
  EXPECT_EQ(seen.size(), static_cast<size_t>(180 - info[0].start_offset + 6));
}

// `mare log` opens the data dir of a running `mare run`: it takes no lock and follows new
// batches and new segments as they appear.
TEST_F(EmbeddedLogTest, ReadOnlyOpenFollowsAWriter) {
  options_.segment_bytes = 2048;
  auto writer = Open();
  ASSERT_TRUE(writer->CreateTopic({.name = "raw", .partitions = 2}).ok());
  Fill(*writer, "raw", 0, 3, 4);

  EmbeddedLogOptions ro = options_;
  ro.read_only = true;
  metrics::Registry ro_registry;
  ro.metrics = &ro_registry;
  auto reader = Open(ro);
  ASSERT_NE(reader, nullptr);
  EXPECT_EQ((*reader->Describe("raw"))[0].end_offset, 12);
  std::vector<Record> r = {{1, "k", "v"}};
  EXPECT_FALSE(reader->Append("raw", 0, r).ok());
  auto c = reader->Subscribe("tail", "raw");
  ASSERT_TRUE(c.ok());
  EXPECT_FALSE((*c)->Commit(0, 1).ok());

  std::thread appender([&] {
    for (int i = 0; i < 40; ++i) {
      Fill(*writer, "raw", i % 2, 1, 4, 60);
      std::this_thread::sleep_for(2ms);
    }
  });
  std::map<int32_t, int64_t> next;
  std::vector<ConsumedRecord> got;
  auto deadline = std::chrono::steady_clock::now() + 10s;
  while ((next[0] < 92 || next[1] < 80) && std::chrono::steady_clock::now() < deadline) {
    ASSERT_TRUE((*c)->Poll(&got, 100, 200ms).ok());
    for (const auto& rec : got) {
      ASSERT_EQ(rec.offset, next[rec.partition]) << "partition " << rec.partition;
      ++next[rec.partition];
      EXPECT_EQ(rec.value.substr(0, 2), std::to_string(rec.partition) + ":");
    }
  }
  appender.join();
  EXPECT_EQ(next[0], 92);
  EXPECT_EQ(next[1], 80);
  auto info = *reader->Describe("raw");
  EXPECT_GT(info[0].segments, 1);  // it saw the writer roll
  EXPECT_EQ(info[0].end_offset, 92);
}

TEST_F(EmbeddedLogTest, ReadOnlyOpenNeitherTruncatesNorSeesATornTail) {
  std::string path = SegmentPath("raw", 0, 0);
  {
    auto log = Open();
    ASSERT_TRUE(log->CreateTopic({.name = "raw", .partitions = 1}).ok());
    Fill(*log, "raw", 0, 2, 3);
  }
  size_t size = fs::file_size(path);
  ASSERT_EQ(::truncate(path.c_str(), static_cast<off_t>(size - 5)), 0);
  options_.read_only = true;
  auto log = Open();
  ASSERT_NE(log, nullptr);
  EXPECT_EQ((*log->Describe("raw"))[0].end_offset, 3);
  EXPECT_EQ(Drain(**log->Subscribe("g", "raw")).size(), 3u);
  EXPECT_EQ(fs::file_size(path), size - 5);
  options_.read_only = false;
  EXPECT_TRUE(OpenEmbeddedLog(options_).ok());  // the reader holds no lock
}

// A read-only opener (a sink run alone) checks no body at open, the newest segment's neither:
// a damaged batch fails the read that reaches it, naming file and position, and a reader
// starting after it reads on. With repair it stops before the damage instead.
TEST_F(EmbeddedLogTest, ReadOnlyOpenChecksEachBodyWhenItReadsIt) {
  std::string path = SegmentPath("raw", 0, 0);
  std::string bytes = WriteFiveBatches();
  auto starts = BatchStarts(bytes);
  bytes[starts[2] + format::kBatchHeaderSize + 20] ^= 0x40;  // a payload byte of batch 2 (offsets 6..8)
  WriteFile(path, bytes);
  ASSERT_FALSE(OpenEmbeddedLog(options_).ok());  // a writer checks the newest segment's bodies

  EmbeddedLogOptions ro = options_;
  ro.read_only = true;
  auto reader = Open(ro);
  ASSERT_NE(reader, nullptr);
  EXPECT_EQ((*reader->Describe("raw"))[0].end_offset, 15);
  auto from_start = reader->Subscribe("g", "raw");
  ASSERT_TRUE(from_start.ok());
  std::vector<ConsumedRecord> got;
  ASSERT_TRUE((*from_start)->Poll(&got, 6, 0ms).ok());
  EXPECT_EQ(got.size(), 6u);
  Status s = (*from_start)->Poll(&got, 100, 0ms);
  EXPECT_TRUE(s.IsCorruption()) << s.ToString();
  EXPECT_NE(s.message().find(path + " at byte " + std::to_string(starts[2])), std::string::npos) << s.message();

  auto resumed = reader->Subscribe("h", "raw");
  ASSERT_TRUE(resumed.ok());
  ASSERT_TRUE((*resumed)->Seek(0, 9).ok());
  auto seen = Drain(**resumed);
  ASSERT_EQ(seen.size(), 6u);
  EXPECT_EQ(seen.front().offset, 9);

  ro.repair = true;
  auto repairing = Open(ro);
  ASSERT_NE(repairing, nullptr);
  EXPECT_EQ((*repairing->Describe("raw"))[0].end_offset, 6);
  EXPECT_EQ(Drain(**repairing->Subscribe("g", "raw")).size(), 6u);
  EXPECT_EQ(ReadFile(path), bytes);  // nothing was touched
}

TEST_F(EmbeddedLogTest, ASecondWriterOnTheSameDirectoryIsRefused) {
  auto first = Open();
  ASSERT_NE(first, nullptr);
  auto second = OpenEmbeddedLog(options_);
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), Status::Code::kUnavailable);
  EXPECT_NE(second.status().message().find(dir_ + "/LOCK"), std::string::npos) << second.status().message();
  EXPECT_NE(second.status().message().find("pid " + std::to_string(::getpid())), std::string::npos);

  EmbeddedLogOptions ro = options_;
  ro.read_only = true;
  EXPECT_TRUE(OpenEmbeddedLog(ro).ok());  // readers take no lock

  first.reset();
  EXPECT_TRUE(OpenEmbeddedLog(options_).ok());
}

TEST_F(EmbeddedLogTest, FsyncPolicyDecidesWhenSegmentsAreSynced) {
  auto fsyncs = [](metrics::Registry& r) { return r.GetHistogram(log_metrics::kFsyncSeconds).count(); };
  {
    metrics::Registry registry;
    EmbeddedLogOptions o = options_;
    o.metrics = &registry;
    o.fsync = FsyncPolicy::kBatch;
    auto log = Open(o);
    ASSERT_TRUE(log->CreateTopic({.name = "raw", .partitions = 1}).ok());
    uint64_t before = fsyncs(registry);
    Fill(*log, "raw", 0, 5, 2);
    EXPECT_GE(fsyncs(registry) - before, 5u);  // one per append (none to share with here)
  }
  fs::remove_all(dir_ + "/topics");
  {
    metrics::Registry registry;
    EmbeddedLogOptions o = options_;
    o.metrics = &registry;
    o.fsync = FsyncPolicy::kNever;
    auto log = Open(o);
    ASSERT_TRUE(log->CreateTopic({.name = "raw", .partitions = 1}).ok());
    Fill(*log, "raw", 0, 5, 2);
    EXPECT_EQ(fsyncs(registry), 0u);
    ASSERT_TRUE(log->Sync().ok());  // an explicit Sync still syncs
    EXPECT_EQ(fsyncs(registry), 1u);
  }
  fs::remove_all(dir_ + "/topics");
  {
    metrics::Registry registry;
    EmbeddedLogOptions o = options_;
    o.metrics = &registry;
    o.fsync = FsyncPolicy::kInterval;
    o.fsync_interval_us = 10'000;
    auto log = Open(o);
    ASSERT_TRUE(log->CreateTopic({.name = "raw", .partitions = 1}).ok());
    std::this_thread::sleep_for(30ms);
    uint64_t before = fsyncs(registry);
    Fill(*log, "raw", 0, 5, 2);
    auto deadline = std::chrono::steady_clock::now() + 5s;
    while (fsyncs(registry) == before && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(5ms);
    EXPECT_GT(fsyncs(registry), before);
    EXPECT_LE(fsyncs(registry) - before, 5u);  // batched by time, not per append
  }
}

TEST_F(EmbeddedLogTest, ExportsMetrics) {
  auto log = Open();
  ASSERT_TRUE(log->CreateTopic({.name = "raw", .partitions = 2}).ok());
  Fill(*log, "raw", 1, 3, 5);
  EXPECT_EQ(registry_.GetCounter(log_metrics::kRecordsAppended, {{"topic", "raw"}}).value(), 15u);
  EXPECT_EQ(registry_.GetCounter(log_metrics::kBatchesAppended, {{"topic", "raw"}}).value(), 3u);
  int64_t bytes = (*log->Describe("raw"))[1].bytes;
  EXPECT_EQ(registry_.GetCounter(log_metrics::kBytesAppended, {{"topic", "raw"}}).value(),
            static_cast<uint64_t>(bytes));
  std::string text = registry_.Render();
  EXPECT_NE(text.find("mare_log_end_offset{topic=\"raw\",partition=\"1\"} 15\n"), std::string::npos) << text;
  EXPECT_NE(text.find("mare_log_disk_bytes{topic=\"raw\"} " + std::to_string(bytes) + "\n"), std::string::npos)
      << text;
}

TEST_F(EmbeddedLogTest, RejectsWhatItCannotStore) {
  auto log = Open();
  EXPECT_FALSE(log->CreateTopic({.name = "../etc", .partitions = 1}).ok());
  EXPECT_FALSE(log->CreateTopic({.name = "raw", .partitions = 0}).ok());
  ASSERT_TRUE(log->CreateTopic({.name = "raw", .partitions = 2}).ok());
  std::vector<Record> r = {{1, "k", "v"}};
  EXPECT_TRUE(log->Append("nope", 0, r).IsNotFound());
  EXPECT_EQ(log->Append("raw", 2, r).code(), Status::Code::kInvalidArgument);
  std::string key(70'000, 'k');
  std::vector<Record> big = {{1, key, "v"}};
  EXPECT_EQ(log->Append("raw", 0, big).code(), Status::Code::kInvalidArgument);
  EXPECT_FALSE(log->Subscribe("bad/group", "raw").ok());
  EXPECT_TRUE(log->Subscribe("g", "nope").status().IsNotFound());
  EXPECT_EQ((*log->Describe("raw"))[0].end_offset, 0);  // nothing half-written
}

// Not a benchmark (bench/ has those); prints a number to keep an eye on.
TEST_F(EmbeddedLogTest, AppendThroughputIsPrinted) {
  auto log = Open();
  ASSERT_TRUE(log->CreateTopic({.name = "raw", .partitions = 1}).ok());
  constexpr int kBatches = 20'000, kPerBatch = 32;
  std::string value(186, 'v');
  std::vector<Record> records(kPerBatch, Record{1'700'000'000'000'000, "123456", value});
  auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < kBatches; ++i) ASSERT_TRUE(log->Append("raw", 0, records).ok());
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  double records_per_second = kBatches * kPerBatch / seconds;
  std::printf("[ info     ] appended %d records of ~200 bytes in batches of %d: %.0f records/s, %.0f MB/s\n",
              kBatches * kPerBatch, kPerBatch, records_per_second, records_per_second * 214 / 1e6);
  EXPECT_EQ((*log->Describe("raw"))[0].end_offset, kBatches * kPerBatch);
}

}  // namespace
}  // namespace mare::log

namespace mare::log {
namespace {

// Records appended with their readings' numbers are read back with them, each record its own,
// across batches and partitions in one Poll; records without stay without.
TEST(EmbeddedLogNumbers, CarriedNumbersComeBackWithTheirRecords) {
  ScratchDir dir("mare-log-numbers");
  metrics::Registry registry;
  EmbeddedLogOptions options;
  options.dir = dir.path();
  options.metrics = &registry;
  auto log = OpenEmbeddedLog(options);
  ASSERT_TRUE(log.ok()) << log.status().ToString();
  ASSERT_TRUE((*log)->CreateTopic({.name = "raw", .partitions = 2}).ok());
  std::vector<std::vector<NumberField>> numbers;
  for (int i = 0; i < 300; ++i) {
    std::vector<NumberField> n;
    for (int j = 0; j < i % 4; ++j) n.push_back({j % 2 ? "humidity" : "temperature", i + j / 10.0});
    numbers.push_back(std::move(n));
  }
  std::vector<std::string> values, keys;
  for (int i = 0; i < 300; ++i) {
    values.push_back("reading " + std::to_string(i));
    keys.push_back(std::to_string(i));
  }
  for (int batch = 0; batch < 3; ++batch) {
    for (int32_t p = 0; p < 2; ++p) {
      std::vector<Record> records;
      for (int i = batch * 100 + p; i < batch * 100 + 100; i += 2) {
        bool with = i % 7 != 0;  // some records appended without numbers
        records.push_back({i, keys[static_cast<size_t>(i)], values[static_cast<size_t>(i)], with,
                           with ? std::span<const NumberField>(numbers[static_cast<size_t>(i)]) : std::span<const NumberField>()});
      }
      ASSERT_TRUE((*log)->Append("raw", p, records).ok());
    }
  }
  auto consumer = (*log)->Subscribe("g", "raw");
  ASSERT_TRUE(consumer.ok());
  std::vector<ConsumedRecord> batch;
  int seen = 0;
  for (int polls = 0; polls < 20 && seen < 300; ++polls) {
    ASSERT_TRUE((*consumer)->Poll(&batch, 1000, std::chrono::milliseconds(10)).ok());
    for (const ConsumedRecord& r : batch) {
      size_t i = static_cast<size_t>(r.timestamp_us);
      ASSERT_EQ(r.value, values[i]);
      ASSERT_EQ(r.has_numbers, i % 7 != 0) << i;
      if (!r.has_numbers) continue;
      ASSERT_EQ(r.numbers.size(), numbers[i].size()) << i;
      for (size_t j = 0; j < r.numbers.size(); ++j) {
        EXPECT_EQ(r.numbers[j].name, numbers[i][j].name);
        EXPECT_EQ(r.numbers[j].value, numbers[i][j].value);
      }
      ++seen;
    }
    seen += static_cast<int>(std::count_if(batch.begin(), batch.end(), [](const ConsumedRecord& r) { return !r.has_numbers; }));
  }
  EXPECT_EQ(seen, 300);
}

}  // namespace
}  // namespace mare::log
