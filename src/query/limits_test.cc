// What one statement may ask of the server (limits.h): huge OFFSET and LIMIT values, the
// timeout and the memory limit. Each reproduces a way a single request could take mare down.
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "common/metrics.h"
#include "common/scratch_dir.h"
#include "query/executor.h"
#include "query/format.h"
#include "query/query_gate.h"

namespace mare::query {
namespace {

constexpr int64_t kT0 = 1'704'067'200'000'000;  // 2024-01-01T00:00:00Z
constexpr int kSensors = 10;
constexpr int kPerSensor = 12'000;  // 120,000 readings: more than the top-k pruning keeps at once

class QueryLimitsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto s = store::Store::Open({.dir = dir_.path(), .compaction_thread = false}, &registry_);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    store_ = std::move(*s);
    // One reading a second per sensor: the first 3 hours flushed to segments, the rest in the
    // memtable.
    store_->Write([&](store::Store::Batch& b) {
      for (int i = 0; i < kPerSensor; ++i) {
        for (uint32_t sensor = 1; sensor <= kSensors; ++sensor) {
          Reading r;
          r.timestamp_us = kT0 + i * 1'000'000LL + sensor;
          r.sensor_id = sensor;
          r.numbers.push_back({"temperature", 10 + (i % 100) / 10.0});
          b.Add(r);
        }
      }
    });
    ASSERT_TRUE(store_->Flush({3}).ok());
  }

  bool Run(const std::string& sql, const QueryOptions& options, QueryResult* result, SqlError* error) {
    QueryOptions o = options;
    o.now_us = kT0;
    return RunQuery(*store_, sql, o, result, error);
  }

  QueryResult Ok(const std::string& sql, QueryOptions options = {}) {
    QueryResult result;
    SqlError error;
    EXPECT_TRUE(Run(sql, options, &result, &error)) << sql << ": " << error.ToString();
    return result;
  }

  SqlError Fails(const std::string& sql, QueryOptions options = {}) {
    QueryResult result;
    SqlError error;
    EXPECT_FALSE(Run(sql, options, &result, &error)) << sql;
    return error;
  }

  ScratchDir dir_{"mare-limits-test"};
  metrics::Registry registry_;
  std::unique_ptr<store::Store> store_;
};

constexpr int64_t kAll = int64_t{kSensors} * kPerSensor;

TEST_F(QueryLimitsTest, TheLargestOffsetGivesNoRowsInsteadOfAborting) {
  // OFFSET + LIMIT overflowed and the top-k pruning resized a vector to 2^63 rows
  // (std::length_error, uncaught: `mare query --offline` aborted).
  for (const char* sql : {
           "SELECT ts, temperature FROM readings LIMIT 5 OFFSET 9223372036854775807",
           "SELECT ts, temperature FROM readings ORDER BY ts DESC LIMIT 5 OFFSET 9223372036854775807",
           "SELECT ts FROM readings ORDER BY temperature LIMIT 9223372036854775807 OFFSET 9223372036854775807",
           "SELECT sensor_id, count(*) FROM readings GROUP BY sensor_id LIMIT 5 OFFSET 9223372036854775807",
           "SELECT * FROM readings LATEST ON ts PARTITION BY sensor_id LIMIT 1 OFFSET 9223372036854775807",
       }) {
    QueryResult r = Ok(sql);
    EXPECT_EQ(r.rows.size(), 0u) << sql;
  }
}

