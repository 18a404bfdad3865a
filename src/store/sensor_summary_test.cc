// The sensor list's figures from the segments' resident sensor summaries (Store::Sensors) equal
// those of a walk over every visible block's index entry (scan=true, the sensor list as it was),
// through flushes, late readings, replaced readings, retention, merges, reopening and imports,
// and are found without loading a single block index.
#include <gtest/gtest.h>

#include <fstream>

#include <fmt/format.h>

#include "common/scratch_dir.h"
#include "store/import.h"
#include "store/store.h"
#include "store/store_metrics.h"

namespace mare::store {
namespace sensor_summary_test {  // named: the tests are built as one unit (CMake's unity build)

constexpr int64_t kT0 = 1'704'067'200'000'000;  // 2024-01-01T00:00:00Z
constexpr int64_t kSecond = 1'000'000;

std::string Describe(const SensorFigures& f) {
  return fmt::format("sensor {}: {}..{} rows {} position {} {},{} at {} fields {}", f.stats.sensor_id, f.stats.first_ts, f.stats.last_ts,
                     f.stats.rows, f.stats.has_position, f.stats.lat, f.stats.lon, f.stats.position_ts, fmt::join(f.fields, ","));
}

class SensorSummaryTest : public ::testing::Test {
 protected:
  ScratchDir scratch_{"mare-sensor-summary-test"};
  metrics::Registry registry_;

  std::unique_ptr<Store> Open(StoreOptions options = {}) {
    options.dir = scratch_.path() + "/store";
    options.compaction_thread = false;
    options.index_cache_bytes = 1;  // keeps no index: each one used is a miss
    auto store = Store::Open(options, &registry_);
    EXPECT_TRUE(store.ok()) << store.status().ToString();
    return store.ok() ? std::move(*store) : nullptr;
  }

  // The summaries' answer, which must load no index, equal to the scan's; returned.
  static std::vector<SensorFigures> Check(const Store& store, bool may_read_index = false) {
    const bool any_segment = store.GetStats().segments > 0;
    uint64_t misses = store.index_cache().misses();
    std::vector<SensorFigures> fast = store.Sensors();
    if (!may_read_index) {
      EXPECT_EQ(store.index_cache().misses(), misses) << "the sensor list read a block index";
    }
    uint64_t before_scan = store.index_cache().misses();
    std::vector<SensorFigures> scan = store.Sensors(true);
    if (any_segment) {
      EXPECT_GT(store.index_cache().misses(), before_scan) << "the scan reads the indexes (else this test proves nothing)";
    }
    EXPECT_EQ(fast.size(), scan.size());
    for (size_t i = 0; i < std::min(fast.size(), scan.size()); ++i) EXPECT_EQ(Describe(fast[i]), Describe(scan[i]));
    return fast;
  }

  static const SensorFigures& Of(const std::vector<SensorFigures>& all, uint32_t sensor) {
    for (const auto& f : all) {
      if (f.stats.sensor_id == sensor) return f;
    }
    static const SensorFigures none;
    ADD_FAILURE() << "no sensor " << sensor;
    return none;
  }

  // One reading a minute for `minutes` from start, sensors 1..sensors; sensor s has a location
  // (lat = s + minute/1000) unless no_location, and "wave" on even sensors.
  static void Add(Store* store, int sensors, int minutes, int64_t start, double value = 1, bool no_location = false) {
    store->Write([&](Store::Batch& b) {
      for (int m = 0; m < minutes; ++m) {
        for (int s = 1; s <= sensors; ++s) {
          Reading r;
          r.timestamp_us = start + m * 60 * kSecond;
          r.sensor_id = static_cast<uint32_t>(s);
          if (!no_location) {
            r.has_location = true;
            r.lat = s + m / 1000.0;
            r.lon = -s;
          }
          r.numbers.push_back({"temperature", value});
          if (s % 2 == 0) r.numbers.push_back({"wave", value});
          b.Add(r);
        }
      }
    });
  }

