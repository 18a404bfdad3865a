// Compaction of the embedded log's compacted topics: the newest record of each key kept with
// its offset, gaps read through, the active segment and recent records left whole, crashes at
// every step leaving a whole log, read-only followers, and a topic that becomes compacted.
#include "log/compaction.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "common/metrics.h"
#include "common/scratch_dir.h"
#include "log/embedded_log.h"
#include "log/file.h"
#include "log/format.h"
#include "log/log_metrics.h"

namespace mare::log {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

std::atomic<int64_t> compaction_now{1'700'000'000'000'000};
int64_t CompactionNow() { return compaction_now.load(); }

struct Seen {
  int64_t offset;
  std::string key;
  std::string value;
};

class CompactionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    compaction_now = 1'700'000'000'000'000;
    options_.dir = dir_;
    options_.metrics = &registry_;
    options_.now_us = CompactionNow;
    options_.segment_bytes = 2048;  // a roll every few batches
    options_.retention_check_interval_us = 3'600'000'000;  // no background pass: the tests call Maintain
  }

  std::unique_ptr<Log> Open() {
    auto log = OpenEmbeddedLog(options_);
    EXPECT_TRUE(log.ok()) << log.status().ToString();
    return log ? std::move(*log) : nullptr;
  }

  // Round r writes every key k0..k(keys-1) once, value "k<i>@<r>", in batches of `per_batch`.
  // Returns key -> (offset, value) of the newest record of each key.
  static std::map<std::string, Seen> Write(Log& log, int rounds, int keys, int per_batch, int first_round = 0) {
    std::map<std::string, Seen> newest;
    std::vector<std::string> keys_text;
    std::vector<std::string> values;
    for (int r = first_round; r < first_round + rounds; ++r) {
      for (int k = 0; k < keys; k += per_batch) {
        keys_text.clear();
        values.clear();
        for (int i = k; i < std::min(keys, k + per_batch); ++i) {
          keys_text.push_back("k" + std::to_string(i));
          values.push_back("k" + std::to_string(i) + "@" + std::to_string(r) + std::string(40, '.'));
        }
        std::vector<Record> records;
        for (size_t i = 0; i < values.size(); ++i) records.push_back({1'000 + r, keys_text[i], values[i]});
        int64_t first = -1;
        EXPECT_TRUE(log.Append("rollups", 0, records, &first).ok());
        for (size_t i = 0; i < values.size(); ++i) newest[keys_text[i]] = {first + static_cast<int64_t>(i), keys_text[i], values[i]};
        compaction_now += 1'000'000;
      }
    }
    return newest;
  }

  static std::vector<Seen> Drain(Log& log, const std::string& group, size_t per_poll = 1000) {
    auto c = log.Subscribe(group, "rollups");
    EXPECT_TRUE(c.ok()) << c.status().ToString();
    std::vector<Seen> out;
    std::vector<ConsumedRecord> batch;
    for (;;) {
      Status s = (*c)->Poll(&batch, per_poll, 0ms);
      EXPECT_TRUE(s.ok()) << s.ToString();
      if (!s.ok() || batch.empty()) return out;
      for (const auto& r : batch) out.push_back({r.offset, std::string(r.key), std::string(r.value)});
    }
  }

  int64_t Bytes(Log& log) {
    auto info = log.Describe("rollups");
    return (*info)[0].bytes;
  }
  std::vector<std::string> Files() {
    std::vector<std::string> out;
    for (const auto& e : fs::directory_iterator(dir_ + "/topics/rollups/0")) out.push_back(e.path().filename().string());
    std::sort(out.begin(), out.end());
    return out;
  }
  double Counter(const metrics::Metric& m) { return registry_.GetCounter(m, {{"topic", "rollups"}}).value(); }

  // What must be read after compaction: the newest of each key among the compacted part, and
  // everything from `whole_from` on (the active segment, or what is too recent).
  static void ExpectNewestPerKey(const std::vector<Seen>& got, const std::map<std::string, Seen>& newest) {
    std::map<std::string, int> count;
    int64_t previous = -1;
    for (const Seen& s : got) {
      EXPECT_GT(s.offset, previous) << "offsets increase";
      previous = s.offset;
      ++count[s.key];
    }
    for (const auto& [key, want] : newest) {
      ASSERT_FALSE(got.empty());
      auto last = std::find_if(got.rbegin(), got.rend(), [&](const Seen& s) { return s.key == key; });
      ASSERT_NE(last, got.rend()) << key;
      EXPECT_EQ(last->offset, want.offset) << key;
      EXPECT_EQ(last->value, want.value) << key;
    }
  }

  ScratchDir scratch_{"mare-compaction-test"};
  const std::string dir_ = scratch_.path();
  metrics::Registry registry_;
  EmbeddedLogOptions options_;
};

TEST(KeyOffsetsTest, KeepsTheNewestOffsetOfEachKeyWithinItsBound) {
  KeyOffsets map(24 * 1000);
  EXPECT_EQ(map.capacity(), 750u);
  EXPECT_EQ(map.Get("a"), -1);
  EXPECT_TRUE(map.Put("a", 1));
  EXPECT_TRUE(map.Put("b", 2));
  EXPECT_TRUE(map.Put("a", 7));
  EXPECT_EQ(map.Get("a"), 7);
  EXPECT_EQ(map.Get("b"), 2);
  EXPECT_EQ(map.size(), 2u);
  size_t added = 2;
  while (map.Put("key" + std::to_string(added), static_cast<int64_t>(added))) ++added;
  EXPECT_EQ(added, map.capacity()) << "refuses a new key once 3/4 full";
  EXPECT_TRUE(map.Put("a", 9)) << "a known key is still updated";
  EXPECT_EQ(map.Get("a"), 9);
}

TEST_F(CompactionTest, ClosedSegmentsKeepTheNewestRecordOfEachKeyAtItsOffset) {
  auto log = Open();
  ASSERT_TRUE(log->CreateTopic({.name = "rollups", .partitions = 1, .compact = true}).ok());
  auto newest = Write(*log, 30, 10, 4);
  auto before = Drain(*log, "before");
  ASSERT_EQ(before.size(), 300u);
  int64_t bytes_before = Bytes(*log);
  auto info = log->Describe("rollups");
  ASSERT_GT((*info)[0].segments, 5);
  int64_t end = (*info)[0].end_offset;

  ASSERT_TRUE(log->Maintain().ok());
  auto after = Drain(*log, "after");
  ExpectNewestPerKey(after, newest);
  // Every key at most once in the compacted segments; the active segment is whole.
  info = log->Describe("rollups");
  EXPECT_EQ((*info)[0].end_offset, end) << "offsets are never reused";
  EXPECT_LT(after.size(), 60u);
  EXPECT_LT(Bytes(*log) * 4, bytes_before) << Bytes(*log) << " of " << bytes_before;
  EXPECT_EQ(Counter(log_metrics::kCompactedRecordsRemoved), static_cast<double>(before.size() - after.size()));
  EXPECT_GT(Counter(log_metrics::kCompactedSegments), 0);
  EXPECT_EQ(Counter(log_metrics::kCompactedBytesRemoved), static_cast<double>(bytes_before - Bytes(*log)));

  // Appending goes on at the end offset, and a second pass compacts the new records' keys too.
  auto newer = Write(*log, 10, 10, 4, 30);
  ASSERT_TRUE(log->Maintain().ok());
  auto again = Drain(*log, "again");
  ExpectNewestPerKey(again, newer);

  // Reopened, the log reads the same; new records continue the offsets.
  log.reset();
  log = Open();
  EXPECT_EQ(Drain(*log, "reopened").size(), again.size());
  auto last = Write(*log, 1, 1, 1, 99);
  EXPECT_EQ(last["k0"].offset, end + 100);
}

TEST_F(CompactionTest, AConsumerInAGapReadsTheNextRetainedRecord) {
  auto log = Open();
  ASSERT_TRUE(log->CreateTopic({.name = "rollups", .partitions = 1, .compact = true}).ok());
  Write(*log, 20, 7, 3);
  ASSERT_TRUE(log->Maintain().ok());
  auto all = Drain(*log, "all");
  ASSERT_GE(all.size(), 2u);
  ASSERT_GT(all.front().offset, 0) << "the oldest records were superseded";
  {
    auto c = log->Subscribe("from0", "rollups");
    ASSERT_TRUE((*c)->Seek(0, 0).ok());
    std::vector<ConsumedRecord> batch;
    ASSERT_TRUE((*c)->Poll(&batch, 1, 0ms).ok());
    ASSERT_EQ(batch.size(), 1u);
    EXPECT_EQ(batch[0].offset, all.front().offset);
  }
  // A committed position inside a gap (as a consumer that read before compaction has).
  for (size_t i = 0; i + 1 < all.size(); ++i) {
    if (all[i + 1].offset == all[i].offset + 1) continue;
    auto c = log->Subscribe("gap" + std::to_string(i), "rollups");
    ASSERT_TRUE((*c)->Seek(0, all[i].offset + 1).ok());
    std::vector<ConsumedRecord> batch;
    ASSERT_TRUE((*c)->Poll(&batch, 1, 0ms).ok());
    ASSERT_EQ(batch.size(), 1u);
    EXPECT_EQ(batch[0].offset, all[i + 1].offset);
    EXPECT_EQ(std::string(batch[0].value), all[i + 1].value);
  }
  // Polls of one record at a time read exactly what one big poll reads.
  auto one_by_one = Drain(*log, "small", 1);
  ASSERT_EQ(one_by_one.size(), all.size());
  for (size_t i = 0; i < all.size(); ++i) EXPECT_EQ(one_by_one[i].offset, all[i].offset);
}

// The records a segment keeps are gathered into few batches, across its batches and over the
// gaps the removed records leave (bit 6: their offsets in the batch), rather than a batch per
// run of consecutive kept records (here every other record: a batch each), which would compress
// poorly; and they read back as before, in polls of any size and from inside a gap.
TEST_F(CompactionTest, KeptRecordsAreGatheredIntoFewBatchesAcrossGaps) {
  auto log = Open();
  ASSERT_TRUE(log->CreateTopic({.name = "rollups", .partitions = 1, .compact = true}).ok());
  std::vector<Seen> written;
  for (int r = 0; r < 40; ++r) {
    std::vector<std::string> keys, values;
    for (int i = 0; i < 4; ++i) {
      keys.push_back("hot" + std::to_string(i));  // rewritten every round
      values.push_back("hot" + std::to_string(i) + "@" + std::to_string(r));
      keys.push_back("cold" + std::to_string(r) + "." + std::to_string(i));  // written once
      values.push_back("cold@" + std::to_string(r) + std::string(30, '.'));
    }
    std::vector<Record> records;
    for (size_t i = 0; i < keys.size(); ++i) records.push_back({r, keys[i], values[i]});
    int64_t first = -1;
    ASSERT_TRUE(log->Append("rollups", 0, records, &first).ok());
    for (size_t i = 0; i < keys.size(); ++i) written.push_back({first + static_cast<int64_t>(i), keys[i], values[i]});
    compaction_now += 1'000'000;
  }
  ASSERT_TRUE(log->Maintain().ok());
  auto all = Drain(*log, "all");
  // What must be read: every cold record; the hot ones only where not superseded.
  std::map<std::string, int64_t> newest;
  for (const Seen& w : written) newest[w.key] = w.offset;
  size_t cold = 0;
  for (const Seen& w : written) cold += w.key.starts_with("cold");
  ASSERT_GT(all.size(), cold);
  ASSERT_LT(all.size(), written.size()) << "compaction removed the old hot records";
  size_t i = 0;
  for (const Seen& w : written) {
    bool removed = w.key.starts_with("hot") && newest[w.key] != w.offset;
    if (removed && (i == all.size() || all[i].offset != w.offset)) continue;
    ASSERT_LT(i, all.size());
    EXPECT_EQ(all[i].offset, w.offset);
    EXPECT_EQ(all[i].value, w.value);
    ++i;
  }
  EXPECT_EQ(i, all.size());
  for (size_t per_poll : {1u, 3u}) {
    auto small = Drain(*log, "polls" + std::to_string(per_poll), per_poll);
    ASSERT_EQ(small.size(), all.size());
    for (size_t k = 0; k < all.size(); ++k) EXPECT_EQ(small[k].offset, all[k].offset);
  }
  {  // from inside a gap of a compacted batch: the next kept record
    auto c = log->Subscribe("gap", "rollups");
    ASSERT_TRUE((*c)->Seek(0, all[0].offset + 1).ok());
    std::vector<ConsumedRecord> batch;
    ASSERT_TRUE((*c)->Poll(&batch, 1, 0ms).ok());
    ASSERT_EQ(batch.size(), 1u);
    EXPECT_EQ(batch[0].offset, all[1].offset);
  }
  // The compacted segments' batches: one a segment (each under 256 KiB), with their offsets.
  int compacted = 0, with_offsets = 0, segments = 0;
  uint32_t most = 0;
  for (const std::string& name : Files()) {
    std::string path = dir_ + "/topics/rollups/0/" + name;
    std::ifstream in(path, std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), {});
    bool any = false;
    for (size_t pos = 0; pos + format::kBatchHeaderSize <= bytes.size();) {
      format::BatchHeader h;
      std::string why;
      ASSERT_TRUE(format::ParseBatchHeader(bytes.data() + pos, &h, &why)) << why;
      if (h.attributes & format::kAttrCompacted) {
        ++compacted;
        any = true;
        if (h.attributes & format::kAttrOffsets) {
          ++with_offsets;
          most = std::max(most, format::GetU32(bytes.data() + pos + format::kBatchHeaderSize));
        }
      }
      pos += h.length;
    }
    segments += any;
  }
  EXPECT_GT(segments, 2);
  EXPECT_EQ(compacted, segments) << "one batch per compacted segment";
  EXPECT_EQ(with_offsets, segments);
  EXPECT_GT(most, 8u) << "records of several input batches in one";
  log.reset();
  log = Open();  // recovery scans the newest segment's bodies; the others' headers
  auto reopened = Drain(*log, "reopened");
  ASSERT_EQ(reopened.size(), all.size());
  for (size_t k = 0; k < all.size(); ++k) EXPECT_EQ(reopened[k].value, all[k].value);
}

TEST_F(CompactionTest, RecentSegmentsAndTheActiveOneStayWhole) {
  options_.compaction_lag_us = 100'000'000;  // 100 s
  auto log = Open();
  ASSERT_TRUE(log->CreateTopic({.name = "rollups", .partitions = 1, .compact = true}).ok());
  Write(*log, 20, 5, 5);  // one batch a second: 20 s
  ASSERT_TRUE(log->Maintain().ok());
  EXPECT_EQ(Drain(*log, "recent").size(), 100u) << "nothing is older than the lag";
  compaction_now += 200'000'000;
  ASSERT_TRUE(log->Maintain().ok());
  auto after = Drain(*log, "old");
  EXPECT_LT(after.size(), 100u);
  // What remains of the last batches (the active segment) is whole.
  auto info = log->Describe("rollups");
  int64_t end = (*info)[0].end_offset;
  EXPECT_EQ(after.back().offset, end - 1);
}

TEST_F(CompactionTest, TopicsThatAreNotCompactedAreLeftAlone) {
  auto log = Open();
  ASSERT_TRUE(log->CreateTopic({.name = "rollups", .partitions = 1}).ok());
  Write(*log, 20, 5, 5);
  ASSERT_TRUE(log->Maintain().ok());
  EXPECT_EQ(Drain(*log, "all").size(), 100u);
}

TEST_F(CompactionTest, AnExistingTopicBecomesCompactedWhenCreatedSo) {
  {
    auto log = Open();
    ASSERT_TRUE(log->CreateTopic({.name = "rollups", .partitions = 1}).ok());
    Write(*log, 20, 5, 5);
  }
  auto log = Open();
  ASSERT_TRUE(log->CreateTopic({.name = "rollups", .partitions = 1, .compact = true}).ok());
  auto meta = file::ReadAll(dir_ + "/topics/rollups/topic.toml");
  EXPECT_NE(meta->find("\ncompact = 1\n"), std::string::npos) << *meta;
  ASSERT_TRUE(log->Maintain().ok());
  EXPECT_LT(Drain(*log, "all").size(), 100u);
  // A creator that does not ask for compaction (another role) changes the retention only.
  ASSERT_TRUE(log->CreateTopic({.name = "rollups", .partitions = 1, .retention_us = 86'400'000'000}).ok());
  meta = file::ReadAll(dir_ + "/topics/rollups/topic.toml");
  EXPECT_NE(meta->find("\ncompact = 1\n"), std::string::npos) << *meta;
  EXPECT_NE(meta->find("\nretention_us = 86400000000\n"), std::string::npos) << *meta;
  log.reset();
  log = Open();
  EXPECT_EQ(log->Describe("rollups")->size(), 1u);
}

// A crash after the copy is written (before it replaces the segment), after the rename, and in
// the middle of writing the copy: each leaves a log that opens and reads the newest of every key.
TEST_F(CompactionTest, ACrashAtAnyStepLeavesAWholeLog) {
  for (std::string step : {"written", "renamed", "torn"}) {
    SCOPED_TRACE(step);
    fs::remove_all(dir_ + "/topics");
    fs::remove_all(dir_ + "/consumers");
    std::map<std::string, Seen> newest;
    size_t before = 0;
    {
      // "torn": stopped after the copy is written, which is then cut short as by a crash.
      options_.compaction_fault = [&](std::string_view at) { return at == (step == "torn" ? "written" : step); };
      auto log = Open();
      ASSERT_TRUE(log->CreateTopic({.name = "rollups", .partitions = 1, .compact = true}).ok());
      // Keys written once first, so that the first segments keep something (a copy is written).
      newest = Write(*log, 1, 40, 5, 100);
      for (const auto& [k, v] : Write(*log, 20, 5, 5)) newest[k] = v;
      before = Drain(*log, "before").size();
      ASSERT_TRUE(log->Maintain().ok());
    }
    options_.compaction_fault = nullptr;
    auto files = Files();
    auto copy = std::find_if(files.begin(), files.end(), [](const std::string& f) { return f.ends_with(".cleaned"); });
    if (step != "renamed") {
      ASSERT_NE(copy, files.end());
    } else {
      EXPECT_EQ(copy, files.end());
    }
    if (step == "torn") {
      std::string path = dir_ + "/topics/rollups/0/" + *copy;
      fs::resize_file(path, fs::file_size(path) / 2);
    }
    auto log = Open();
    ASSERT_NE(log, nullptr);
    for (const auto& f : Files()) EXPECT_FALSE(f.ends_with(".cleaned")) << f << " is removed at open";
    auto got = Drain(*log, "after");
    ExpectNewestPerKey(got, newest);
    if (step == "renamed") {
      EXPECT_LT(got.size(), before);
    } else {
      EXPECT_EQ(got.size(), before) << "nothing replaced yet";
    }
    ASSERT_TRUE(log->Maintain().ok());
    ExpectNewestPerKey(Drain(*log, "compacted"), newest);
  }
}

TEST_F(CompactionTest, AReadOnlyFollowerReadsSegmentsReplacedUnderIt) {
  auto log = Open();
  ASSERT_TRUE(log->CreateTopic({.name = "rollups", .partitions = 1, .compact = true}).ok());
  auto newest = Write(*log, 20, 5, 5);
  EmbeddedLogOptions ro = options_;
  ro.read_only = true;
  auto follower = OpenEmbeddedLog(ro);
  ASSERT_TRUE(follower.ok());
  EXPECT_EQ(Drain(**follower, "before").size(), 100u);
  ASSERT_TRUE(log->Maintain().ok());
  size_t compacted = Drain(*log, "writer").size();
  std::this_thread::sleep_for(150ms);  // the follower looks at the files again
  auto got = Drain(**follower, "after");
  ExpectNewestPerKey(got, newest);
  EXPECT_EQ(got.size(), compacted);
}

TEST_F(CompactionTest, APassTakesNoMoreKeysThanItsTableHoldsAndTheNextGoesOn) {
  options_.compaction_map_bytes = 1024;  // 42 slots, 30 keys a pass
  options_.compaction_dirty_ratio = 0;
  auto log = Open();
  ASSERT_TRUE(log->CreateTopic({.name = "rollups", .partitions = 1, .compact = true}).ok());
  auto newest = Write(*log, 4, 100, 10);
  newest["k0"] = Write(*log, 1, 1, 1, 50)["k0"];  // a last segment to close the others
  for (int pass = 0; pass < 20; ++pass) ASSERT_TRUE(log->Maintain().ok());
  auto got = Drain(*log, "all");
  ExpectNewestPerKey(got, newest);
  // A key repeats only when its newest record is in the active segment, never compacted.
  int64_t active_base = 0;
  ASSERT_TRUE(format::ParseSegmentFileName(Files().back(), &active_base));
  std::map<std::string, int> per_key;
  for (const auto& s : got) ++per_key[s.key];
  for (const auto& [k, n] : per_key) {
    if (n > 1) {
      EXPECT_GE(newest[k].offset, active_base) << k << " appears " << n << " times";
    }
  }
  EXPECT_GT(Counter(log_metrics::kCompactionPasses), 10) << "30 keys a pass, 400 records";
}

}  // namespace
}  // namespace mare::log
