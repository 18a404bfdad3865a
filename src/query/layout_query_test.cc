// SQL answers do not depend on how the store laid its readings out: the same readings kept in
// the memtable only, flushed once as one segment over thousands of hours, flushed an hour at a
// time and compacted (days merged, small ones packed), or partly past retention, answer every
// query alike. The memtable, which knows no segments, is the reference.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>

#include "common/metrics.h"
#include "common/scratch_dir.h"
#include "query/executor.h"
#include "query/format.h"
#include "store/store.h"

namespace mare::store {
namespace {

constexpr int64_t kT0 = 1'704'067'200'000'000;  // 2024-01-01T00:00:00Z
constexpr int64_t kSecond = 1'000'000;
constexpr int kHours = 2000;

// Three sensors over 2,000 hours: sensor 1 every 20 minutes, sensor 2 at minute 50 of each
// hour (an NDBC station), sensor 3 a burst of a reading a second in some hours only; some
// hours are missing; equal timestamps across sensors.
void AddReadings(Store* store, int from_hour, int to_hour) {
  store->Write([&](Store::Batch& b) {
    for (int h = from_hour; h < to_hour; ++h) {
      if (h % 97 == 13) continue;  // a gap in the record
      int64_t hour = kT0 + h * kHourMicros;
      auto add = [&](uint32_t sensor, int64_t ts, double t) {
        Reading r;
        r.timestamp_us = ts;
        r.sensor_id = sensor;
        r.numbers.push_back({"temperature", std::round(t * 100) / 100});
        if (h % 5 != 0) r.numbers.push_back({"wave_height", (h % 17) / 4.0});
        if (sensor == 2) r.texts.push_back({"station", h % 3 ? "44005" : "44005b"});
        r.has_location = true;
        r.lat = 43.2 + sensor / 100.0;
        r.lon = -69.13;
        b.Add(r);
      };
      for (int m = 0; m < 60; m += 20) add(1, hour + m * 60 * kSecond, 10 + 5 * std::sin(h / 24.0) + m / 100.0);
      add(2, hour + 50 * 60 * kSecond, 8 + (h % 29) / 7.0);
      if (h % 50 < 3) {
        for (int s = 0; s < 600; ++s) add(3, hour + (600 + s) * kSecond, 12 + (s % 13) / 10.0);
      }
    }
  });
}

// Late readings of a fourth sensor in hours long past, as a station's backlog arrives.
void AddLate(Store* store) {
  store->Write([&](Store::Batch& b) {
    for (int h = 5; h < kHours; h += 211) {
      Reading r;
      r.timestamp_us = kT0 + h * kHourMicros + 7 * kSecond;
      r.sensor_id = 4;
      r.numbers.push_back({"temperature", h / 100.0});
      b.Add(r);
    }
  });
}

class LayoutQueryTest : public ::testing::Test {
 protected:
  std::unique_ptr<Store> Open(const std::string& name, StoreOptions options = {}) {
    options.dir = scratch_.path() + "/" + name;
    options.compaction_thread = false;
    auto store = Store::Open(options, &registry_);
    EXPECT_TRUE(store.ok()) << store.status().ToString();
    return store.ok() ? std::move(*store) : nullptr;
  }

  size_t SegmentFiles(const std::string& name) {
    size_t n = 0;
    for (const auto& e : std::filesystem::directory_iterator(scratch_.path() + "/" + name)) n += e.path().extension() == ".seg";
    return n;
  }

  static query::QueryResult Run(Store& store, const std::string& sql) {
    query::QueryResult result;
    query::SqlError error;
    EXPECT_TRUE(query::RunQuery(store, sql, {.now_us = kT0}, &result, &error)) << sql << ": " << error.ToString();
    return result;
  }

