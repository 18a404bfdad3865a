// The executor beyond the logic tests: answers do not depend on the number of threads or on
// whether blocks are taken from statistics, and values print as documented.
#include <gtest/gtest.h>

#include <charconv>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>

#include "common/metrics.h"
#include "common/scratch_dir.h"
#include "common/time.h"
#include "query/executor.h"
#include "query/format.h"

namespace mare::query {
namespace {

constexpr int64_t kT0 = 1'704'067'200'000'000;  // 2024-01-01T00:00:00Z

class ExecutorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto s = store::Store::Open({.dir = dir_.path(), .compaction_thread = false}, &registry_);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    store_ = std::move(*s);
    // 40 sensors, one reading every 2 s for 6 hours (432,000 readings): most flushed and
    // merged, the last hour left in the memtable.
    std::mt19937_64 rng(42);
    for (int hour = 0; hour < 6; ++hour) {
      store_->Write([&](store::Store::Batch& b) {
        for (int i = 0; i < 1800; ++i) {
          for (uint32_t sensor = 1; sensor <= 40; ++sensor) {
            Reading r;
            r.timestamp_us = kT0 + (hour * 3600 + i * 2) * 1'000'000LL + sensor * 1000;
            r.sensor_id = sensor;
            double t = std::round((15 + 5 * std::sin(i / 300.0 + sensor) + (rng() % 100) / 100.0) * 100) / 100;
            r.numbers.push_back({"temperature", t});
            if (i % 7 != 0) r.numbers.push_back({"humidity", 50 + (rng() % 5000) / 100.0});
            if (sensor % 5 == 0) r.texts.push_back({"status", i % 3 ? "ok" : "low, \"battery\"\n"});
            r.has_location = true;
            r.lat = 42.4 + sensor / 1000.0;
            r.lon = 3.1;
            b.Add(r);
          }
        }
      });
      if (hour < 5) {
        ASSERT_TRUE(store_->Flush({hour + 1}).ok());
      }
    }
    ASSERT_TRUE(store_->Compact(true).ok());
  }

  QueryResult Run(const std::string& sql, int threads) {
    QueryResult result;
    SqlError error;
    EXPECT_TRUE(RunQuery(*store_, sql, {.now_us = kT0, .threads = threads}, &result, &error)) << sql << ": " << error.ToString();
    return result;
  }

  ScratchDir dir_{"mare-executor-test"};
  metrics::Registry registry_;
  std::unique_ptr<store::Store> store_;
};

void ExpectSame(const QueryResult& a, const QueryResult& b, const std::string& sql) {
  ASSERT_EQ(a.rows.size(), b.rows.size()) << sql;
  for (size_t r = 0; r < a.rows.size(); ++r) {
    for (size_t c = 0; c < a.rows[r].size(); ++c) {
      const Value& x = a.rows[r][c];
      const Value& y = b.rows[r][c];
      ASSERT_EQ(x.null, y.null) << sql;
      if (x.type == Type::kDouble) {
        EXPECT_NEAR(x.d, y.d, 1e-9 * std::max(1.0, std::fabs(x.d))) << sql << " row " << r << " column " << c;
      } else {
        EXPECT_EQ(FormatValue(x), FormatValue(y)) << sql << " row " << r << " column " << c;
      }
    }
  }
}

TEST_F(ExecutorTest, TwoThreadsGiveTheSameAnswersAsOne) {
  for (const char* sql : {
           "SELECT time_bucket('1h', ts) AS h, sensor_id, min(temperature), max(temperature), avg(temperature), count(*), "
           "stddev(temperature), first(humidity), last(humidity) FROM readings GROUP BY h, sensor_id ORDER BY h, sensor_id",
           "SELECT count(*), avg(humidity), sum(temperature), stddev_pop(humidity) FROM readings WHERE temperature > 19",
           "SELECT time_bucket('7m', ts) AS b, count(humidity), max(humidity) FROM readings WHERE ts > '2024-01-01 00:30:01' GROUP BY b",
           "SELECT sensor_id, first(temperature), last(temperature) FROM readings WHERE humidity < 60 GROUP BY sensor_id",
       }) {
    QueryResult one = Run(sql, 1);
    QueryResult two = Run(sql, 2);
    ExpectSame(one, two, sql);
    EXPECT_GT(one.rows.size(), 0u) << sql;
  }
}

