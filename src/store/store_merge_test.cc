// Tests of a store merge that streams its indexes (issue 13): inputs read entry by entry, the
// output's entries spilled to <id>.seg.idx.tmp; a crash or a damaged input must cost no data.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
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
  std::function<void(const std::string&)> written_;  // the store's segment_written_hook_for_test, while set

  std::unique_ptr<Store> Open(bool read_only = false) {
    StoreOptions options;
    options.dir = scratch_.path();
    options.compaction_thread = false;
    options.read_only = read_only;
    options.segment_written_hook_for_test = [this](const std::string& path) {
      if (written_) written_(path);
    };
    auto store = Store::Open(options, &registry_);
    EXPECT_TRUE(store.ok()) << store.status().ToString();
    return store.ok() ? std::move(*store) : nullptr;
  }

  // Hour h of `sensors` sensors, six readings each (one every 10 minutes), flushed as a segment.
  static void FlushHour(Store* store, int h, int sensors = kSensors) {
    store->Write([&](Store::Batch& b) {
      for (int m = 0; m < 6; ++m) {
        for (int s = 1; s <= sensors; ++s) {
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
// Bytes of a segment file's index, as its footer says (index_offset u64, index_length u64, ...).
uint64_t IndexBytes(const std::string& file) {
  uint64_t n = 0;
  std::memcpy(&n, file.data() + file.size() - 32 + 8, sizeof n);  // the store is little-endian only
  return n;
}

// One byte of a double (a statistic of the last entry: still well-formed) flipped near the end
// of the file's index; its size unchanged.
void DamageIndex(const std::string& path) {
  const uint64_t size = std::filesystem::file_size(path);
  std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
  f.seekg(static_cast<std::streamoff>(size - 32 - 20));
  char c = 0;
  f.get(c);
  f.seekp(static_cast<std::streamoff>(size - 32 - 20));
  f.put(static_cast<char>(c ^ 0x40));
}

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
// before anything replaces it, with its inputs left as they were. The newest input is damaged:
// its hour is merged last, once the output has written two hours of blocks and spilled more
// than a MiB of their entries to its .seg.idx.tmp, both of which must go.
TEST_F(StoreMergeTest, AnInputDamagedSinceOpeningFailsTheMergeAndKeepsTheInputs) {
  constexpr int kMany = 4000;
  auto store = Open();
  for (int h = 0; h < 3; ++h) FlushHour(store.get(), h, kMany);
  const auto before = BySensor(*store);
  ASSERT_EQ(before.size(), static_cast<size_t>(kMany));
  auto segments = Segments();
  ASSERT_EQ(segments.size(), 3u);
  // The output's entries of hours 0 and 1 are those of the first two inputs (one block per
  // sensor and hour, copied as they are): more than the writer holds before it spills them.
  auto it = segments.begin();
  const uint64_t two_hours = IndexBytes(it->second) + IndexBytes(std::next(it)->second);
  ASSERT_GT(two_hours, uint64_t{3} << 19) << "the output would not have spilled before the damage is found";
  const std::string newest = segments.rbegin()->first;
  DamageIndex(scratch_.path() + "/" + newest);
  segments = Segments();
  Status s = store->Compact(true);
  EXPECT_TRUE(s.IsCorruption()) << s.ToString();
  EXPECT_NE(s.message().find("checksum"), std::string::npos) << s.ToString();
  EXPECT_NE(s.message().find(newest), std::string::npos) << s.ToString();
  // Nothing replaced, nothing left behind, the store as it was.
  EXPECT_TRUE(Segments() == segments);  // byte for byte (EXPECT_EQ would print them all)
  EXPECT_TRUE(Temporary().empty());
  EXPECT_EQ(store->GetStats().segments, 3);
  EXPECT_EQ(store->GetStats().rows, 3 * 6 * kMany);
  EXPECT_EQ(BySensor(*store), before);
}

// A merge's output is read again once durable. Should that reading fail (a damaged file here;
// EMFILE or EIO alike), the output must go: it names its inputs, which stay live, and a second
// merge's output would name them too, so that a restart would find every reading twice.
TEST_F(StoreMergeTest, AMergeOutputThatFailsToReadAgainIsRemovedAndARetryKeepsOneCopy) {
  auto store = Open();
  for (int h = 0; h < 3; ++h) FlushHour(store.get(), h);
  const auto before = BySensor(*store);
  const auto segments = Segments();
  ASSERT_EQ(segments.size(), 3u);
  std::string output;
  written_ = [&](const std::string& path) {
    output = path;
    DamageIndex(path);
  };
  Status s = store->Compact(true);
  written_ = nullptr;
  EXPECT_TRUE(s.IsCorruption()) << s.ToString();
  ASSERT_FALSE(output.empty());
  EXPECT_FALSE(std::filesystem::exists(output)) << output;
  EXPECT_TRUE(Segments() == segments);  // byte for byte (EXPECT_EQ would print them all)
  EXPECT_TRUE(Temporary().empty());
  EXPECT_EQ(store->GetStats().segments, 3);
  // Again, without the damage: one output, the same rows, and after a restart too.
  ASSERT_TRUE(store->Compact(true).ok());
  EXPECT_EQ(store->GetStats().segments, 1);
  EXPECT_EQ(Segments().size(), 1u);
  EXPECT_EQ(BySensor(*store), before);
  store.reset();
  store = Open();
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(store->GetStats().segments, 1);
  EXPECT_EQ(store->GetStats().rows, 3 * 6 * kSensors);
  EXPECT_EQ(BySensor(*store), before);
}

// A store reopening learns its fields from its segments' headers: they must come back with the
// ids they had (SELECT * lists columns by id), even where a segment's first block uses a later
// field first, and through a merge.
TEST_F(StoreMergeTest, FieldsKeepTheirIdsAcrossAReopen) {
  std::vector<std::string> before;
  {
    auto store = Open();
    ASSERT_NE(store, nullptr);
    for (int h = 0; h < 3; ++h) {
      store->Write([&](Store::Batch& b) {
        for (uint32_t s = 1; s <= 6; ++s) {
          Reading r;
          r.timestamp_us = kT0 + h * kHourMicros + s * kSecond;
          r.sensor_id = s;
          // Field ids by first arrival: temperature, status (sensor 3, hour 0), humidity (sensor
          // 5); in hours 1 and 2 the first block (sensor 1) uses humidity before status comes.
          r.numbers.push_back({"temperature", 10.0 + s});
          if (s == 3 || h > 0) r.texts.push_back({"status", "ok"});
          if (s >= 5 || (h > 0 && s == 1)) r.numbers.push_back({"humidity", 50.0 + s});
          if (h > 0 && s == 1) r.texts.clear();
          b.Add(r);
        }
      });
      ASSERT_TRUE(store->Flush({h + 1}).ok());
    }
    for (const Field& f : store->schema().Fields()) before.push_back(f.name);
    ASSERT_EQ(before, (std::vector<std::string>{"location.lat", "location.lon", "temperature", "status", "humidity"}));
  }
  auto names = [](const Store& store) {
    std::vector<std::string> out;
    for (const Field& f : store.schema().Fields()) out.push_back(f.name);
    return out;
  };
  {
    auto store = Open();
    ASSERT_NE(store, nullptr);
    EXPECT_EQ(names(*store), before);
    ASSERT_TRUE(store->Compact(true).ok());
  }
  auto store = Open();
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(names(*store), before);
}

}  // namespace
}  // namespace mare::store::merge_test
