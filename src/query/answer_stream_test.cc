// Answers streamed batch by batch: the same bytes as the whole answer for every kind of
// statement, plain scans in batches of bounded size, OFFSET and LIMIT across batches, errors
// before the first batch reported as errors, a reader that goes away stopping the statement,
// and a slow reader not counted toward query.timeout.
#include "query/answer_stream.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <thread>

#include "common/metrics.h"
#include "common/scratch_dir.h"
#include "query/arrow_writer.h"
#include "query/format.h"

namespace mare::query {
namespace {

constexpr int64_t kT0 = 1'704'067'200'000'000;  // 2024-01-01T00:00:00Z

class AnswerStreamTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto s = store::Store::Open({.dir = dir_.path(), .compaction_thread = false}, &registry_);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    store_ = std::move(*s);
    // 20 sensors, one reading every 2 s for 3 hours (108,000 readings): two hours in
    // segments, the last in the memtable; every third reading of a sensor has no humidity.
    for (int hour = 0; hour < 3; ++hour) {
      store_->Write([&](store::Store::Batch& b) {
        for (int i = 0; i < 1800; ++i) {
          for (uint32_t sensor = 1; sensor <= 20; ++sensor) {
            Reading r;
            r.timestamp_us = kT0 + (hour * 3600 + i * 2) * 1'000'000LL + sensor * 1000;
            r.sensor_id = sensor;
            r.numbers.push_back({"temperature", 10 + (i % 100) / 10.0 + sensor});
            if (i % 3 != 0) r.numbers.push_back({"humidity", 50.0 + i % 40});
            if (sensor % 4 == 0) r.texts.push_back({"station", i % 2 ? "north, \"quay\"" : "south"});
            b.Add(r);
          }
        }
      });
      if (hour < 2) {
        ASSERT_TRUE(store_->Flush({hour + 1}).ok());
      }
    }
  }

  // The whole answer in one piece, as the JSON path and the formats' own writers make it.
  std::string Whole(const std::string& sql, AnswerFormat format) {
    ResultTable result;
    SqlError error;
    EXPECT_TRUE(RunQuery(*store_, sql, {.max_rows = SIZE_MAX}, &result, &error)) << error.ToString();
    std::string out;
    if (format == AnswerFormat::kCsv) WriteCsv(result, &out);
    if (format == AnswerFormat::kNdjson) WriteNdjson(result, &out);
    return out;
  }

  std::string Streamed(const std::string& sql, AnswerFormat format, size_t queue_bytes = 1 << 16, size_t* chunks = nullptr) {
    AnswerStream stream(*store_, sql, {.max_rows = SIZE_MAX}, format, queue_bytes);
    EXPECT_NE(stream.WaitStarted(), AnswerStream::State::kFailed) << stream.error().ToString();
    std::string out, chunk;
    size_t n = 0;
    while (stream.Next(&chunk)) {
      out += chunk;
      ++n;
    }
    EXPECT_FALSE(stream.failed()) << stream.error().ToString();
    if (chunks != nullptr) *chunks = n;
    return out;
  }

  ScratchDir dir_{"answer-stream"};
  metrics::Registry registry_;
  std::unique_ptr<store::Store> store_;
};

TEST_F(AnswerStreamTest, StreamedCsvAndNdjsonAreTheBytesOfTheWholeAnswer) {
  for (const char* sql : {
           "SELECT * FROM readings",                                                             // streamed as read
           "SELECT ts, humidity FROM readings LIMIT 70000 OFFSET 65000",                         // across batches
           "SELECT sensor_id, ts, temperature FROM readings WHERE humidity > 60 LIMIT 100000",  // WHERE, early stop
           "SELECT ts, station FROM readings ORDER BY temperature DESC, ts LIMIT 80000",         // sorted first
           "SELECT sensor_id, time_bucket('10m', ts) AS b, avg(temperature) FROM readings GROUP BY 1, 2",
           "SELECT * FROM readings LATEST ON ts PARTITION BY sensor_id",
           "SELECT ts FROM readings WHERE sensor_id = 999",  // no rows
       }) {
    for (AnswerFormat f : {AnswerFormat::kCsv, AnswerFormat::kNdjson}) {
      std::string whole = Whole(sql, f);
      EXPECT_EQ(Streamed(sql, f), whole) << sql;
      EXPECT_EQ(Streamed(sql, f, 1), whole) << sql << ", queue of one chunk";
    }
  }
}