TEST_F(ExecutorTest, WholeBlocksComeFromStatisticsAndGiveTheSameAnswers) {
  // An hourly rollup takes every flushed block from its statistics; the same rollup with a
  // condition that holds for every row but that statistics cannot decide decodes them all.
  std::string from_stats = "SELECT time_bucket('1h', ts) AS h, sensor_id, min(temperature), max(temperature), avg(temperature), "
                           "stddev(temperature), count(*), first(temperature), last(humidity) FROM readings GROUP BY h, sensor_id";
  std::string decoded = from_stats;
  decoded.replace(decoded.find(" GROUP BY"), 0, " WHERE abs(temperature) >= 0");
  QueryResult a = Run(from_stats, 1);
  QueryResult b = Run(decoded, 1);
  EXPECT_EQ(a.stats.blocks_from_stats, 5 * 40);
  EXPECT_EQ(a.stats.blocks_decoded, 0);
  EXPECT_EQ(a.stats.memtable_rows, 40 * 1800);
  EXPECT_EQ(b.stats.blocks_from_stats, 0);
  EXPECT_EQ(b.stats.blocks_decoded, 5 * 40);
  ExpectSame(a, b, from_stats);
}

TEST_F(ExecutorTest, LatestComesFromStatisticsWithoutDecoding) {
  QueryResult r = Run("SELECT sensor_id, ts, temperature FROM readings WHERE ts < '2024-01-01 05:00' LATEST ON ts PARTITION BY sensor_id", 1);
  ASSERT_EQ(r.rows.size(), 40u);
  EXPECT_EQ(r.stats.blocks_decoded, 0);
  EXPECT_EQ(FormatValue(r.rows[0][1]), "2024-01-01T04:59:58.001000Z");
}

TEST_F(ExecutorTest, BothFormsOfAResultWriteTheSameText) {
  // The API writes from the columns; `mare query` and the dashboard from rows of values.
  for (const char* sql : {
           "SELECT * FROM readings WHERE sensor_id IN (5, 7) AND ts < '2024-01-01 00:10' ORDER BY ts",
           "SELECT sensor_id, first(status), last(status), count(status), min(temperature), max(temperature), avg(humidity), "
           "stddev(humidity), count(*) FROM readings GROUP BY sensor_id ORDER BY sensor_id",
           "SELECT ts, humidity, humidity IS NULL, ts - TIMESTAMP '2024-01-01', epoch(ts), NULL AS nothing, 'a,b' AS text "
           "FROM readings WHERE sensor_id = 5 AND ts < '2024-01-01 00:01'",
           "SELECT time_bucket('10m', ts) AS b, status, count(*) FROM readings WHERE sensor_id < 20 GROUP BY b, status "
           "ORDER BY b DESC, status LIMIT 7 OFFSET 2",
           "SELECT * FROM readings LATEST ON ts PARTITION BY sensor_id",
           // A time bucket below the smallest int64's hour saturates to it, which the writer's
           // floor division negated (fuzz_sql; UBSan in the sanitizer build says so here).
           "SELECT time_bucket('1h', TIMESTAMP '1970-01-01' - INTERVAL '106751991 days' - INTERVAL '4 hours' - "
           "INTERVAL '30 seconds') AS b, ts FROM readings LIMIT 3",
       }) {
    SqlError error;
    ResultTable table;
    ASSERT_TRUE(RunQuery(*store_, sql, {.now_us = kT0}, &table, &error)) << sql << ": " << error.ToString();
    QueryResult rows = Run(sql, 2);
    ASSERT_EQ(rows.rows.size(), table.rows) << sql;
    ASSERT_GT(table.rows, 0u) << sql;
    std::string a, b;
    WriteJson(table, 1, &a);
    WriteJson(rows, 1, &b);
    EXPECT_EQ(a, b) << sql;
    a.clear();
    b.clear();
    WriteCsv(table, &a);
    WriteCsv(rows, &b);
    EXPECT_EQ(a, b) << sql;
    a.clear();
    b.clear();
    WriteNdjson(table, &a);
    WriteNdjson(rows, &b);
    EXPECT_EQ(a, b) << sql;
  }
}

TEST_F(ExecutorTest, OrderByWithLimitKeepsTheFirstOfEqualRows) {
  // More rows than the top-k pruning keeps at once: ties keep their arrival order, as the
  // stable sort of a short answer does.
  QueryResult all = Run("SELECT sensor_id, ts FROM readings ORDER BY sensor_id", 1);
  QueryResult top = Run("SELECT sensor_id, ts FROM readings ORDER BY sensor_id LIMIT 50 OFFSET 10", 1);
  ASSERT_EQ(top.rows.size(), 50u);
  for (size_t r = 0; r < top.rows.size(); ++r) {
    EXPECT_EQ(top.rows[r][0].i, all.rows[r + 10][0].i);
    EXPECT_EQ(top.rows[r][1].i, all.rows[r + 10][1].i) << r;
  }
}

