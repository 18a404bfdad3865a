#include "store/store.h"

#include <gtest/gtest.h>

#include <isa-l/crc.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "common/scratch_dir.h"
#include "store/coding.h"
#include "store/store_metrics.h"

namespace mare::store {
namespace {

constexpr int64_t kT0 = 1'704'067'200'000'000;  // 2024-01-01T00:00:00Z
constexpr int64_t kSecond = 1'000'000;

// Sums what a snapshot holds, segments and memtable alike.
struct Totals {
  int64_t rows = 0;
  double temperature_sum = 0;
  int64_t texts = 0;
};

Totals Count(const Snapshot& snap, uint32_t temperature, uint32_t status) {
  Totals t;
  std::string bytes;
  ColumnValues v;
  for (const auto& seg : snap.segments) {
    for (size_t b = 0; b < seg->blocks().size(); ++b) {
      const BlockMeta& m = seg->blocks()[b];
      t.rows += m.rows;
      EXPECT_TRUE(seg->ReadBlock(b, &bytes).ok());
      EXPECT_TRUE(DecodeBlockColumn(m, bytes, temperature, FieldType::kNumber, &v).ok());
      for (size_t i = 0; i < m.rows; ++i) {
        if (v.valid.empty() || v.valid[i]) t.temperature_sum += v.numbers[i];
      }
      if (const ColumnMeta* c = m.Column(status)) t.texts += c->stats.count;
    }
  }
  for (const auto& rows : snap.memtable) {
    t.rows += static_cast<int64_t>(rows.size());
    if (temperature < rows.columns().size() && rows.columns()[temperature].used) {
      const auto& c = rows.columns()[temperature];
      for (size_t i = 0; i < rows.size(); ++i) {
        if (c.present[i]) t.temperature_sum += c.numbers[i];
      }
    }
    if (status < rows.columns().size() && rows.columns()[status].used) {
      for (uint8_t p : rows.columns()[status].present) t.texts += p;
    }
  }
  return t;
}

class StoreTest : public ::testing::Test {
 protected:
  ScratchDir scratch_{"mare-store-test"};
  metrics::Registry registry_;

  std::unique_ptr<Store> Open(StoreOptions options = {}) {
    options.dir = scratch_.path();
    options.compaction_thread = false;
    auto store = Store::Open(options, &registry_);
    EXPECT_TRUE(store.ok()) << store.status().ToString();
    return store.ok() ? std::move(*store) : nullptr;
  }

  // n readings per sensor, one per second from `start`, temperature = second index / 100.
  static void Add(Store* store, int sensors, int n, int64_t start, bool with_status = false) {
    store->Write([&](Store::Batch& b) {
      for (int i = 0; i < n; ++i) {
        for (int s = 1; s <= sensors; ++s) {
          Reading r;
          r.timestamp_us = start + i * kSecond;
          r.sensor_id = static_cast<uint32_t>(s);
          r.has_location = true;
          r.lat = 42.48;
          r.lon = 3.18;
          r.numbers.push_back({"temperature", i / 100.0});
          if (with_status && i % 2 == 0) r.texts.push_back({"status", "ok"});
          b.Add(r);
        }
      }
    });
  }

  // Sparse readings: per sensor one at minute 50 of each of `hours` hours from `start`.
  static void AddHourly(Store* store, int sensors, int hours, int64_t start) {
    store->Write([&](Store::Batch& b) {
      for (int h = 0; h < hours; ++h) {
        for (int s = 1; s <= sensors; ++s) {
          Reading r;
          r.timestamp_us = start + h * kHourMicros + 50 * 60 * kSecond;
          r.sensor_id = static_cast<uint32_t>(s);
          r.numbers.push_back({"temperature", h / 10.0});
          b.Add(r);
        }
      }
    });
  }

  uint32_t Temperature(Store* s) { return *s->schema().Find("temperature", FieldType::kNumber); }

