// Tests of a segment's index written and read a chunk at a time: the writer's entries spilled to
// a temporary file, Segment::Cursor and Segment::OpenUnpinned against the whole index that Open reads.
#include "store/segment.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "common/scratch_dir.h"
#include "store/index_cache.h"

namespace mare::store {
namespace {

constexpr int64_t kHour0 = 1'704'067'200'000'000;  // 2024-01-01T00:00:00Z
constexpr int64_t kOneSecond = 1'000'000;

class SegmentTest : public ::testing::Test {
 protected:
  ScratchDir scratch_{"mare-segment-test"};
  Schema schema_;

  // hours x sensors blocks of 3 rows each; every third sensor has a text column too, and sensor
  // s has a position (s / 100, -s / 100). Each entry is ~290 bytes: 3 hours of 2,000 sensors
  // make ~1.7 MB of entries, more than the writer holds before spilling them (1 MiB).
  std::string Write(uint64_t id, int hours, int sensors) {
    const uint32_t temperature = schema_.Intern("temperature", FieldType::kNumber);
    const uint32_t lat = schema_.Intern(kLatField, FieldType::kNumber);
    const uint32_t lon = schema_.Intern(kLonField, FieldType::kNumber);
    const uint32_t status = schema_.Intern("status", FieldType::kText);
    SegmentWriter writer(scratch_.path(), id);
    for (int h = 0; h < hours; ++h) {
      for (int s = 1; s <= sensors; ++s) {
        RowBuffer rows(static_cast<uint32_t>(s));
        for (int i = 0; i < 3; ++i) {
          rows.AddRow(kHour0 + h * kHourMicros + (s % 600 + i) * kOneSecond);
          rows.SetNumber(temperature, h + s / 1000.0 + i);
          rows.SetNumber(lat, s / 100.0);
          rows.SetNumber(lon, -s / 100.0);
          if (s % 3 == 0) rows.SetText(status, i == 2 ? "late" : "ok");
        }
        EXPECT_TRUE(writer.Add(EncodeBlock(rows, 0, rows.size())).ok());
      }
    }
    SegmentInfo info;
    info.id = id;
    info.supersedes = {7, 8};
    info.raw_offsets = {11, -1};
    uint64_t bytes = 0;
    Status s = writer.Finish(info, schema_, &bytes);
    EXPECT_TRUE(s.ok()) << s.ToString();
    std::string path = scratch_.path() + "/" + SegmentFileName(id);
    EXPECT_EQ(bytes, std::filesystem::file_size(path));
    return path;
  }

