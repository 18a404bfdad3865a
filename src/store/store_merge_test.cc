// Tests of a store merge that streams its indexes (issue 13): inputs read entry by entry, the
// output's entries spilled to <id>.seg.idx.tmp; a crash or a damaged input must cost no data.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <tuple>

#include "common/scratch_dir.h"
#include "store/segment.h"
#include "store/store.h"

// Its own namespace: the unity build compiles it with store_test.cc, whose helpers share names.
namespace mare::store::merge_test {
namespace {

constexpr int64_t kT0 = 1'704'067'200'000'000;  // 2024-01-01T00:00:00Z
constexpr int64_t kSecond = 1'000'000;
// Sensors per hour: each block's entry takes ~200 bytes (temperature and the location), so three
// hours of them (~1.2 MB) are more entries than a writer holds before spilling them (1 MiB).
constexpr int kSensors = 2000;

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

class StoreMergeTest : public ::testing::Test {
 protected:
  ScratchDir scratch_{"mare-store-merge-test"};
  metrics::Registry registry_;

  std::unique_ptr<Store> Open(bool read_only = false) {
    StoreOptions options;
    options.dir = scratch_.path();
    options.compaction_thread = false;
    options.read_only = read_only;
    auto store = Store::Open(options, &registry_);
    EXPECT_TRUE(store.ok()) << store.status().ToString();
    return store.ok() ? std::move(*store) : nullptr;
  }

  // Hour h of kSensors sensors, six readings each (one every 10 minutes), flushed as a segment.
  static void FlushHour(Store* store, int h) {
    store->Write([&](Store::Batch& b) {
      for (int m = 0; m < 6; ++m) {
        for (int s = 1; s <= kSensors; ++s) {
          Reading r;
          r.timestamp_us = kT0 + h * kHourMicros + (m * 600 + s % 600) * kSecond;
          r.sensor_id = static_cast<uint32_t>(s);
          r.has_location = true;
          r.lat = s / 100.0;
          r.lon = -s / 100.0;
          r.numbers.push_back({"temperature", h + s / 10000.0 + m});
          b.Add(r);
        }
      }
    });
    ASSERT_TRUE(store->Flush({h + 1}).ok());
  }

  // Segment file name -> its bytes.
  std::map<std::string, std::string> Segments() {
    std::map<std::string, std::string> out;
    for (const auto& e : std::filesystem::directory_iterator(scratch_.path())) {
      if (e.path().extension() == ".seg") out[e.path().filename()] = ReadFile(e.path());
    }
    return out;
  }