  uint32_t Field(Store* s, const char* name) { return *s->schema().Find(name, FieldType::kNumber); }
};

TEST_F(SensorSummaryTest, FlushesAndTheMemtableGiveTheScansFigures) {
  auto store = Open();
  Add(store.get(), 5, 150, kT0);  // two and a half hours
  auto before = Check(*store);    // the memtable only
  ASSERT_EQ(before.size(), 5u);
  ASSERT_TRUE(store->Flush({1}).ok());
  Add(store.get(), 5, 90, kT0 + 150 * 60 * kSecond);
  ASSERT_TRUE(store->Flush({2}).ok());
  Add(store.get(), 7, 10, kT0 + 240 * 60 * kSecond, 2);  // two new sensors, in the memtable
  // A late reading without a location for sensor 3, an hour back: its position stays the newest.
  Add(store.get(), 3, 1, kT0 + 30 * 60 * kSecond + kSecond, 3, true);
  auto all = Check(*store);
  ASSERT_EQ(all.size(), 7u);
  const SensorFigures& s2 = Of(all, 2);
  EXPECT_EQ(s2.stats.rows, 251);
  EXPECT_EQ(s2.stats.first_ts, kT0);
  EXPECT_EQ(s2.stats.last_ts, kT0 + 249 * 60 * kSecond);
  EXPECT_TRUE(s2.stats.has_position);
  EXPECT_DOUBLE_EQ(s2.stats.lat, 2 + 9 / 1000.0);
  EXPECT_EQ(s2.stats.position_ts, kT0 + 249 * 60 * kSecond);
  EXPECT_EQ(s2.fields.size(), 4u) << "lat, lon, temperature, wave";
  EXPECT_EQ(Of(all, 1).fields.size(), 3u);
  EXPECT_EQ(Of(all, 3).stats.rows, 251);
  EXPECT_EQ(Of(all, 7).stats.rows, 10);

  ASSERT_TRUE(store->Flush({3}).ok());
  Check(*store);
  ASSERT_TRUE(store->Compact(true).ok());
  EXPECT_EQ(Describe(Of(Check(*store), 2)), Describe(s2));
  EXPECT_GT(store->GetStats().sensor_summary_bytes, 0);
}

// Later wins: a reading of a sensor and time already stored hides its block; the figures count
// it once, and lose a field or the location if the replacement lacks them.
TEST_F(SensorSummaryTest, ReplacedReadingsCountOnceAndTheirLossesShow) {
  auto store = Open();
  Add(store.get(), 4, 60, kT0);  // hour 0
  ASSERT_TRUE(store->Flush({1}).ok());
  Add(store.get(), 4, 30, kT0 + kHourMicros);  // hour 1
  ASSERT_TRUE(store->Flush({2}).ok());
  // Sensor 2's hour 1, every reading again without location or wave (from a sensor 1 shaped run).
  store->Write([&](Store::Batch& b) {
    for (int m = 0; m < 30; ++m) {
      Reading r;
      r.timestamp_us = kT0 + kHourMicros + m * 60 * kSecond;
      r.sensor_id = 2;
      r.numbers.push_back({"temperature", 9});
      b.Add(r);
    }
  });
  EXPECT_EQ(registry_.Find(store_metrics::kBlocksReopened).value_or(-1), 1);
  auto all = Check(*store);
  EXPECT_EQ(Of(all, 2).stats.rows, 90) << "each reading once";
  EXPECT_EQ(Of(all, 2).stats.position_ts, kT0 + 59 * 60 * kSecond) << "hour 1's readings have no location now";
  EXPECT_EQ(Of(all, 2).fields.size(), 4u) << "hour 0 still has wave";
  ASSERT_TRUE(store->Flush({3}).ok());
  Check(*store);

  // Sensor 4 entirely again, without wave: both blocks hidden, the field gone.
  store->Write([&](Store::Batch& b) {
    for (int m = 0; m < 90; ++m) {
      Reading r;
      r.timestamp_us = kT0 + m * 60 * kSecond;
      r.sensor_id = 4;
      r.has_location = true;
      r.lat = 1;
      r.lon = 2;
      r.numbers.push_back({"temperature", 9});
      b.Add(r);
    }
  });
  all = Check(*store);
  EXPECT_EQ(Of(all, 4).stats.rows, 90);
  EXPECT_DOUBLE_EQ(Of(all, 4).stats.lat, 1);
  ASSERT_TRUE(store->Flush({4}).ok());
  auto flushed = Check(*store);
  EXPECT_EQ(Of(flushed, 4).fields.size(), 3u) << "no wave any more, once written (the memtable keeps an emptied column)";

  store.reset();  // the hides are on disk: the reopened store works them out again
  store = Open();
  EXPECT_EQ(Check(*store).size(), flushed.size());
  for (uint32_t s = 1; s <= 4; ++s) EXPECT_EQ(Describe(Of(Check(*store), s)), Describe(Of(flushed, s)));
  ASSERT_TRUE(store->Compact(true).ok());
  for (uint32_t s = 1; s <= 4; ++s) EXPECT_EQ(Describe(Of(Check(*store), s)), Describe(Of(flushed, s)));
}

// Among many sensors, a replaced sensor's figures are found by binary search per hour (the
// few-sensors tests above take the walk over the whole segment).
TEST_F(SensorSummaryTest, AReplacedSensorAmongManyIsFoundByHour) {
  auto store = Open();
  Add(store.get(), 300, 180, kT0);  // 300 sensors, three hours: 900 blocks
  ASSERT_TRUE(store->Flush({1}).ok());
  store->Write([&](Store::Batch& b) {  // sensor 150's middle hour again, without location or wave
    for (int m = 60; m < 120; ++m) {
      Reading r;
      r.timestamp_us = kT0 + m * 60 * kSecond;
      r.sensor_id = 150;
      r.numbers.push_back({"temperature", 4});
      b.Add(r);
    }
    Reading r;  // and one reading of sensor 151 in the last hour, with another location
    r.timestamp_us = kT0 + 179 * 60 * kSecond;
    r.sensor_id = 151;
    r.has_location = true;
    r.lat = 5;
    r.lon = 6;
    b.Add(r);
  });
  auto all = Check(*store);
  EXPECT_EQ(Of(all, 150).stats.rows, 180);
  EXPECT_EQ(Of(all, 151).stats.rows, 180);
  EXPECT_DOUBLE_EQ(Of(all, 151).stats.lat, 5);
  ASSERT_TRUE(store->Flush({2}).ok());
  all = Check(*store);
  EXPECT_EQ(Of(all, 150).stats.rows, 180);
  EXPECT_EQ(Of(all, 150).fields.size(), 4u) << "wave still in hours 0 and 2";
  EXPECT_DOUBLE_EQ(Of(all, 151).stats.lat, 5);
  store.reset();
  store = Open();
  EXPECT_EQ(Describe(Of(Check(*store), 150)), Describe(Of(all, 150)));
}

TEST_F(SensorSummaryTest, RetentionDropsPastHoursFromTheFigures) {
  auto store = Open({.retention_us = 24 * kHourMicros});
  Add(store.get(), 3, 3 * 24 * 60, kT0);  // three days, a reading a minute
  ASSERT_TRUE(store->Flush({1}).ok());
  // A replaced reading in hour 12 (later wins), so that a view with hidden blocks is cut too.
  Add(store.get(), 1, 1, kT0 + 12 * kHourMicros, 5);
  ASSERT_TRUE(store->Flush({2}).ok());
  Check(*store);

  // Ten hours past: a view of the file, with its own summary.
  ASSERT_TRUE(store->ApplyRetention(kT0 + 34 * kHourMicros + 5 * kSecond).ok());
  auto all = Check(*store);
  EXPECT_EQ(Of(all, 1).stats.first_ts, kT0 + 10 * kHourMicros);
  EXPECT_EQ(Of(all, 1).stats.rows, 3 * 1440 - 600);
  // Fourteen hours more: past the replaced reading's hour too.
  ASSERT_TRUE(store->ApplyRetention(kT0 + 48 * kHourMicros + 5 * kSecond).ok());
  all = Check(*store);
  EXPECT_EQ(Of(all, 1).stats.first_ts, kT0 + 24 * kHourMicros);
  EXPECT_EQ(Of(all, 3).stats.rows, 2 * 1440);

  // Late readings for hours already past, flushed before retention runs again: the segment
  // holds hours queries do not see, and the sensor list reads its index (until the next pass).
  Add(store.get(), 9, 2, kT0, 7);
  ASSERT_TRUE(store->Flush({3}).ok());
  all = Check(*store, /*may_read_index=*/true);
  EXPECT_EQ(all.size(), 3u) << "sensors 4 to 9 have only past readings";
  ASSERT_TRUE(store->ApplyRetention(kT0 + 48 * kHourMicros + 5 * kSecond).ok());
  EXPECT_EQ(Check(*store).size(), 3u);

  ASSERT_TRUE(store->ApplyRetention(kT0 + 100 * kHourMicros).ok());
  EXPECT_TRUE(Check(*store, true).empty());
}

TEST_F(SensorSummaryTest, ADuplicateImportCountsEachReadingOnceTheLaterWins) {
  std::string csv = scratch_.path() + "/readings.csv";
  auto write = [&](double temperature, bool with_wave) {
    std::ofstream out(csv);
    out << "ts,sensor_id,temperature" << (with_wave ? ",wave" : "") << ",lat,lon\n";
    for (int m = 0; m < 6 * 60; ++m) {  // six hours, 20 sensors, a reading a minute
      for (int s = 1; s <= 20; ++s) {
        out << fmt::format("2024-03-01 {:02d}:{:02d}:00,{},{}", m / 60, m % 60, s, temperature);
        if (with_wave) out << ",1.5";
        out << fmt::format(",{},{}\n", 40 + s + m / 1000.0, temperature);
      }
    }
  };
  auto store = Open();
  ImportReport report;
  write(1, true);
  ASSERT_TRUE(ImportCsv(csv, store.get(), {.flush_rows = 1000}, &report, nullptr).ok());
  auto first = Check(*store);
  ASSERT_EQ(first.size(), 20u);
  EXPECT_EQ(Of(first, 5).stats.rows, 360);
  write(2, false);  // the same readings again, without wave and another longitude
  report = {};
  ASSERT_TRUE(ImportCsv(csv, store.get(), {.flush_rows = 1000}, &report, nullptr).ok());
  auto again = Check(*store);
  ASSERT_EQ(again.size(), 20u);
  EXPECT_EQ(Of(again, 5).stats.rows, 360) << "each reading once";
  EXPECT_DOUBLE_EQ(Of(again, 5).stats.lon, 2) << "the later import's";
  EXPECT_EQ(Of(again, 5).fields.size(), 3u) << "wave went with the readings it was in";
  ASSERT_TRUE(store->Compact(true).ok());
  EXPECT_EQ(Describe(Of(Check(*store), 5)), Describe(Of(again, 5)));
  store.reset();
  store = Open();
  EXPECT_EQ(Describe(Of(Check(*store), 5)), Describe(Of(again, 5)));
}

}  // namespace sensor_summary_test
}  // namespace mare::store