  std::vector<std::string> Files(const std::string& extension) {
    std::vector<std::string> out;
    for (const auto& e : std::filesystem::directory_iterator(scratch_.path())) {
      if (e.path().extension() == extension) out.push_back(e.path());
    }
    std::sort(out.begin(), out.end());
    return out;
  }
};

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void WriteFile(const std::string& path, const std::string& bytes) { std::ofstream(path, std::ios::binary) << bytes; }

uint32_t Crc(std::string_view bytes) { return ::crc32_gzip_refl(0, reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size()); }

// Rewrites a one-hour format 2 segment in format 1, as mare wrote it before segments spanned
// hours: the index without max_hour, magic MARESEG1.
void DowngradeToFormatOne(const std::string& path) {
  std::string file = ReadFile(path);
  Reader footer(std::string_view(file).substr(file.size() - 32));
  uint64_t index_offset = 0, index_length = 0;
  ASSERT_TRUE(footer.Fixed64(&index_offset) && footer.Fixed64(&index_length));
  std::string index = file.substr(index_offset, index_length);
  ASSERT_EQ(index.compare(8, 8, index, 16, 8), 0) << "min_hour == max_hour: one hour";
  index.erase(16, 8);
  std::string out = file.substr(0, index_offset) + index;
  PutFixed64(&out, index_offset);
  PutFixed64(&out, index.size());
  PutFixed32(&out, Crc(index));
  PutFixed32(&out, 0);
  out += "MARESEG1";
  WriteFile(path, out);
}

TEST_F(StoreTest, ReadingsAreVisibleBeforeAndAfterAFlushAndAfterReopening) {
  auto store = Open();
  Add(store.get(), 3, 100, kT0, true);
  uint32_t temperature = Temperature(store.get());
  uint32_t status = *store->schema().Find("status", FieldType::kText);
  Totals before = Count(*store->GetSnapshot({}), temperature, status);
  EXPECT_EQ(before.rows, 300);
  EXPECT_EQ(before.texts, 150);
  ASSERT_TRUE(store->Flush({10, 20}).ok());
  EXPECT_EQ(store->memtable_rows(), 0u);
  Totals after = Count(*store->GetSnapshot({}), temperature, status);
  EXPECT_EQ(after.rows, 300);
  EXPECT_DOUBLE_EQ(after.temperature_sum, before.temperature_sum);
  store.reset();

  store = Open();
  EXPECT_EQ(store->raw_offsets(), (std::vector<int64_t>{10, 20}));
  Totals reopened = Count(*store->GetSnapshot({}), Temperature(store.get()), *store->schema().Find("status", FieldType::kText));
  EXPECT_EQ(reopened.rows, 300);
  EXPECT_EQ(reopened.texts, 150);
}

TEST_F(StoreTest, UnflushedReadingsAreNotOnDisk) {
  auto store = Open();
  Add(store.get(), 2, 10, kT0);
  ASSERT_TRUE(store->Flush({5}).ok());
  Add(store.get(), 2, 10, kT0 + 10 * kSecond);
  store.reset();  // a crash: the memtable is gone; the log replays it from position 5
  store = Open();
  EXPECT_EQ(store->raw_offsets(), std::vector<int64_t>{5});
  EXPECT_EQ(store->GetStats().rows, 20);
}

// Issue 13 (a full disk): a flush whose segment was written but whose position file was not
// must not leave its rows in the memtable, or the retry writes them into a second segment and
// the store holds them twice after a restart.
TEST_F(StoreTest, AFlushWhosePositionFileFailsAfterItsSegmentStoresTheRowsOnce) {
  auto store = Open();
  Add(store.get(), 2, 10, kT0);
  // The position file cannot be replaced: a non-empty directory stands in its way.
  std::filesystem::create_directories(scratch_.path() + "/position/blocked");
  Status s = store->Flush({20});
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(store->memtable_rows(), 0u);
  EXPECT_EQ(store->raw_offsets(), std::vector<int64_t>{20});
  EXPECT_EQ(store->GetStats().rows, 20);
  EXPECT_FALSE(store->Flush({20}).ok());  // a retry: nothing left to write twice
  EXPECT_EQ(Files(".seg").size(), 1u);
  std::filesystem::remove_all(scratch_.path() + "/position");
  EXPECT_TRUE(store->Flush({20}).ok());
  store.reset();
  store = Open();
  EXPECT_EQ(store->raw_offsets(), std::vector<int64_t>{20});
  EXPECT_EQ(store->GetStats().rows, 20);
}

TEST_F(StoreTest, AFlushWritesOneSegmentWithBlocksGroupedByHour) {
  auto store = Open();
  Add(store.get(), 2, 2 * 3600, kT0 + 1800 * kSecond);  // 00:30 to 02:30: three hours
  ASSERT_TRUE(store->Flush({1}).ok());
  auto snap = store->GetSnapshot({});
  ASSERT_EQ(snap->segments.size(), 1u);
  const auto& seg = *snap->segments[0];
  EXPECT_EQ(seg.info().min_hour, kT0);
  EXPECT_EQ(seg.info().max_hour, kT0 + 2 * kHourMicros);
  ASSERT_EQ(seg.blocks().size(), 6u);
  for (size_t i = 0; i < seg.blocks().size(); ++i) {
    const BlockMeta& b = seg.blocks()[i];
    EXPECT_EQ(HourOf(b.min_ts), HourOf(b.max_ts));
    EXPECT_EQ(HourOf(b.min_ts), kT0 + static_cast<int64_t>(i / 2) * kHourMicros) << "by hour, then sensor";
    EXPECT_EQ(b.sensor_id, i % 2 + 1);
  }
  // A query for one hour sees only that hour's blocks of the segment.
  auto one_hour = store->GetSnapshot({.sensors = {2}, .min_ts = kT0 + 3600 * kSecond, .max_ts = kT0 + 7199 * kSecond});
  ASSERT_EQ(one_hour->segments.size(), 1u);
  ASSERT_EQ(one_hour->segments[0]->blocks().size(), 2u);
  EXPECT_EQ(one_hour->segments[0]->rows(), 7200);
  std::string bytes;
  std::vector<int64_t> ts;
  ASSERT_TRUE(one_hour->segments[0]->ReadBlock(1, &bytes).ok());
  ASSERT_TRUE(DecodeBlockTimestamps(one_hour->segments[0]->blocks()[1], bytes, &ts).ok());
  EXPECT_EQ(ts.front(), kT0 + 3600 * kSecond);
}

TEST_F(StoreTest, LateAndOutOfOrderReadingsLandInTheirHour) {
  auto store = Open();
  Add(store.get(), 1, 10, kT0 + 3600 * kSecond);
  ASSERT_TRUE(store->Flush({1}).ok());
  Add(store.get(), 1, 5, kT0 + 20 * kSecond);            // an hour late
  Add(store.get(), 1, 5, kT0 + 3600 * kSecond + 500000);  // between flushed readings
  ASSERT_TRUE(store->Flush({2}).ok());
  EXPECT_EQ(store->GetStats().segments, 2);
  ASSERT_TRUE(store->Compact(true).ok());
  auto snap = store->GetSnapshot({});
  ASSERT_EQ(snap->segments.size(), 1u);
  const auto& seg = *snap->segments[0];
  ASSERT_EQ(seg.blocks().size(), 2u);
  std::string bytes;
  std::vector<int64_t> ts;
  for (size_t b = 0; b < 2; ++b) {
    ASSERT_TRUE(seg.ReadBlock(b, &bytes).ok());
    ASSERT_TRUE(DecodeBlockTimestamps(seg.blocks()[b], bytes, &ts).ok());
    EXPECT_TRUE(std::is_sorted(ts.begin(), ts.end()));
    EXPECT_EQ(HourOf(ts.front()), kT0 + static_cast<int64_t>(b) * kHourMicros);
    EXPECT_EQ(ts.size(), b == 0 ? 5u : 15u);
  }
  EXPECT_EQ(store->raw_offsets(), std::vector<int64_t>{2});
}

TEST_F(StoreTest, CompactionMergesAnHoursSegmentsWithoutLosingARow) {
  auto store = Open();
  uint32_t temperature = 0;
  for (int f = 0; f < 6; ++f) {
    Add(store.get(), 4, 50, kT0 + f * 50 * kSecond, true);
    temperature = Temperature(store.get());
    ASSERT_TRUE(store->Flush({f + 1}).ok());
  }
  uint32_t status = *store->schema().Find("status", FieldType::kText);
  Totals before = Count(*store->GetSnapshot({}), temperature, status);
  EXPECT_EQ(store->GetStats().segments, 6);
  ASSERT_TRUE(store->Compact(true).ok());
  EXPECT_EQ(store->GetStats().segments, 1);
  Totals after = Count(*store->GetSnapshot({}), temperature, status);
  EXPECT_EQ(after.rows, before.rows);
  EXPECT_EQ(after.texts, before.texts);
  EXPECT_DOUBLE_EQ(after.temperature_sum, before.temperature_sum);
  int files = 0;
  for (const auto& e : std::filesystem::directory_iterator(scratch_.path())) files += e.path().extension() == ".seg";
  EXPECT_EQ(files, 1) << "merged inputs are deleted";
  store.reset();
  store = Open();
  EXPECT_EQ(store->raw_offsets(), std::vector<int64_t>{6});
  EXPECT_EQ(store->GetStats().rows, 1200);
}

// A merge decodes and encodes only the sensors' hours that come in more than one block; a
// block alone in its sensor's hour is copied as it is (its CRC, so its bytes, unchanged).
TEST_F(StoreTest, AMergeCopiesABlockAloneInItsHourAndMergesTheOthers) {
  auto store = Open();
  Add(store.get(), 2, 100, kT0);                 // hour 0, sensors 1 and 2
  ASSERT_TRUE(store->Flush({1}).ok());
  Add(store.get(), 2, 100, kT0 + kHourMicros);   // hour 1
  ASSERT_TRUE(store->Flush({2}).ok());
  Add(store.get(), 1, 100, kT0 + 200 * kSecond);  // hour 0 again, sensor 1 only: a second block
  ASSERT_TRUE(store->Flush({3}).ok());
  uint32_t temperature = Temperature(store.get());
  std::map<std::pair<uint32_t, int64_t>, std::vector<uint32_t>> crcs;  // (sensor, hour) -> its blocks' CRCs
  auto flushed = store->GetSnapshot({});
  for (const auto& seg : flushed->segments) {
    for (const BlockMeta& m : seg->blocks()) crcs[{m.sensor_id, HourOf(m.min_ts)}].push_back(m.crc);
  }
  flushed.reset();
  ASSERT_EQ(crcs.size(), 4u);
  const std::vector<uint32_t>& twice = crcs[{1, kT0}];
  ASSERT_EQ(twice.size(), 2u);
  Totals before = Count(*store->GetSnapshot({}), temperature, 0);
  ASSERT_TRUE(store->Compact(true).ok());
  auto snap = store->GetSnapshot({});
  ASSERT_EQ(snap->segments.size(), 1u);
  ASSERT_EQ(snap->segments[0]->blocks().size(), 4u);
  for (const BlockMeta& m : snap->segments[0]->blocks()) {
    const auto& was = crcs[{m.sensor_id, HourOf(m.min_ts)}];
    if (was.size() == 1) {
      EXPECT_EQ(m.crc, was[0]) << "sensor " << m.sensor_id << ": copied as it was";
      EXPECT_EQ(m.rows, 100u);
    } else {
      EXPECT_EQ(m.rows, 200u) << "both blocks of sensor 1's hour 0 in one";
      EXPECT_EQ(m.min_ts, kT0);
      EXPECT_EQ(m.max_ts, kT0 + 299 * kSecond);
      EXPECT_NE(m.crc, was[0]);
      EXPECT_NE(m.crc, was[1]);
    }
  }
  Totals after = Count(*snap, temperature, 0);
  EXPECT_EQ(after.rows, 500);
  EXPECT_EQ(after.rows, before.rows);
  EXPECT_DOUBLE_EQ(after.temperature_sum, before.temperature_sum);
  store.reset();
  store = Open();  // the copied blocks read back from the merged file (their CRCs checked)
  EXPECT_EQ(Count(*store->GetSnapshot({}), Temperature(store.get()), 0).temperature_sum, before.temperature_sum);
}

TEST_F(StoreTest, AMergeInterruptedBeforeDeletingItsInputsCountsNothingTwice) {
  std::string kept;
  {
    auto store = Open();
    Add(store.get(), 2, 10, kT0);
    ASSERT_TRUE(store->Flush({1}).ok());
    Add(store.get(), 2, 10, kT0 + 10 * kSecond);
    ASSERT_TRUE(store->Flush({2}).ok());
    // Keep a copy of the inputs, as if the crash came before they were unlinked.
    std::filesystem::create_directory(scratch_.path() + "/keep");
    for (const auto& e : std::filesystem::directory_iterator(scratch_.path())) {
      if (e.path().extension() == ".seg") std::filesystem::copy(e.path(), scratch_.path() + "/keep/" + e.path().filename().string());
    }
    ASSERT_TRUE(store->Compact(true).ok());
  }
  for (const auto& e : std::filesystem::directory_iterator(scratch_.path() + "/keep")) {
    std::filesystem::copy(e.path(), scratch_.path() + "/" + e.path().filename().string());
  }
  std::filesystem::remove_all(scratch_.path() + "/keep");
  auto store = Open();
  EXPECT_EQ(store->GetStats().rows, 40);
  EXPECT_EQ(store->GetStats().segments, 1);
}

TEST_F(StoreTest, RetentionDropsWholeHoursOlderThanTheLimit) {
  auto store = Open({.retention_us = 2 * 3600 * kSecond});
  Add(store.get(), 1, 3 * 3600, kT0);  // three hours
  ASSERT_TRUE(store->Flush({3}).ok());
  auto dropped = store->ApplyRetention(kT0 + 4 * 3600 * kSecond + 10 * kSecond);  // keeps from 02:00:10
  ASSERT_TRUE(dropped.ok());
  EXPECT_EQ(*dropped, 2 * 3600);
  EXPECT_EQ(store->GetStats().rows, 3600);
  store.reset();
  store = Open();
  EXPECT_EQ(store->GetStats().rows, 3600);
  EXPECT_EQ(store->raw_offsets(), std::vector<int64_t>{3}) << "the position survives the segments that carried it";
}

TEST_F(StoreTest, OneWriterAtATimeWhileReadersMayLook) {
  auto store = Open();
  Add(store.get(), 1, 10, kT0);
  ASSERT_TRUE(store->Flush({1}).ok());
  StoreOptions options;
  options.dir = scratch_.path();
  auto second = Store::Open(options, &registry_);
  ASSERT_FALSE(second.ok());
  EXPECT_NE(second.status().message().find("in use by another process"), std::string::npos);
  options.read_only = true;
  auto reader = Store::Open(options, &registry_);
  ASSERT_TRUE(reader.ok()) << reader.status().ToString();
  EXPECT_EQ((*reader)->GetStats().rows, 10);
}

TEST_F(StoreTest, ACorruptSegmentIsReportedAtOpen) {
  {
    auto store = Open();
    Add(store.get(), 1, 10, kT0);
    ASSERT_TRUE(store->Flush({1}).ok());
  }
  std::string path;
  for (const auto& e : std::filesystem::directory_iterator(scratch_.path())) {
    if (e.path().extension() == ".seg") path = e.path();
  }
  std::filesystem::resize_file(path, std::filesystem::file_size(path) - 3);
  StoreOptions options;
  options.dir = scratch_.path();
  auto store = Store::Open(options, &registry_);
  ASSERT_FALSE(store.ok());
  EXPECT_TRUE(store.status().IsCorruption());
  EXPECT_NE(store.status().message().find(path), std::string::npos) << store.status().ToString();
}

// Found by fuzz/store_segment (fuzz/corpus/store_segment/block-of-2g-rows.seg): an index entry
// claiming billions of rows for a block was accepted, and decoding the block then asked for
// that many timestamps (tens of GB). A block holds at most kMaxBlockRows rows.
TEST_F(StoreTest, ABlockOfMoreRowsThanABlockHoldsIsCorruption) {
  {
    auto store = Open();
    Add(store.get(), 1, 10, kT0);
    ASSERT_TRUE(store->Flush({1}).ok());
  }
  std::string path = Files(".seg").at(0);
  Schema schema;
  auto good = Segment::Open(path, &schema);
  ASSERT_TRUE(good.ok()) << good.status().ToString();
  const BlockMeta& m = (*good)->blocks()[0];
  // The block's entry starts sensor_id u32, rows u32, min_ts i64: find it, and claim 2^31 rows.
  std::string entry;
  PutFixed32(&entry, m.sensor_id);
  PutFixed32(&entry, m.rows);
  PutFixed64(&entry, static_cast<uint64_t>(m.min_ts));
  std::string file = ReadFile(path);
  Reader footer(std::string_view(file).substr(file.size() - 32));
  uint64_t index_offset = 0, index_length = 0;
  ASSERT_TRUE(footer.Fixed64(&index_offset) && footer.Fixed64(&index_length));
  size_t at = file.find(entry, index_offset);
  ASSERT_NE(at, std::string::npos);
  uint32_t rows = 1u << 31;
  std::memcpy(file.data() + at + 4, &rows, 4);
  uint32_t crc = Crc(std::string_view(file).substr(index_offset, index_length));
  std::memcpy(file.data() + file.size() - 32 + 16, &crc, 4);
  WriteFile(path, file);

  auto bad = Segment::Open(path, &schema);
  ASSERT_FALSE(bad.ok());
  EXPECT_TRUE(bad.status().IsCorruption()) << bad.status().ToString();
  rows = kMaxBlockRows;  // the most a block holds is still a block
  std::memcpy(file.data() + at + 4, &rows, 4);
  crc = Crc(std::string_view(file).substr(index_offset, index_length));
  std::memcpy(file.data() + file.size() - 32 + 16, &crc, 4);
  WriteFile(path, file);
  EXPECT_TRUE(Segment::Open(path, &schema).ok());
}

// Found by fuzz/store_segment (fuzz/corpus/store_segment/block-offset-wraps.seg): offsets were
// checked with sums that wrap, so a block "at" 2^64 - length, or an index of 2^63 bytes framed
// by an offset of 2^63 more, passed (the latter asked for a 2^63-byte string). Both are corruption.
TEST_F(StoreTest, OffsetsThatWrapAroundAreCorruption) {
  {
    auto store = Open();
    Add(store.get(), 1, 10, kT0);
    ASSERT_TRUE(store->Flush({1}).ok());
  }
  std::string path = Files(".seg").at(0);
  Schema schema;
  auto good = Segment::Open(path, &schema);
  ASSERT_TRUE(good.ok()) << good.status().ToString();
  const BlockMeta& m = (*good)->blocks()[0];
  const std::string file = ReadFile(path);
  Reader footer(std::string_view(file).substr(file.size() - 32));
  uint64_t index_offset = 0, index_length = 0;
  ASSERT_TRUE(footer.Fixed64(&index_offset) && footer.Fixed64(&index_length));
  auto with_index_crc = [&](std::string bytes) {
    uint32_t crc = Crc(std::string_view(bytes).substr(index_offset, index_length));
    std::memcpy(bytes.data() + bytes.size() - 32 + 16, &crc, 4);
    return bytes;
  };

  // The block's entry: sensor_id u32, rows u32, min_ts i64, max_ts i64, offset u64 (at 24).
  std::string entry;
  PutFixed32(&entry, m.sensor_id);
  PutFixed32(&entry, m.rows);
  PutFixed64(&entry, static_cast<uint64_t>(m.min_ts));
  size_t at = file.find(entry, index_offset);
  ASSERT_NE(at, std::string::npos);
  std::string bytes = file;
  uint64_t wrapping = ~uint64_t{0} - m.length + 1;  // + length == 0
  std::memcpy(bytes.data() + at + 24, &wrapping, 8);
  WriteFile(path, with_index_crc(bytes));
  auto bad = Segment::Open(path, &schema);
  ASSERT_FALSE(bad.ok());
  EXPECT_TRUE(bad.status().IsCorruption()) << bad.status().ToString();

  bytes = file;
  uint64_t huge = uint64_t{1} << 63, offset = index_offset + huge;  // offset + length wraps to the truth
  std::memcpy(bytes.data() + bytes.size() - 32, &offset, 8);
  std::memcpy(bytes.data() + bytes.size() - 32 + 8, &huge, 8);
  WriteFile(path, bytes);
  bad = Segment::Open(path, &schema);
  ASSERT_FALSE(bad.ok());
  EXPECT_TRUE(bad.status().IsCorruption()) << bad.status().ToString();
}

TEST_F(StoreTest, AFlushOverTwoThousandHoursWritesOneFileAndRestartsFromItsPosition) {
  {
    auto store = Open();
    AddHourly(store.get(), 3, 2000, kT0);  // 83 days and 8 hours
    ASSERT_TRUE(store->Flush({7, 9}).ok());
    EXPECT_EQ(Files(".seg").size(), 1u);
    EXPECT_EQ(store->GetStats().segments, 1);
    EXPECT_EQ(store->GetStats().blocks, 3 * 2000);
    AddHourly(store.get(), 3, 5, kT0 + 2000 * kHourMicros);  // in the memtable at the crash
  }
  auto store = Open();
  EXPECT_EQ(store->raw_offsets(), (std::vector<int64_t>{7, 9}));
  EXPECT_EQ(store->GetStats().rows, 3 * 2000);
  // A day's query sees that day's blocks of the segment, a query across midnight both sides'.
  int64_t day = kT0 + 40 * kDayMicros;
  auto one_day = store->GetSnapshot({.min_ts = day, .max_ts = day + kDayMicros - 1});
  ASSERT_EQ(one_day->segments.size(), 1u);
  EXPECT_EQ(one_day->segments[0]->blocks().size(), 3u * 24);
  EXPECT_EQ(one_day->segments[0]->blocks().front().min_ts, day + 50 * 60 * kSecond);
  auto midnight = store->GetSnapshot({.min_ts = day - kHourMicros, .max_ts = day + kHourMicros - 1});
  ASSERT_EQ(midnight->segments.size(), 1u);
  EXPECT_EQ(midnight->segments[0]->rows(), 6);
  auto before = store->GetSnapshot({.max_ts = kT0 - 1});
  EXPECT_TRUE(before->segments.empty());
}

TEST_F(StoreTest, CompactionMergesAQuietDayThenPacksSmallSegmentsAcrossDays) {
  auto store = Open();
  for (int h = 0; h < 48; ++h) {  // two days, a flush an hour, as a live feed of one reading an hour
    AddHourly(store.get(), 2, 1, kT0 + h * kHourMicros);
    ASSERT_TRUE(store->Flush({h + 1}).ok());
  }
  ASSERT_EQ(store->GetStats().segments, 48);
  ASSERT_TRUE(store->Compact(true).ok());
  EXPECT_EQ(store->GetStats().segments, 1) << "each day merged, then both packed into one";
  EXPECT_EQ(Files(".seg").size(), 1u);
  EXPECT_EQ(store->GetStats().rows, 96);
  EXPECT_EQ(store->GetStats().blocks, 96);
  store.reset();
  store = Open();
  EXPECT_EQ(store->raw_offsets(), std::vector<int64_t>{48});
  EXPECT_EQ(store->GetStats().rows, 96);
}

TEST_F(StoreTest, BigDaysAreMergedPerDayAndNotPacked) {
  auto store = Open({.compaction_pack_rows = 40});  // segments of 10 rows or more are not small
  for (int h = 0; h < 48; ++h) {
    Add(store.get(), 2, 10, kT0 + h * kHourMicros);
    ASSERT_TRUE(store->Flush({h + 1}).ok());
  }
  ASSERT_TRUE(store->Compact(true).ok());
  auto snap = store->GetSnapshot({});
  ASSERT_EQ(snap->segments.size(), 2u);
  for (int d = 0; d < 2; ++d) {
    EXPECT_EQ(snap->segments[d]->info().min_hour, kT0 + d * kDayMicros);
    EXPECT_EQ(snap->segments[d]->info().max_hour, kT0 + d * kDayMicros + 23 * kHourMicros);
    EXPECT_EQ(snap->segments[d]->blocks().size(), 48u);
  }
}

TEST_F(StoreTest, AFewLateReadingsDoNotRewriteABigDay) {
  auto store = Open({.compaction_pack_rows = 40});
  Add(store.get(), 2, 3600, kT0);
  ASSERT_TRUE(store->Flush({1}).ok());
  for (int late = 0; late < 2; ++late) {
    Add(store.get(), 1, 3, kT0 + (5 + late) * kHourMicros);
    ASSERT_TRUE(store->Flush({2 + late}).ok());
  }
  uint64_t big = store->GetSnapshot({})->segments[0]->info().id;
  ASSERT_TRUE(store->Compact(true).ok());
  auto snap = store->GetSnapshot({});
  ASSERT_EQ(snap->segments.size(), 2u) << "the late ones merged together, not into the big one";
  EXPECT_EQ(snap->segments[0]->info().id, big);
  EXPECT_EQ(snap->segments[1]->rows(), 6);
  EXPECT_EQ(store->GetStats().rows, 7206);
}

TEST_F(StoreTest, ADayStillWrittenIsMergedByTiersOnly) {
  auto store = Open({.compaction_quiet_us = 3'600'000'000});
  for (int f = 0; f < 3; ++f) {
    Add(store.get(), 2, 10, kT0 + f * kHourMicros);
    ASSERT_TRUE(store->Flush({f + 1}).ok());
  }
  ASSERT_TRUE(store->Compact(false).ok());
  EXPECT_EQ(store->GetStats().segments, 3) << "three of a tier: below the fan-in, and the day is not quiet";
  Add(store.get(), 2, 10, kT0 + 3 * kHourMicros);
  ASSERT_TRUE(store->Flush({4}).ok());
  ASSERT_TRUE(store->Compact(false).ok());
  EXPECT_EQ(store->GetStats().segments, 1);
  EXPECT_EQ(store->GetStats().rows, 80);
  EXPECT_EQ(store->raw_offsets(), std::vector<int64_t>{4});
}

TEST_F(StoreTest, RetentionHidesPastHoursAtOnceAndRewritesOrDropsTheirFiles) {
  auto store = Open({.retention_us = 24 * kHourMicros});
  store->Write([&](Store::Batch& b) {  // three days, a reading a minute
    for (int m = 0; m < 3 * 24 * 60; ++m) {
      Reading r;
      r.timestamp_us = kT0 + m * 60 * kSecond;
      r.sensor_id = 1;
      r.numbers.push_back({"temperature", 1});
      b.Add(r);
    }
  });
  ASSERT_TRUE(store->Flush({1}).ok());
  std::vector<std::string> files = Files(".seg");
  ASSERT_EQ(files.size(), 1u);

  // Ten hours past: hidden from queries and stats, the file kept (less than half of it past).
  auto dropped = store->ApplyRetention(kT0 + 34 * kHourMicros + 5 * kSecond);
  ASSERT_TRUE(dropped.ok());
  EXPECT_EQ(*dropped, 600);
  EXPECT_EQ(store->GetStats().rows, 3 * 1440 - 600);
  auto snap = store->GetSnapshot({});
  ASSERT_EQ(snap->segments.size(), 1u);
  EXPECT_EQ(snap->segments[0]->blocks().front().min_ts, kT0 + 10 * kHourMicros);
  EXPECT_TRUE(store->GetSnapshot({.max_ts = kT0 + 10 * kHourMicros - 1})->segments.empty());
  EXPECT_EQ(Files(".seg"), files);

  // Forty hours past: more than half of the file, which is rewritten without them.
  dropped = store->ApplyRetention(kT0 + 64 * kHourMicros);
  ASSERT_TRUE(dropped.ok());
  EXPECT_EQ(*dropped, 1800);
  EXPECT_EQ(store->GetStats().rows, 32 * 60);
  ASSERT_EQ(Files(".seg").size(), 1u);
  EXPECT_NE(Files(".seg"), files);

  // A later flush of late readings for hours already past, then everything past: all dropped.
  AddHourly(store.get(), 1, 2, kT0);
  ASSERT_TRUE(store->Flush({2}).ok());
  dropped = store->ApplyRetention(kT0 + 100 * kHourMicros);
  ASSERT_TRUE(dropped.ok());
  EXPECT_EQ(*dropped, 32 * 60 + 2);
  EXPECT_EQ(store->GetStats().segments, 0);
  EXPECT_TRUE(Files(".seg").empty());
  store.reset();
  store = Open();
  EXPECT_EQ(store->raw_offsets(), std::vector<int64_t>{2}) << "the position survives the segments that carried it";
}

TEST_F(StoreTest, RetentionRewriteSurvivesARestart) {
  {
    auto store = Open({.retention_us = kHourMicros});
    AddHourly(store.get(), 2, 10, kT0);
    ASSERT_TRUE(store->Flush({3}).ok());
    auto dropped = store->ApplyRetention(kT0 + 9 * kHourMicros);
    ASSERT_TRUE(dropped.ok());
    EXPECT_EQ(*dropped, 2 * 8);
  }
  auto store = Open();
  EXPECT_EQ(store->GetStats().rows, 4);
  EXPECT_EQ(store->raw_offsets(), std::vector<int64_t>{3});
}

TEST_F(StoreTest, SegmentsOfFormatOneAreReadAndMergedIntoFormatTwo) {
  {
    auto store = Open();
    for (int h = 0; h < 3; ++h) {  // one hour a flush: each segment one hour, as format 1 kept them
      Add(store.get(), 2, 100, kT0 + h * kHourMicros, true);
      ASSERT_TRUE(store->Flush({h + 1}).ok());
    }
  }
  for (const auto& path : Files(".seg")) DowngradeToFormatOne(path);
  ASSERT_EQ(Files(".seg").size(), 3u);
  ASSERT_EQ(ReadFile(Files(".seg")[0]).substr(ReadFile(Files(".seg")[0]).size() - 8), "MARESEG1");
  auto store = Open();
  EXPECT_EQ(store->GetStats().segments, 3);
  EXPECT_EQ(store->GetStats().rows, 600);
  EXPECT_EQ(store->raw_offsets(), std::vector<int64_t>{3});
  auto snap = store->GetSnapshot({});
  EXPECT_EQ(snap->segments[1]->info().min_hour, kT0 + kHourMicros);
  EXPECT_EQ(snap->segments[1]->info().max_hour, kT0 + kHourMicros);
  uint32_t temperature = Temperature(store.get());
  uint32_t status = *store->schema().Find("status", FieldType::kText);
  Totals before = Count(*snap, temperature, status);
  ASSERT_TRUE(store->Compact(true).ok());
  ASSERT_EQ(Files(".seg").size(), 1u);
  std::string merged = ReadFile(Files(".seg")[0]);
  EXPECT_EQ(merged.substr(merged.size() - 8), "MARESEG2");
  Totals after = Count(*store->GetSnapshot({}), temperature, status);
  EXPECT_EQ(after.rows, before.rows);
  EXPECT_EQ(after.texts, before.texts);
  EXPECT_DOUBLE_EQ(after.temperature_sum, before.temperature_sum);
}

// Readings of one sensor, one a second from `start`, temperature = base + i / 100.
void AddSeries(Store* store, uint32_t sensor, int n, int64_t start, double base) {
  store->Write([&](Store::Batch& b) {
    for (int i = 0; i < n; ++i) {
      Reading r;
      r.timestamp_us = start + i * kSecond;
      r.sensor_id = sensor;
      r.numbers.push_back({"temperature", base + i / 100.0});
      b.Add(r);
    }
  });
}

double SeriesSum(int n, double base) {
  double sum = 0;
  for (int i = 0; i < n; ++i) sum += base + i / 100.0;
  return sum;
}

// The store keeps one reading per sensor and timestamp; a later copy replaces the earlier one,
// whether that one is in the memtable or already on disk, and queries never see both.
TEST_F(StoreTest, OneReadingPerSensorAndTimeTheLaterWins) {
  auto store = Open();
  AddSeries(store.get(), 1, 100, kT0, 0);
  AddSeries(store.get(), 2, 100, kT0, 0);
  uint32_t temperature = Temperature(store.get());
  auto totals = [&] { return Count(*store->GetSnapshot({}), temperature, 999); };
  EXPECT_EQ(totals().rows, 200);

  AddSeries(store.get(), 1, 100, kT0, 10);  // again, in the memtable
  EXPECT_EQ(totals().rows, 200);
  EXPECT_DOUBLE_EQ(totals().temperature_sum, SeriesSum(100, 10) + SeriesSum(100, 0));
  EXPECT_EQ(registry_.Find(store_metrics::kBlocksReopened).value_or(-1), 0);

  ASSERT_TRUE(store->Flush({1}).ok());
  AddSeries(store.get(), 2, 100, kT0, 20);  // again, once on disk: the block comes back to memory
  EXPECT_EQ(totals().rows, 200);
  EXPECT_DOUBLE_EQ(totals().temperature_sum, SeriesSum(100, 10) + SeriesSum(100, 20));
  EXPECT_EQ(store->GetStats().rows, 100) << "sensor 2's block is hidden while the memtable holds its rows";
  EXPECT_EQ(registry_.Find(store_metrics::kReadingsReplaced).value_or(-1), 200);
  EXPECT_EQ(registry_.Find(store_metrics::kBlocksReopened).value_or(-1), 1);

  // A reading between two stored ones is no copy: added, nothing read back.
  AddSeries(store.get(), 2, 1, kT0 + kSecond / 2, 5);
  EXPECT_EQ(totals().rows, 201);
  EXPECT_EQ(registry_.Find(store_metrics::kBlocksReopened).value_or(-1), 1);

  ASSERT_TRUE(store->Flush({2}).ok());
  double sum = SeriesSum(100, 10) + SeriesSum(100, 20) + 5;
  EXPECT_EQ(totals().rows, 201);
  EXPECT_DOUBLE_EQ(totals().temperature_sum, sum);

  store.reset();  // the hide is on disk: a reopened store still sees each reading once
  store = Open();
  EXPECT_EQ(totals().rows, 201);
  EXPECT_DOUBLE_EQ(totals().temperature_sum, sum);
  ASSERT_TRUE(store->Compact(true).ok());
  EXPECT_EQ(store->GetStats().segments, 1);
  EXPECT_EQ(store->GetStats().blocks, 2) << "the hidden block is gone from the merged segment";
  EXPECT_EQ(totals().rows, 201);
  EXPECT_DOUBLE_EQ(totals().temperature_sum, sum);

  // And once more after the merge, the merged block taking the place of the first.
  AddSeries(store.get(), 1, 1, kT0, 100);
  ASSERT_TRUE(store->Flush({3}).ok());
  store.reset();
  store = Open();
  EXPECT_EQ(totals().rows, 201);
  EXPECT_DOUBLE_EQ(totals().temperature_sum, sum - 10 + 100);
}

// A bulk load's column buffers (Batch::AddRows) follow the store's rule as readings one at a
// time do: one reading per sensor and time, the later wins, whether the earlier one is in the
// memtable, on disk or earlier in the same buffer; a buffer newer than all is appended whole,
// columns the rows before lacked (and lacking theirs) padded as absent.
TEST_F(StoreTest, AddRowsKeepsOneReadingPerSensorAndTimeTheLaterWins) {
  auto store = Open();
  const uint32_t temperature = store->schema().Intern("temperature", FieldType::kNumber);
  const uint32_t status = store->schema().Intern("status", FieldType::kText);
  // Rows of (second from kT0, temperature), with a status text when with_status.
  auto chunk = [&](uint32_t sensor, std::vector<std::pair<int, double>> rows, bool with_status = false) {
    RowBuffer b(sensor);
    for (auto [second, value] : rows) {
      b.AddRow(kT0 + second * kSecond);  // no Find: a time twice makes two rows, in this order
      if (value >= 0) b.SetNumber(temperature, value);
      if (with_status) b.SetText(status, "ok");
    }
    return b;
  };
  auto totals = [&] { return Count(*store->GetSnapshot({}), temperature, status); };
  auto replaced = [&] { return registry_.Find(store_metrics::kReadingsReplaced).value_or(-1); };

  store->Write([&](Store::Batch& b) {
    b.AddRows(chunk(1, {{0, 1}, {1, 2}, {2, 3}}));          // taken whole
    b.AddRows(chunk(1, {{3, -1}, {4, -1}}, true));          // appended: status alone
    b.AddRows(chunk(1, {{5, 4}}, true));                    // both
  });
  EXPECT_EQ(totals().rows, 6);
  EXPECT_DOUBLE_EQ(totals().temperature_sum, 10);
  EXPECT_EQ(totals().texts, 3);
  EXPECT_EQ(replaced(), 0);

  // Times the memtable holds, and one twice inside the buffer: row by row, the later wins.
  store->Write([&](Store::Batch& b) { b.AddRows(chunk(1, {{5, 50}, {6, 60}, {6, 70}})); });
  EXPECT_EQ(totals().rows, 7);
  EXPECT_DOUBLE_EQ(totals().temperature_sum, 1 + 2 + 3 + 50 + 70);
  EXPECT_EQ(totals().texts, 2) << "second 5's replacement has no status: replaced whole";
  EXPECT_EQ(replaced(), 2);

  // Once on disk: a buffer repeating a stored time brings the block back and replaces the row.
  ASSERT_TRUE(store->Flush({1}).ok());
  store->Write([&](Store::Batch& b) { b.AddRows(chunk(1, {{0, 100}, {7, 7}})); });
  EXPECT_EQ(totals().rows, 8);
  EXPECT_DOUBLE_EQ(totals().temperature_sum, 100 + 2 + 3 + 50 + 70 + 7);
  EXPECT_EQ(replaced(), 3);
  EXPECT_EQ(registry_.Find(store_metrics::kBlocksReopened).value_or(-1), 1);

  // A buffer across an hour's end goes to each hour's buffer; rows its builder replaced count.
  store->Write([&](Store::Batch& b) {
    b.AddRows(chunk(2, {{3599, 1}, {3600, 2}}));
    b.AddRows(chunk(3, {{0, 1}}), 2);
  });
  EXPECT_EQ(replaced(), 5);
  ASSERT_TRUE(store->Flush({2}).ok());
  EXPECT_EQ(store->GetStats().blocks, 4) << "sensor 1, sensor 2's two hours, sensor 3";

  const double sum = 100 + 2 + 3 + 50 + 70 + 7 + 1 + 2 + 1;
  store.reset();
  store = Open();
  EXPECT_EQ(totals().rows, 11);
  EXPECT_DOUBLE_EQ(totals().temperature_sum, sum);
  ASSERT_TRUE(store->Compact(true).ok());
  EXPECT_EQ(totals().rows, 11);
  EXPECT_DOUBLE_EQ(totals().temperature_sum, sum);
  EXPECT_EQ(totals().texts, 2);
}

// A block whose replacement is only in the memtable stays on disk through a merge: a crash
// then must find the block's other readings, since the log will not send them again.
TEST_F(StoreTest, AMergeKeepsABlockWhoseReplacementIsNotYetFlushed) {
  auto store = Open();
  AddSeries(store.get(), 1, 100, kT0, 0);
  ASSERT_TRUE(store->Flush({1}).ok());
  AddSeries(store.get(), 1, 100, kT0 + 100 * kSecond, 0);
  ASSERT_TRUE(store->Flush({2}).ok());
  AddSeries(store.get(), 1, 1, kT0 + 50 * kSecond, 7);  // replaces a reading of the first block
  ASSERT_TRUE(store->Compact(true).ok());
  uint32_t temperature = Temperature(store.get());
  EXPECT_EQ(Count(*store->GetSnapshot({}), temperature, 999).rows, 200);
  store.reset();  // a crash: the memtable is lost (the log would replay the new reading)
  store = Open();
  auto totals = Count(*store->GetSnapshot({}), Temperature(store.get()), 999);
  EXPECT_EQ(totals.rows, 200);
  EXPECT_DOUBLE_EQ(totals.temperature_sum, 2 * SeriesSum(100, 0)) << "the first block's readings, as they were";
}

TEST_F(StoreTest, ANewerSegmentFormatIsRefusedWithAClearError) {
  {
    auto store = Open();
    Add(store.get(), 1, 10, kT0);
    ASSERT_TRUE(store->Flush({1}).ok());
  }
  std::string path = Files(".seg")[0];
  std::string file = ReadFile(path);
  file.back() = '4';
  WriteFile(path, file);
  StoreOptions options;
  options.dir = scratch_.path();
  auto store = Store::Open(options, &registry_);
  ASSERT_FALSE(store.ok());
  EXPECT_NE(store.status().message().find("format version 4 is newer than this mare reads"), std::string::npos)
      << store.status().ToString();
}

TEST_F(StoreTest, AFlushCutShortLeavesNoSegment) {
  {
    auto store = Open();
    Add(store.get(), 1, 10, kT0);
    ASSERT_TRUE(store->Flush({1}).ok());
  }
  // What a crash in the middle of writing a flush leaves: a temporary file, never renamed.
  std::string seg = Files(".seg")[0];
  WriteFile(scratch_.path() + "/00000000000000000099.seg.tmp", ReadFile(seg).substr(0, 100));
  auto store = Open();
  EXPECT_TRUE(Files(".tmp").empty());
  EXPECT_EQ(store->GetStats().rows, 10);
  EXPECT_EQ(store->raw_offsets(), std::vector<int64_t>{1});
}

}  // namespace
}  // namespace mare::store