  std::vector<std::string> Temporary() {
    std::vector<std::string> out;
    for (const auto& e : std::filesystem::directory_iterator(scratch_.path())) {
      if (e.path().extension() == ".tmp") out.push_back(e.path().filename());
    }
    std::sort(out.begin(), out.end());
    return out;
  }
};

// Each sensor's rows, first and last time, position and fields, as the store's summary gives them.
using Figures = std::tuple<int64_t, int64_t, int64_t, double, double, std::vector<uint32_t>>;
std::map<uint32_t, Figures> BySensor(Store& store) {
  std::map<uint32_t, Figures> out;
  for (const auto& f : store.Sensors()) {
    const SensorStats& s = f.stats;
    out[s.sensor_id] = {s.rows, s.first_ts, s.last_ts, s.lat, s.lon, f.fields};
  }
  return out;
}

// A day's merge big enough that its output's index is spilled while written and its output is
// opened unpinned: the same rows and sensors, before and after a restart.
TEST_F(StoreMergeTest, AMergeWhoseIndexIsSpilledKeepsEveryRowAndSensor) {
  auto store = Open();
  for (int h = 0; h < 3; ++h) FlushHour(store.get(), h);
  const auto before = BySensor(*store);
  ASSERT_EQ(before.size(), static_cast<size_t>(kSensors));
  ASSERT_EQ(store->GetStats().segments, 3);
  ASSERT_TRUE(store->Compact(true).ok());
  EXPECT_EQ(store->GetStats().segments, 1);
  EXPECT_EQ(store->GetStats().rows, 3 * 6 * kSensors);
  EXPECT_EQ(BySensor(*store), before);
  EXPECT_TRUE(Temporary().empty());
  // Every block of the merged file where its entry says: a snapshot pins it and reads them all.
  auto snap = store->GetSnapshot({});
  ASSERT_EQ(snap->segments.size(), 1u);
  ASSERT_EQ(snap->segments[0]->blocks().size(), static_cast<size_t>(3 * kSensors));
  std::string bytes;
  for (size_t b = 0; b < snap->segments[0]->blocks().size(); ++b) ASSERT_TRUE(snap->segments[0]->ReadBlock(b, &bytes).ok());
  snap.reset();
  store.reset();
  store = Open();
  EXPECT_EQ(store->GetStats().rows, 3 * 6 * kSensors);
  EXPECT_EQ(BySensor(*store), before);
}

// A crash in the middle of a merge leaves the output's two temporary files: the blocks and the
// index entries spilled so far. A read-only open ignores them; the next open removes them.
TEST_F(StoreMergeTest, AMergeCutShortLeavesNoTemporaryFileAfterARestart) {
  {
    auto store = Open();
    FlushHour(store.get(), 0);
  }
  const auto segments = Segments();
  ASSERT_EQ(segments.size(), 1u);
  // A process writing a merge's output, ended without unwinding (as a kill would end it).
  pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    Schema schema;
    const uint32_t temperature = schema.Intern("temperature", FieldType::kNumber);
    SegmentWriter writer(scratch_.path(), 99);
    for (uint32_t s = 1; s <= 10000; ++s) {  // ~1.2 MB of entries: some spilled
      RowBuffer rows(s);
      rows.AddRow(kT0);
      rows.SetNumber(temperature, 1.5);
      if (!writer.Add(EncodeBlock(rows, 0, 1)).ok()) ::_exit(1);
    }
    ::_exit(0);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  ASSERT_EQ(Temporary(), (std::vector<std::string>{"00000000000000000099.seg.idx.tmp", "00000000000000000099.seg.tmp"}));
  {
    auto reader = Open(/*read_only=*/true);
    ASSERT_NE(reader, nullptr);
    EXPECT_EQ(reader->GetStats().rows, 6 * kSensors);
    EXPECT_EQ(Temporary().size(), 2u);  // a reader changes nothing
  }
  auto store = Open();
  ASSERT_NE(store, nullptr);
  EXPECT_TRUE(Temporary().empty());
  EXPECT_EQ(Segments(), segments);
  EXPECT_EQ(store->GetStats().rows, 6 * kSensors);
}

// An input's index is checked against its checksum only once the merge has read it all, after
// blocks were copied: an input damaged since the store opened it must still fail the merge
// before anything replaces it, with its inputs left as they were.
TEST_F(StoreMergeTest, AnInputDamagedSinceOpeningFailsTheMergeAndKeepsTheInputs) {
  auto store = Open();
  for (int h = 0; h < 3; ++h) FlushHour(store.get(), h);
  const auto before = BySensor(*store);
  auto segments = Segments();
  ASSERT_EQ(segments.size(), 3u);
  // The first input's last entry: one byte of a statistic (a double of its last column, all
  // numbers here) flipped, so that the entry still reads well-formed; size unchanged.
  const std::string first = scratch_.path() + "/" + segments.begin()->first;
  const uint64_t size = std::filesystem::file_size(first);
  {
    std::fstream f(first, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(static_cast<std::streamoff>(size - 32 - 20));
    f.put(static_cast<char>(segments.begin()->second[size - 32 - 20] ^ 0x40));
  }
  segments = Segments();
  Status s = store->Compact(true);
  EXPECT_TRUE(s.IsCorruption()) << s.ToString();
  EXPECT_NE(s.message().find("checksum"), std::string::npos) << s.ToString();
  EXPECT_NE(s.message().find(segments.begin()->first), std::string::npos) << s.ToString();
  // Nothing replaced, nothing left behind, the store as it was.
  EXPECT_EQ(Segments(), segments);
  EXPECT_TRUE(Temporary().empty());
  EXPECT_EQ(store->GetStats().segments, 3);
  EXPECT_EQ(store->GetStats().rows, 3 * 6 * kSensors);
  EXPECT_EQ(BySensor(*store), before);
}

}  // namespace
}  // namespace mare::store::merge_test