// The store with an index cache that keeps nothing (store.index_cache_bytes): every query reads
// the block indexes it needs from the segment files again, and answers as before. An index
// damaged after the store opened it is then the query's error, not a crash.
TEST_F(ExecutorTest, AnIndexCacheThatKeepsNothingGivesTheSameAnswers) {
  const std::vector<std::string> queries = {
      "SELECT count(*), sum(temperature), avg(humidity), min(temperature), max(temperature) FROM readings",
      "SELECT sensor_id, count(*), stddev(temperature), first(status), last(status) FROM readings GROUP BY sensor_id "
      "ORDER BY sensor_id",
      "SELECT * FROM readings LATEST ON ts PARTITION BY sensor_id",
      "SELECT sensor_id, ts, temperature FROM readings WHERE ts >= TIMESTAMP '2024-01-01T02:30:00Z' AND "
      "ts < TIMESTAMP '2024-01-01T03:10:00Z' AND sensor_id IN (3, 17) ORDER BY sensor_id, ts",
      "SELECT time_bucket('1h', ts) AS h, avg(temperature) FROM readings GROUP BY h ORDER BY h"};
  std::vector<QueryResult> want;
  for (const auto& sql : queries) want.push_back(Run(sql, 2));
  ASSERT_TRUE(store_->Flush({6}).ok());
  store_.reset();
  auto reopened = store::Store::Open({.dir = dir_.path(), .compaction_thread = false, .index_cache_bytes = 1}, &registry_);
  ASSERT_TRUE(reopened.ok()) << reopened.status().ToString();
  store_ = std::move(*reopened);
  EXPECT_EQ(store_->index_cache().bytes(), 0u);
  for (size_t i = 0; i < queries.size(); ++i) ExpectSame(Run(queries[i], 2), want[i], queries[i]);
  EXPECT_GE(store_->index_cache().misses(), queries.size());

  // One byte of the index of the hours 0-4 segment changed in place (the store holds it open).
  std::string damaged;
  for (const auto& e : std::filesystem::directory_iterator(dir_.path())) {
    if (e.path().extension() == ".seg" && (damaged.empty() || e.path().string() < damaged)) damaged = e.path();
  }
  ASSERT_FALSE(damaged.empty());
  {
    std::fstream f(damaged, std::ios::in | std::ios::out | std::ios::binary);
    f.seekg(-32 - 40, std::ios::end);
    char c = 0;
    f.get(c);
    f.seekp(-32 - 40, std::ios::end);
    f.put(static_cast<char>(c ^ 0x5a));
  }
  QueryResult result;
  SqlError error;
  EXPECT_FALSE(RunQuery(*store_, queries[0], {.now_us = kT0}, &result, &error));
  EXPECT_EQ(error.kind, SqlError::Kind::kStore);
  EXPECT_NE(error.message.find("checksum"), std::string::npos) << error.message;
  EXPECT_NE(error.message.find(damaged), std::string::npos) << error.message;
}

TEST(Format, TimestampsPrintAsIso8601Utc) {
  std::mt19937_64 rng(3);
  for (int i = 0; i < 100000; ++i) {
    int64_t us = static_cast<int64_t>(rng() % 8'000'000'000'000'000ULL) - 2'000'000'000'000'000LL;
    if (i % 2) us -= us % 1'000'000;
    std::string want = FormatTimestamp(us);  // always six fraction digits
    if (us % 1'000'000 == 0) want.replace(want.size() - 8, 8, "Z");
    ASSERT_EQ(FormatValue(Value::Int(Type::kTimestamp, us)), want) << us;
  }
  EXPECT_EQ(FormatValue(Value::Int(Type::kTimestamp, 0)), "1970-01-01T00:00:00Z");
  EXPECT_EQ(FormatValue(Value::Int(Type::kTimestamp, -1)), "1969-12-31T23:59:59.999999Z");
  EXPECT_EQ(FormatValue(Value::Int(Type::kTimestamp, 951'782'400'000'000)), "2000-02-29T00:00:00Z");
}

}  // namespace
}  // namespace mare::query