  std::vector<std::string> Temporary() {
    std::vector<std::string> out;
    for (const auto& e : std::filesystem::directory_iterator(scratch_.path())) {
      if (e.path().extension() == ".tmp") out.push_back(e.path());
    }
    return out;
  }
};

void ExpectSameEntry(const BlockMeta& a, const BlockMeta& b) {
  EXPECT_EQ(a.sensor_id, b.sensor_id);
  EXPECT_EQ(a.rows, b.rows);
  EXPECT_EQ(a.min_ts, b.min_ts);
  EXPECT_EQ(a.max_ts, b.max_ts);
  EXPECT_EQ(a.offset, b.offset);
  EXPECT_EQ(a.length, b.length);
  EXPECT_EQ(a.crc, b.crc);
  EXPECT_EQ(a.ts_length, b.ts_length);
  ASSERT_EQ(a.columns.size(), b.columns.size());
  for (size_t c = 0; c < a.columns.size(); ++c) {
    const ColumnMeta &x = a.columns[c], &y = b.columns[c];
    EXPECT_EQ(x.field, y.field);
    EXPECT_EQ(x.offset, y.offset);
    EXPECT_EQ(x.length, y.length);
    EXPECT_EQ(x.stats.count, y.stats.count);
    EXPECT_EQ(x.stats.last, y.stats.last);
    EXPECT_EQ(x.stats.sum, y.stats.sum);
    EXPECT_EQ(x.stats.last_text(), y.stats.last_text());
  }
}

TEST_F(SegmentTest, AnIndexSpilledWhileWritingReadsBackWholeAndEntryByEntry) {
  std::string path = Write(42, 3, 2000);
  EXPECT_TRUE(Temporary().empty());  // neither the segment's nor its index's temporary file is left
  auto whole = Segment::Open(path, &schema_);
  ASSERT_TRUE(whole.ok()) << whole.status().ToString();
  const Segment& w = **whole;
  ASSERT_EQ(w.block_count(), 6000u);
  EXPECT_EQ(w.rows(), 18000);
  EXPECT_EQ(w.info().supersedes, (std::vector<uint64_t>{7, 8}));
  EXPECT_EQ(w.info().raw_offsets, (std::vector<int64_t>{11, -1}));
  EXPECT_EQ(w.first_hour(), kHour0);
  EXPECT_EQ(w.last_hour(), kHour0 + 2 * kHourMicros);
  // Every block's bytes where its entry says (their CRC checked).
  std::string bytes;
  for (size_t i = 0; i < w.block_count(); i += 97) ASSERT_TRUE(w.ReadBlock(i, &bytes).ok());

  auto cache = std::make_shared<IndexCache>(size_t{1} << 30, nullptr);
  auto unpinned = Segment::OpenUnpinned(path, &schema_, cache);
  ASSERT_TRUE(unpinned.ok()) << unpinned.status().ToString();
  const Segment& u = **unpinned;
  EXPECT_FALSE(u.pinned());
  EXPECT_EQ(cache->bytes(), 0u);
  EXPECT_EQ(u.block_count(), w.block_count());
  EXPECT_EQ(u.rows(), w.rows());
  EXPECT_EQ(u.first_hour(), w.first_hour());
  EXPECT_EQ(u.last_hour(), w.last_hour());
  EXPECT_EQ(u.info().supersedes, w.info().supersedes);
  // The summary built entry by entry is the one built from the whole index.
  ASSERT_NE(u.sensors(), nullptr);
  ASSERT_EQ(u.sensors()->size(), w.sensors()->size());
  for (size_t i = 0; i < u.sensors()->size(); ++i) {
    const SensorStats &a = u.sensors()->entry(i), &b = w.sensors()->entry(i);
    EXPECT_EQ(a.sensor_id, b.sensor_id);
    EXPECT_EQ(a.rows, b.rows);
    EXPECT_EQ(a.first_ts, b.first_ts);
    EXPECT_EQ(a.last_ts, b.last_ts);
    EXPECT_EQ(a.lat, b.lat);
    EXPECT_EQ(a.lon, b.lon);
    std::vector<uint32_t> fa, fb;
    u.sensors()->ForEachField(i, [&](uint32_t f) { fa.push_back(f); });
    w.sensors()->ForEachField(i, [&](uint32_t f) { fb.push_back(f); });
    EXPECT_EQ(fa, fb);
    EXPECT_EQ(fa.size(), b.sensor_id % 3 == 0 ? 4u : 3u);
    EXPECT_DOUBLE_EQ(a.lat, a.sensor_id / 100.0);
  }
  // The cursor gives the entries Open read, each with its index, and the blocks read by entry.
  auto cursor = u.Entries();
  ASSERT_TRUE(cursor.ok()) << cursor.status().ToString();
  BlockMeta m;
  size_t i = 0, n = 0;
  while (true) {
    auto more = (*cursor)->Next(&m, &i);
    ASSERT_TRUE(more.ok()) << more.status().ToString();
    if (!*more) break;
    ASSERT_EQ(i, n);
    ExpectSameEntry(m, w.blocks()[i]);
    if (i % 97 == 0) {
      ASSERT_TRUE(u.ReadBlock(m, &bytes).ok());
    }
    ++n;
  }
  EXPECT_EQ(n, 6000u);
  // Pinned later, the unpinned handle has the same index.
  auto pinned = u.Pin();
  ASSERT_TRUE(pinned.ok());
  ExpectSameEntry((*pinned)->blocks()[5999], w.blocks()[5999]);
}

TEST_F(SegmentTest, ACursorOverAViewGivesItsBlocksWithTheirFileIndexes) {
  std::string path = Write(5, 3, 100);
  auto whole = Segment::Open(path, &schema_);
  ASSERT_TRUE(whole.ok());
  auto view = (*whole)->View(kHour0 + kHourMicros, kHour0 + 2 * kHourMicros);
  ASSERT_NE(view, nullptr);
  auto cursor = view->Entries();
  ASSERT_TRUE(cursor.ok());
  BlockMeta m;
  size_t i = 0;
  std::vector<size_t> seen;
  while (true) {
    auto more = (*cursor)->Next(&m, &i);
    ASSERT_TRUE(more.ok()) << more.status().ToString();
    if (!*more) break;
    EXPECT_GE(m.min_ts, kHour0 + kHourMicros);
    ExpectSameEntry(m, (*whole)->blocks()[i]);
    seen.push_back(i);
  }
  ASSERT_EQ(seen.size(), 200u);
  EXPECT_EQ(seen.front(), 100u);
  EXPECT_EQ(seen.back(), 299u);
}

TEST_F(SegmentTest, ACursorFindsAnIndexDamagedSinceItsSegmentWasOpened) {
  std::string path = Write(9, 3, 2000);
  auto cache = std::make_shared<IndexCache>(size_t{1} << 30, nullptr);
  auto seg = Segment::OpenUnpinned(path, &schema_, cache);
  ASSERT_TRUE(seg.ok());
  // One byte of a double (a statistic: still a well-formed entry) flipped near the index's end.
  const uint64_t size = std::filesystem::file_size(path);
  {
    std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
    f.seekg(static_cast<std::streamoff>(size - 32 - 20));
    char c = 0;
    f.get(c);
    f.seekp(static_cast<std::streamoff>(size - 32 - 20));
    f.put(static_cast<char>(c ^ 0x40));
  }
  auto cursor = (*seg)->Entries();
  ASSERT_TRUE(cursor.ok());
  BlockMeta m;
  size_t i = 0;
  Status error;
  for (size_t n = 0; n <= 6000; ++n) {
    auto more = (*cursor)->Next(&m, &i);
    if (!more.ok()) {
      error = more.status();
      break;
    }
    ASSERT_TRUE(*more) << "the whole index given without its damage found";
  }
  EXPECT_TRUE(error.IsCorruption()) << error.ToString();
  EXPECT_NE(error.message().find("checksum"), std::string::npos) << error.ToString();
  // Open reads it whole and says the same.
  EXPECT_TRUE(Segment::Open(path, &schema_).status().IsCorruption());
}

TEST_F(SegmentTest, AWriterDroppedBeforeFinishLeavesNoTemporaryFile) {
  const uint32_t temperature = schema_.Intern("temperature", FieldType::kNumber);
  {
    SegmentWriter writer(scratch_.path(), 3);
    for (uint32_t s = 1; s <= 10000; ++s) {  // ~1.2 MB of entries: some spilled
      RowBuffer rows(s);
      rows.AddRow(kHour0);
      rows.SetNumber(temperature, 1.5);
      ASSERT_TRUE(writer.Add(EncodeBlock(rows, 0, 1)).ok());
    }
    EXPECT_EQ(Temporary().size(), 2u);
  }
  EXPECT_TRUE(Temporary().empty());
}

}  // namespace
}  // namespace mare::store