  static void ExpectSame(const query::QueryResult& want, const query::QueryResult& got, const std::string& sql, const std::string& layout) {
    ASSERT_EQ(want.rows.size(), got.rows.size()) << layout << ": " << sql;
    for (size_t r = 0; r < want.rows.size(); ++r) {
      for (size_t c = 0; c < want.rows[r].size(); ++c) {
        const query::Value& x = want.rows[r][c];
        const query::Value& y = got.rows[r][c];
        ASSERT_EQ(x.null, y.null) << layout << ": " << sql;
        if (x.type == query::Type::kDouble) {
          ASSERT_NEAR(x.d, y.d, 1e-9 * std::max(1.0, std::fabs(x.d))) << layout << ": " << sql << " row " << r << " column " << c;
        } else {
          ASSERT_EQ(query::FormatValue(x), query::FormatValue(y)) << layout << ": " << sql << " row " << r << " column " << c;
        }
      }
    }
  }

  ScratchDir scratch_{"mare-layout-query-test"};
  metrics::Registry registry_;
};

const char* const kQueries[] = {
    "SELECT count(*), count(wave_height), min(temperature), max(temperature), avg(temperature), stddev(temperature) FROM readings",
    "SELECT sensor_id, count(*), sum(temperature), first(temperature), last(temperature), first(station), last(station) "
    "FROM readings GROUP BY sensor_id ORDER BY sensor_id",
    // Within one hour, one day, and across midnight and several days.
    "SELECT * FROM readings WHERE ts >= '2024-02-10 05:00' AND ts < '2024-02-10 06:00' ORDER BY ts, sensor_id",
    "SELECT sensor_id, count(*), avg(temperature), max(wave_height) FROM readings "
    "WHERE ts >= '2024-02-10' AND ts < '2024-02-11' GROUP BY sensor_id ORDER BY sensor_id",
    "SELECT * FROM readings WHERE ts BETWEEN '2024-02-10 22:30' AND '2024-02-11 01:59:59' ORDER BY ts, sensor_id",
    "SELECT time_bucket('1h', ts) AS h, sensor_id, min(temperature), max(temperature), avg(temperature), count(*) "
    "FROM readings WHERE ts > '2024-01-20 07:13' AND ts < '2024-01-23 16:40' GROUP BY h, sensor_id ORDER BY h, sensor_id",
    "SELECT time_bucket('1d', ts) AS d, count(*), avg(temperature), first(temperature), last(temperature) "
    "FROM readings GROUP BY d ORDER BY d",
    "SELECT time_bucket('1h', ts) AS h, sensor_id, count(*), avg(temperature) FROM readings GROUP BY h, sensor_id ORDER BY h, sensor_id",
    // Per sensor.
    "SELECT time_bucket('1d', ts) AS d, count(*), min(temperature), max(temperature) FROM readings "
    "WHERE sensor_id = 2 GROUP BY d ORDER BY d",
    "SELECT ts, temperature, station FROM readings WHERE sensor_id = 2 AND ts >= '2024-03-01' AND ts < '2024-03-03' ORDER BY ts",
    "SELECT ts, temperature FROM readings WHERE sensor_id = 3 ORDER BY ts DESC LIMIT 50",
    "SELECT count(*), avg(temperature) FROM readings WHERE sensor_id = 1 AND temperature > 12.5",
    // Latest.
    "SELECT * FROM readings LATEST ON ts PARTITION BY sensor_id",
    "SELECT sensor_id, ts, temperature FROM readings WHERE ts < '2024-02-01 12:00' LATEST ON ts PARTITION BY sensor_id",
    "SELECT sensor_id, ts, temperature FROM readings WHERE temperature > 13 LATEST ON ts PARTITION BY sensor_id",
};

TEST_F(LayoutQueryTest, EveryLayoutAnswersLikeTheMemtable) {
  auto memtable = Open("memtable");
  AddReadings(memtable.get(), 0, kHours);
  AddLate(memtable.get());

  // One flush over all 2,000 hours: one file.
  auto wide = Open("wide");
  AddReadings(wide.get(), 0, kHours);
  AddLate(wide.get());
  ASSERT_TRUE(wide->Flush({1}).ok());
  EXPECT_EQ(SegmentFiles("wide"), 1u);

  // A flush every 25 hours, late readings in a flush of their own, then compaction.
  auto compacted = Open("compacted");
  for (int h = 0; h < kHours; h += 25) {
    AddReadings(compacted.get(), h, h + 25);
    ASSERT_TRUE(compacted->Flush({h + 1}).ok());
  }
  AddLate(compacted.get());
  ASSERT_TRUE(compacted->Flush({kHours + 1}).ok());
  EXPECT_EQ(SegmentFiles("compacted"), static_cast<size_t>(kHours / 25 + 1));
  ASSERT_TRUE(compacted->Compact(true).ok());
  EXPECT_LE(SegmentFiles("compacted"), 10u);

  // A big flush, part of the data still in the memtable, read after a restart.
  {
    auto store = Open("restarted");
    AddReadings(store.get(), 0, 1500);
    ASSERT_TRUE(store->Flush({1}).ok());
  }
  auto restarted = Open("restarted");
  AddReadings(restarted.get(), 1500, kHours);
  AddLate(restarted.get());

  for (const char* sql : kQueries) {
    query::QueryResult want = Run(*memtable, sql);
    EXPECT_GT(want.rows.size(), 0u) << sql;
    ExpectSame(want, Run(*wide, sql), sql, "one wide segment");
    ExpectSame(want, Run(*compacted, sql), sql, "compacted");
    ExpectSame(want, Run(*restarted, sql), sql, "restarted");
  }
}

TEST_F(LayoutQueryTest, RetentionHidesTheSameHoursInEveryLayout) {
  // Retention of 1,000 hours at hour 1,500.3: hours before 500 are past.
  int64_t now = kT0 + 1500 * kHourMicros + 1000 * kSecond;
  StoreOptions options{.retention_us = 1000 * kHourMicros};
  auto memtable = Open("memtable", options);
  AddReadings(memtable.get(), 0, kHours);
  auto wide = Open("wide", options);
  AddReadings(wide.get(), 0, kHours);
  ASSERT_TRUE(wide->Flush({1}).ok());
  auto compacted = Open("compacted", options);
  for (int h = 0; h < kHours; h += 100) {
    AddReadings(compacted.get(), h, h + 100);
    ASSERT_TRUE(compacted->Flush({h + 1}).ok());
  }
  ASSERT_TRUE(compacted->Compact(true).ok());
  // First a quarter of the hours past (files kept, their past hours hidden), then 60% of them
  // (files rewritten without them).
  for (int64_t later : {int64_t{0}, 700 * kHourMicros}) {
    auto a = memtable->ApplyRetention(now + later);
    auto b = wide->ApplyRetention(now + later);
    auto c = compacted->ApplyRetention(now + later);
    ASSERT_TRUE(a.ok() && b.ok() && c.ok());
    EXPECT_GT(*a, 0);
    EXPECT_EQ(*a, *b);
    EXPECT_EQ(*a, *c);
    for (const char* sql : kQueries) {
      query::QueryResult want = Run(*memtable, sql);
      ExpectSame(want, Run(*wide, sql), sql, "one wide segment");
      ExpectSame(want, Run(*compacted, sql), sql, "compacted");
    }
    query::QueryResult first = Run(*wide, "SELECT min(ts) FROM readings");
    ASSERT_EQ(first.rows.size(), 1u);
    EXPECT_EQ(query::FormatValue(first.rows[0][0]), later == 0 ? "2024-01-21T20:00:00Z" : "2024-02-20T00:00:00Z");
    EXPECT_EQ(wide->GetStats().rows, memtable->GetStats().memtable_rows);
  }
}

}  // namespace
}  // namespace mare::store