TEST_F(QueryLimitsTest, OffsetAndLimitPickTheSameRowsWithoutKeepingTheSkippedOnes) {
  QueryResult all = Ok("SELECT sensor_id, ts FROM readings");
  ASSERT_EQ(all.rows.size(), static_cast<size_t>(kAll));
  for (int64_t offset : {int64_t{0}, int64_t{1}, int64_t{11'999}, int64_t{12'000}, int64_t{70'001}, kAll - 2, kAll, kAll + 5}) {
    std::string sql = "SELECT sensor_id, ts FROM readings LIMIT 3 OFFSET " + std::to_string(offset);
    QueryResult r = Ok(sql);
    size_t want = static_cast<size_t>(std::max<int64_t>(0, std::min<int64_t>(3, kAll - offset)));
    ASSERT_EQ(r.rows.size(), want) << sql;
    for (size_t i = 0; i < r.rows.size(); ++i) {
      EXPECT_EQ(r.rows[i][1].i, all.rows[static_cast<size_t>(offset) + i][1].i) << sql;
    }
  }
  // Under ORDER BY the same rows as the full sort's.
  QueryResult sorted = Ok("SELECT ts FROM readings ORDER BY ts DESC");
  QueryResult top = Ok("SELECT ts FROM readings ORDER BY ts DESC LIMIT 4 OFFSET 100000");
  ASSERT_EQ(top.rows.size(), 4u);
  for (size_t i = 0; i < 4; ++i) EXPECT_EQ(top.rows[i][0].i, sorted.rows[100'000 + i][0].i);
}

TEST_F(QueryLimitsTest, AHugeLimitIsRefusedOnceTheAnswerPassesMaxRows) {
  for (const char* sql : {"SELECT ts FROM readings LIMIT 9223372036854775807",
                          "SELECT ts FROM readings ORDER BY ts LIMIT 9223372036854775807 OFFSET 10",
                          "SELECT ts FROM readings"}) {
    SqlError e = Fails(sql, {.max_rows = 1000});
    EXPECT_EQ(e.message, "the result has more than 1000 rows; add a LIMIT or narrow the WHERE clause") << sql;
    EXPECT_EQ(e.kind, SqlError::Kind::kLimit) << sql;
  }
  EXPECT_EQ(Ok("SELECT ts FROM readings LIMIT 9223372036854775807 OFFSET 119500", {.max_rows = 1000}).rows.size(), 500u);
}

TEST_F(QueryLimitsTest, AStatementPastItsTimeoutStopsWithAnErrorNamingTheSetting) {
  // Each block's rows go through a few hundred operators: far more than 1 ms in all.
  std::string sum = "temperature";
  for (int i = 0; i < 7; ++i) sum = "(" + sum + " + " + sum + ")";
  for (const std::string& sql : {"SELECT sum(" + sum + ") FROM readings",
                                 "SELECT ts, " + sum + " FROM readings",
                                 "SELECT sensor_id, ts, " + sum + " FROM readings ORDER BY ts",
                                 "SELECT time_bucket('1m', ts) AS m, sensor_id, max(" + sum + ") FROM readings GROUP BY m, sensor_id"}) {
    QueryOptions o;
    o.limits.timeout_us = 1000;
    SqlError e = Fails(sql, o);
    EXPECT_EQ(e.message, "query exceeded query.timeout (1ms); narrow the WHERE clause or the time range") << sql.substr(0, 60);
    EXPECT_EQ(e.kind, SqlError::Kind::kLimit);
    o.limits.timeout_us = 0;  // none
    Ok(sql, o);
    o.limits.timeout_us = 60'000'000;
    Ok(sql, o);
  }
}

TEST_F(QueryLimitsTest, AStatementPastItsMemoryStopsWithAnErrorNamingTheSetting) {
  const std::string message =
      "query exceeded query.max_memory (1 MiB): its groups, rows and sort buffers need more; narrow the WHERE clause, use fewer "
      "groups or add a LIMIT";
  for (const char* sql : {
           "SELECT ts, temperature FROM readings",                           // the answer's rows: ~2 MB
           "SELECT ts, temperature FROM readings ORDER BY temperature LIMIT 100000",  // rows kept for the sort
           "SELECT ts, count(*) FROM readings GROUP BY ts",                  // 120,000 groups
           "SELECT ts, count(*) FROM readings GROUP BY ts LIMIT 1",          // the groups, even for one row
       }) {
    for (int threads : {1, 2}) {
      QueryOptions o;
      o.threads = threads;
      o.limits.max_memory = 1 << 20;
      SqlError e = Fails(sql, o);
      EXPECT_EQ(e.message, message) << sql;
      EXPECT_EQ(e.kind, SqlError::Kind::kLimit);
      o.limits.max_memory = 0;  // none
      EXPECT_GT(Ok(sql, o).rows.size(), 0u) << sql;
    }
  }
  // What fits is answered: a top-k keeps its few rows, an hourly rollup its 40 groups.
  QueryOptions o;
  o.limits.max_memory = 1 << 20;
  EXPECT_EQ(Ok("SELECT ts, temperature FROM readings ORDER BY temperature DESC LIMIT 10", o).rows.size(), 10u);
  EXPECT_EQ(Ok("SELECT time_bucket('1h', ts) AS h, sensor_id, avg(temperature) FROM readings GROUP BY h, sensor_id", o).rows.size(), 40u);
}

TEST_F(QueryLimitsTest, AnInListOfThousandsOfItemsIsEvaluatedOneItemAtATime) {
  // Each item was a vector of the block's rows, all of them alive at once (10,000 items over a
  // block of 36,000 rows: 3 GB); now one at a time. The answer must not change.
  std::string in = "SELECT count(*) FROM readings WHERE sensor_id = 1 AND temperature IN (";
  for (int i = 0; i < 5'000; ++i) in += (i ? ", " : "") + std::to_string(10 + (i % 100) / 10.0 + 1000 * (i / 100));
  QueryResult r = Ok(in + ")");
  ASSERT_EQ(r.rows.size(), 1u);
  EXPECT_EQ(r.rows[0][0].i, kPerSensor);
  EXPECT_EQ(Ok(in + ", NULL)").rows[0][0].i, kPerSensor);
  r = Ok("SELECT count(*) FROM readings WHERE sensor_id = 1 AND temperature NOT IN (10, 10.5, 19.9)");
  EXPECT_EQ(r.rows[0][0].i, kPerSensor - 3 * kPerSensor / 100);
}

TEST(QueryGate, OneMoreStatementThanAllowedIsRefusedNotQueued) {
  QueryGate gate(2);
  {
    QueryGate::Permit a = gate.TryEnter();
    QueryGate::Permit b = gate.TryEnter();
    EXPECT_TRUE(a);
    EXPECT_TRUE(b);
    QueryGate::Permit c = gate.TryEnter();
    EXPECT_FALSE(c);
    EXPECT_EQ(gate.running(), 2);
  }
  EXPECT_EQ(gate.running(), 0);
  QueryGate::Permit d = gate.TryEnter();
  EXPECT_TRUE(d);
  QueryGate::Permit moved = std::move(d);
  EXPECT_TRUE(moved);
  EXPECT_EQ(gate.running(), 1);
  QueryGate unlimited(0);
  std::vector<QueryGate::Permit> many;
  for (int i = 0; i < 100; ++i) many.push_back(unlimited.TryEnter());
  EXPECT_TRUE(std::all_of(many.begin(), many.end(), [](const auto& p) { return static_cast<bool>(p); }));
}

}  // namespace
}  // namespace mare::query
