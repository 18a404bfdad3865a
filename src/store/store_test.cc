#include "store/store.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "common/scratch_dir.h"

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

  uint32_t Temperature(Store* s) { return *s->schema().Find("temperature", FieldType::kNumber); }
};

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

TEST_F(StoreTest, EveryHourGetsItsOwnSegmentAndBlocksStayInTheirHour) {
  auto store = Open();
  Add(store.get(), 2, 2 * 3600, kT0 + 1800 * kSecond);  // 00:30 to 02:30: three hours
  ASSERT_TRUE(store->Flush({1}).ok());
  auto snap = store->GetSnapshot({});
  ASSERT_EQ(snap->segments.size(), 3u);
  for (const auto& seg : snap->segments) {
    for (const auto& b : seg->blocks()) {
      EXPECT_EQ(HourOf(b.min_ts), seg->info().hour);
      EXPECT_EQ(HourOf(b.max_ts), seg->info().hour);
    }
  }
  auto one_hour = store->GetSnapshot({.sensors = {2}, .min_ts = kT0 + 3600 * kSecond, .max_ts = kT0 + 7199 * kSecond});
  ASSERT_EQ(one_hour->segments.size(), 1u);
}

TEST_F(StoreTest, LateAndOutOfOrderReadingsLandInTheirHour) {
  auto store = Open();
  Add(store.get(), 1, 10, kT0 + 3600 * kSecond);
  ASSERT_TRUE(store->Flush({1}).ok());
  Add(store.get(), 1, 5, kT0 + 20 * kSecond);            // an hour late
  Add(store.get(), 1, 5, kT0 + 3600 * kSecond + 500000);  // between flushed readings
  ASSERT_TRUE(store->Flush({2}).ok());
  ASSERT_TRUE(store->Compact(true).ok());
  auto snap = store->GetSnapshot({});
  ASSERT_EQ(snap->segments.size(), 2u);
  std::string bytes;
  std::vector<int64_t> ts;
  for (const auto& seg : snap->segments) {
    ASSERT_EQ(seg->blocks().size(), 1u);
    ASSERT_TRUE(seg->ReadBlock(0, &bytes).ok());
    ASSERT_TRUE(DecodeBlockTimestamps(seg->blocks()[0], bytes, &ts).ok());
    EXPECT_TRUE(std::is_sorted(ts.begin(), ts.end()));
    EXPECT_EQ(ts.size(), seg->info().hour == kT0 ? 5u : 15u);
  }
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

}  // namespace
}  // namespace mare::store