// Takes what the executor hands over and keeps only counts: a scan's batches stay bounded.
class CountingSink : public BatchSink {
 public:
  bool Begin(const std::vector<std::string>& names, const std::vector<Type>&) override {
    columns = names.size();
    return true;
  }
  bool Rows(const std::vector<ResultColumn>& c, size_t begin, size_t end) override {
    EXPECT_GE(c.size(), columns);
    batches.push_back(end - begin);
    rows += end - begin;
    return stop_after == 0 || batches.size() < stop_after;
  }
  size_t columns = 0, rows = 0, stop_after = 0;
  std::vector<size_t> batches;
};

TEST_F(AnswerStreamTest, PlainScanComesInBatchesOfBoundedSize) {
  CountingSink sink;
  ResultTable summary;
  SqlError error;
  ASSERT_TRUE(RunQuery(*store_, "SELECT * FROM readings", {.max_rows = SIZE_MAX}, &sink, &summary, &error)) << error.ToString();
  EXPECT_EQ(summary.rows, 108'000u);
  EXPECT_EQ(sink.rows, 108'000u);
  EXPECT_TRUE(summary.columns.empty());
  ASSERT_GE(sink.batches.size(), 2u);
  // A batch goes once kStreamBatchRows are in: at most that and one block's rows (an hour of a sensor).
  for (size_t b : sink.batches) EXPECT_LE(b, kStreamBatchRows + 1800);

  // max_rows, where a caller sets one, counts the rows of the batches already handed over.
  CountingSink capped;
  ResultTable capped_summary;
  EXPECT_FALSE(RunQuery(*store_, "SELECT * FROM readings", {.max_rows = 100'000}, &capped, &capped_summary, &error));
  EXPECT_NE(error.message.find("more than 100000 rows"), std::string::npos) << error.message;
  EXPECT_GE(capped.rows, kStreamBatchRows);
}

TEST_F(AnswerStreamTest, SinkThatStopsStopsTheStatement) {
  CountingSink sink;
  sink.stop_after = 1;
  ResultTable summary;
  SqlError error;
  EXPECT_FALSE(RunQuery(*store_, "SELECT * FROM readings", {.max_rows = SIZE_MAX}, &sink, &summary, &error));
  EXPECT_EQ(sink.batches.size(), 1u);
  EXPECT_NE(error.message.find("cancelled"), std::string::npos) << error.message;
}

TEST_F(AnswerStreamTest, ErrorBeforeAnyRowIsReportedWithItsPosition) {
  AnswerStream stream(*store_, "SELECT temprature FROM readings", {}, AnswerFormat::kArrow);
  ASSERT_EQ(stream.WaitStarted(), AnswerStream::State::kFailed);
  EXPECT_EQ(stream.error().pos.line, 1);
  EXPECT_EQ(stream.error().pos.column, 8);
  EXPECT_NE(stream.error().message.find("unknown column"), std::string::npos);
}

TEST_F(AnswerStreamTest, SmallAnswerIsCompleteBeforeItIsSent) {
  AnswerStream stream(*store_, "SELECT count(*) FROM readings", {}, AnswerFormat::kCsv);
  ASSERT_EQ(stream.WaitStarted(), AnswerStream::State::kComplete);
  EXPECT_EQ(stream.summary().rows, 1u);
  std::string chunk, all;
  while (stream.Next(&chunk)) all += chunk;
  EXPECT_EQ(all, "count(*)\n108000\n");
}

TEST_F(AnswerStreamTest, CompleteAnswerIsTakenWholeInOnePiece) {
  for (AnswerFormat f : {AnswerFormat::kCsv, AnswerFormat::kNdjson}) {
    const char* sql = "SELECT ts, temperature, station FROM readings WHERE sensor_id = 4 ORDER BY ts DESC LIMIT 3000";
    AnswerStream stream(*store_, sql, {.max_rows = SIZE_MAX}, f);
    ASSERT_EQ(stream.WaitStarted(), AnswerStream::State::kComplete);
    std::string all = "left over";
    stream.TakeAll(&all);
    EXPECT_EQ(all, Whole(sql, f)) << sql;
    std::string chunk;
    EXPECT_FALSE(stream.Next(&chunk));  // nothing left
  }
}

// Streams on kept threads: the same answers as on threads of their own, streamed or complete,
// cancelled by a reader that goes away, and their threads reused, not one more per statement.
TEST_F(AnswerStreamTest, StatementThreadsRunStreamsAndAreReused) {
  StatementThreads threads(2);
  const std::string sql = "SELECT sensor_id, ts, humidity FROM readings WHERE sensor_id < 5";
  const std::string whole = Whole(sql, AnswerFormat::kCsv);
  for (int round = 0; round < 20; ++round) {
    for (size_t queue : {size_t{1}, AnswerStream::kDefaultQueueBytes}) {
      AnswerStream stream(*store_, sql, {.max_rows = SIZE_MAX}, AnswerFormat::kCsv, queue, &threads);
      ASSERT_NE(stream.WaitStarted(), AnswerStream::State::kFailed) << stream.error().ToString();
      std::string out, chunk;
      while (stream.Next(&chunk)) out += chunk;
      EXPECT_FALSE(stream.failed());
      EXPECT_EQ(out, whole);
    }
    AnswerStream gone(*store_, "SELECT * FROM readings", {}, AnswerFormat::kNdjson, 1, &threads);
    ASSERT_EQ(gone.WaitStarted(), AnswerStream::State::kStreaming);
    gone.Cancel();
    gone.Finish();
    EXPECT_TRUE(gone.failed());
  }
  // One statement at a time: a thread, or two when one was still on its way back to wait as
  // the next came (60 statements ran; a thread for each would be 60).
  EXPECT_LE(threads.threads(), 3u);
}

TEST_F(AnswerStreamTest, ArrowStreamEndsWithItsMarkerAndHoldsEveryRow) {
  size_t chunks = 0;
  std::string s = Streamed("SELECT ts, temperature FROM readings", AnswerFormat::kArrow, 1, &chunks);
  EXPECT_GE(chunks, 3u);  // the schema, two batches at least
  ASSERT_GE(s.size(), 8u);
  EXPECT_EQ(s.substr(s.size() - 8), std::string("\xff\xff\xff\xff\0\0\0\0", 8));
  // Whole rows in the stream: 108,000 timestamps and doubles, 8 bytes each, besides metadata.
  EXPECT_GT(s.size(), 108'000u * 16);
}

TEST_F(AnswerStreamTest, ReaderThatGoesAwayStopsTheStatement) {
  AnswerStream stream(*store_, "SELECT * FROM readings", {}, AnswerFormat::kNdjson, 1);
  ASSERT_EQ(stream.WaitStarted(), AnswerStream::State::kStreaming);
  std::string chunk;
  ASSERT_TRUE(stream.Next(&chunk));
  auto start = std::chrono::steady_clock::now();
  stream.Cancel();
  EXPECT_FALSE(stream.Next(&chunk));
  EXPECT_TRUE(stream.failed());
  stream.Finish();
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
}

TEST_F(AnswerStreamTest, SlowReaderDoesNotCountTowardTheTimeout) {
  QueryOptions options{.max_rows = SIZE_MAX};
  options.limits.timeout_us = 300'000;
  AnswerStream stream(*store_, "SELECT * FROM readings", options, AnswerFormat::kCsv, 1);
  ASSERT_EQ(stream.WaitStarted(), AnswerStream::State::kStreaming);
  std::string chunk;
  size_t lines = 0;
  auto start = std::chrono::steady_clock::now();
  while (stream.Next(&chunk)) {
    lines += static_cast<size_t>(std::count(chunk.begin(), chunk.end(), '\n'));
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
  }
  EXPECT_GT(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(500));
  EXPECT_FALSE(stream.failed()) << stream.error().ToString();
  EXPECT_EQ(lines, 108'001u);
}

}  // namespace
}  // namespace mare::query
