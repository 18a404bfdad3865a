// The store's forecast table: rows by key from forecasts records, upserted, kept through a
// reopen by the journal, whose torn tail is cut off and read again from the topic.
#include "store/forecast_table.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <ctime>
#include <thread>
#include <filesystem>
#include <fstream>

#include <fmt/format.h>

#include "common/metrics.h"
#include "common/scratch_dir.h"
#include "log/embedded_log.h"
#include "log/file.h"
#include "store/forecast_feeder.h"
#include "store/store_metrics.h"

namespace mare::store {
namespace {

constexpr int64_t kHour = 3'600'000'000;
constexpr int64_t kDay0 = 1705795200000000;  // 2024-01-21T00:00:00Z

std::string Iso(int64_t us) {
  std::time_t secs = static_cast<std::time_t>(us / 1'000'000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[40];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S.000000Z", &tm);
  return buf;
}

// A forecasts record's value (docs/formats/forecasts.md) of `hours` target hours from origin,
// value i + base at lead i, no interval at odd leads.
std::string Issue(uint32_t sensor, const std::string& field, int64_t origin, int hours, double base,
                  const std::string& model = "ensemble") {
  std::string hs;
  for (int i = 0; i < hours; ++i) {
    if (i > 0) hs += ",";
    std::string band = i % 2 == 0 ? fmt::format("\"lower\":{},\"upper\":{}", base + i - 1, base + i + 1) : "\"lower\":null,\"upper\":null";
    hs += fmt::format("{{\"target_hour\":\"{}\",\"value\":{},{}}}", Iso(origin + i * kHour), base + i, band);
  }
  return fmt::format("{{\"sensor_id\":{},\"field\":\"{}\",\"issued_at\":\"{}\",\"day_ahead\":{},\"model\":\"{}\",\"hours\":[{}]}}",
                     sensor, field, Iso(origin), origin % (24 * kHour) == 0 ? "true" : "false", model, hs);
}

struct Records {
  std::vector<std::string> values;
  std::vector<log::ConsumedRecord> records;
  void Add(int32_t partition, int64_t offset, std::string value) {
    values.push_back(std::move(value));
    records.push_back(log::ConsumedRecord{.partition = partition, .offset = offset});
  }
  const std::vector<log::ConsumedRecord>& Get() {
    for (size_t k = 0; k < records.size(); ++k) records[k].value = values[k];
    return records;
  }
};

// Every row of the table as (sensor, target_hour, field, issued_at, value or NaN), in snapshot order.
struct Row {
  uint32_t sensor;
  int64_t target;
  std::string field;
  int64_t issued;
  double value;
  bool has_lower;
  bool day_ahead;
  bool operator==(const Row&) const = default;
};
std::vector<Row> Rows(const ForecastTable& table, const SnapshotFilter& filter = {}) {
  std::vector<Row> out;
  auto snap = table.GetSnapshot(filter);
  EXPECT_TRUE(snap->status.ok()) << snap->status.ToString();
  for (const RowBuffer& b : snap->memtable) {
    const auto& c = b.columns();
    for (size_t r = 0; r < b.size(); ++r) {
      out.push_back(Row{b.sensor_id(), b.ts()[r], c[forecast_fields::kField].texts[r],
                        static_cast<int64_t>(c[forecast_fields::kIssuedAt].numbers[r]), c[forecast_fields::kValue].numbers[r],
                        c.size() > forecast_fields::kLower && c[forecast_fields::kLower].used && c[forecast_fields::kLower].present[r] != 0,
                        c[forecast_fields::kDayAhead].numbers[r] != 0});
    }
  }
  return out;
}

class ForecastTableTest : public ::testing::Test {
 protected:
  ScratchDir scratch_{"mare-forecast-table"};
  const std::string dir_ = scratch_.path();
};

TEST_F(ForecastTableTest, OneRowPerIssueAndTargetHourByKey) {
  auto table = ForecastTable::Open(dir_, false);
  ASSERT_TRUE(table.ok()) << table.status().ToString();
  Records in;
  in.Add(0, 0, Issue(7, "temperature", kDay0, 3, 10));
  in.Add(1, 0, Issue(9, "temperature", kDay0 + kHour, 2, 20));
  in.Add(0, 1, Issue(7, "temperature", kDay0 + kHour, 3, 30));
  in.Add(0, 2, "{\"not\":\"a forecast\"}");
  uint64_t skipped = 0;
  ASSERT_TRUE((*table)->Apply(in.Get(), &skipped).ok());
  EXPECT_EQ(skipped, 1u);
  EXPECT_EQ((*table)->rows(), 8u);
  EXPECT_EQ((*table)->next_offsets(), (std::vector<int64_t>{2, 1}));

  // By sensor, then target hour; within an hour by field, then issued_at.
  std::vector<Row> want = {
      {7, kDay0, "temperature", kDay0, 10, true, true},
      {7, kDay0 + kHour, "temperature", kDay0, 11, false, true},
      {7, kDay0 + kHour, "temperature", kDay0 + kHour, 30, true, false},
      {7, kDay0 + 2 * kHour, "temperature", kDay0, 12, true, true},
      {7, kDay0 + 2 * kHour, "temperature", kDay0 + kHour, 31, false, false},
      {7, kDay0 + 3 * kHour, "temperature", kDay0 + kHour, 32, true, false},
      {9, kDay0 + kHour, "temperature", kDay0 + kHour, 20, true, false},
      {9, kDay0 + 2 * kHour, "temperature", kDay0 + kHour, 21, false, false},
  };
  EXPECT_EQ(Rows(**table), want);
  // A filter on sensor and target hour.
  std::vector<Row> narrowed = {want[1], want[2], want[3], want[4]};
  EXPECT_EQ(Rows(**table, {.sensors = {7}, .min_ts = kDay0 + kHour, .max_ts = kDay0 + 2 * kHour}), narrowed);

  // The same key again (a replay after a crash, or a re-issue) replaces its rows, adds none.
  Records again;
  again.Add(0, 3, Issue(7, "temperature", kDay0, 3, 100));
  ASSERT_TRUE((*table)->Apply(again.Get(), &skipped).ok());
  EXPECT_EQ((*table)->rows(), 8u);
  want[0].value = 100, want[1].value = 101, want[3].value = 102;
  EXPECT_EQ(Rows(**table), want);
}

TEST_F(ForecastTableTest, ReopenReadsTheJournalAndCutsATornTail) {
  std::vector<Row> before;
  {
    auto table = ForecastTable::Open(dir_, false);
    ASSERT_TRUE(table.ok());
    Records in;
    in.Add(0, 5, Issue(7, "temperature", kDay0, 24, 10));
    in.Add(2, 8, Issue(7, "pressure", kDay0, 24, 1000));
    uint64_t skipped = 0;
    ASSERT_TRUE((*table)->Apply(in.Get(), &skipped).ok());
    ASSERT_TRUE((*table)->Sync().ok());
    before = Rows(**table);
    ASSERT_EQ(before.size(), 48u);
  }
  std::string path = dir_ + "/forecasts.journal";
  auto size = std::filesystem::file_size(path);
  {
    std::ofstream out(path, std::ios::app | std::ios::binary);
    out << "0 6 0badc0de {\"sensor_id\":7,\"fi";  // a write the crash cut short
  }
  {
    auto ro = ForecastTable::Open(dir_, true);  // `mare query --offline`: reads, changes nothing
    ASSERT_TRUE(ro.ok());
    EXPECT_EQ(Rows(**ro), before);
    EXPECT_GT(std::filesystem::file_size(path), size);
  }
  auto table = ForecastTable::Open(dir_, false);
  ASSERT_TRUE(table.ok());
  EXPECT_EQ(Rows(**table), before);
  EXPECT_EQ((*table)->next_offsets(), (std::vector<int64_t>{6, 0, 9}));
  EXPECT_EQ(std::filesystem::file_size(path), size);
  // Appends go on after the cut, whole lines, and read back.
  Records more;
  more.Add(0, 6, Issue(7, "temperature", kDay0 + kHour, 24, 50));
  uint64_t skipped = 0;
  ASSERT_TRUE((*table)->Apply(more.Get(), &skipped).ok());
  std::vector<Row> after = Rows(**table);
  EXPECT_EQ(after.size(), 72u);
  table->reset();
  auto reopened = ForecastTable::Open(dir_, false);
  ASSERT_TRUE(reopened.ok());
  EXPECT_EQ(Rows(**reopened), after);
  EXPECT_EQ((*reopened)->next_offsets(), (std::vector<int64_t>{7, 0, 9}));
}

TEST_F(ForecastTableTest, ACorruptLineEndsTheJournalThere) {
  {
    auto table = ForecastTable::Open(dir_, false);
    ASSERT_TRUE(table.ok());
    Records in;
    in.Add(0, 0, Issue(7, "temperature", kDay0, 2, 10));
    in.Add(0, 1, Issue(7, "temperature", kDay0 + kHour, 2, 20));
    uint64_t skipped = 0;
    ASSERT_TRUE((*table)->Apply(in.Get(), &skipped).ok());
  }
  std::string path = dir_ + "/forecasts.journal";
  auto text = log::file::ReadAll(path);
  ASSERT_TRUE(text.ok());
  size_t second = text->find('\n') + 1;
  std::string damaged = *text;
  damaged[damaged.find("\"value\":20", second) + 9] = '7';  // a flipped byte: the CRC no longer matches
  ASSERT_TRUE(log::file::WriteAtomically(path, damaged).ok());
  auto table = ForecastTable::Open(dir_, false);
  ASSERT_TRUE(table.ok());
  EXPECT_EQ((*table)->rows(), 2u);
  EXPECT_EQ((*table)->next_offsets(), (std::vector<int64_t>{1}));  // record 1 is read again from the topic
  EXPECT_EQ(std::filesystem::file_size(path), second);
}

// Memory holds where an issue's lines are, not its rows: an issue read twice with other target
// hours has the union of its records' rows, the newer record's where both have an hour, and the
// newest record's model on every row, in memory and after a restart alike.
TEST_F(ForecastTableTest, AnIssueReadTwiceHasTheUnionOfItsRecordsRows) {
  Records in;
  in.Add(0, 0, Issue(7, "temperature", kDay0, 3, 10));
  in.Add(0, 1, Issue(7, "temperature", kDay0, 5, 100));
  in.Add(0, 2, Issue(7, "temperature", kDay0, 2, 1000, "holt_winters"));
  std::vector<Row> want = {
      {7, kDay0, "temperature", kDay0, 1000, true, true},
      {7, kDay0 + kHour, "temperature", kDay0, 1001, false, true},
      {7, kDay0 + 2 * kHour, "temperature", kDay0, 102, true, true},
      {7, kDay0 + 3 * kHour, "temperature", kDay0, 103, false, true},
      {7, kDay0 + 4 * kHour, "temperature", kDay0, 104, true, true},
  };
  {
    auto table = ForecastTable::Open(dir_, false);
    ASSERT_TRUE(table.ok());
    uint64_t skipped = 0;
    ASSERT_TRUE((*table)->Apply(in.Get(), &skipped).ok());
    EXPECT_EQ((*table)->rows(), 5u);
    EXPECT_EQ(Rows(**table), want);
  }
  auto reopened = ForecastTable::Open(dir_, true);
  ASSERT_TRUE(reopened.ok());
  EXPECT_EQ((*reopened)->rows(), 5u);
  EXPECT_EQ(Rows(**reopened), want);
  auto snap = (*reopened)->GetSnapshot({});
  ASSERT_TRUE(snap->status.ok());
  size_t models = 0;
  for (const RowBuffer& b : snap->memtable) {
    for (size_t r = 0; r < b.size(); ++r, ++models) EXPECT_EQ(b.columns()[forecast_fields::kModel].texts[r], "holt_winters");
  }
  EXPECT_EQ(models, 5u);
}

// A journal far larger than the reader's 1 MiB chunks reads back whole, line for line; and a
// read-only opener (`mare query --offline`) goes on reading the file it indexed when the writer
// rewrites the journal under it.
TEST_F(ForecastTableTest, AJournalOfManyMegabytesReadsBackAndAReaderOutlivesARewrite) {
  auto table = ForecastTable::Open(dir_, false, 2 * kHour, kDay0);
  ASSERT_TRUE(table.ok());
  uint64_t skipped = 0;
  int64_t offset = 0;
  for (int hour = 0; hour < 60; ++hour) {
    Records in;
    for (uint32_t sensor = 0; sensor < 80; ++sensor) {
      in.Add(0, offset++, Issue(sensor, "temperature", kDay0 + hour * kHour, 24, sensor + hour));
    }
    ASSERT_TRUE((*table)->Apply(in.Get(), &skipped).ok());
  }
  ASSERT_GT((*table)->journal_bytes(), 4 << 20);
  ASSERT_EQ((*table)->rows(), 4800u * 24);
  const std::vector<Row> all = Rows(**table);
  ASSERT_EQ(all.size(), 4800u * 24);
  auto reader = ForecastTable::Open(dir_, true);
  ASSERT_TRUE(reader.ok());
  EXPECT_EQ((*reader)->rows(), all.size());
  EXPECT_TRUE(Rows(**reader) == all);
  const std::vector<Row> sensor_42 = Rows(**reader, {.sensors = {42}});
  ASSERT_EQ(sensor_42.size(), 60u * 24);

  // 2 hours back from the newest issue (59h): those whose last target hour (+23h) is past go,
  // the issues of hours 0..33, more than half the journal, which is rewritten.
  auto dropped = (*table)->ApplyRetention(kDay0 + 100 * kHour);
  ASSERT_TRUE(dropped.ok());
  EXPECT_EQ(*dropped, 34u * 80 * 24);
  EXPECT_EQ((*table)->dead_journal_bytes(), 0);  // rewritten
  EXPECT_TRUE(Rows(**reader, {.sensors = {42}}) == sensor_42);  // the old file, still open
  std::vector<Row> kept;
  for (const Row& r : all) {
    if (r.issued >= kDay0 + 34 * kHour) kept.push_back(r);
  }
  ASSERT_EQ(kept.size(), 26u * 80 * 24);
  EXPECT_TRUE(Rows(**table) == kept);
  table->reset();
  auto reopened = ForecastTable::Open(dir_, true);
  ASSERT_TRUE(reopened.ok());
  EXPECT_TRUE(Rows(**reopened) == kept);
}

// A line changed on disk after it was read (a disk fault, a hand edit) fails the query that
// needs it, with the file and the place, not the process; the other issues still answer.
TEST_F(ForecastTableTest, ALineDamagedAfterItWasReadFailsTheQueryThatNeedsIt) {
  auto table = ForecastTable::Open(dir_, false);
  ASSERT_TRUE(table.ok());
  Records in;
  in.Add(0, 0, Issue(7, "temperature", kDay0, 3, 10));
  in.Add(0, 1, Issue(9, "temperature", kDay0, 3, 20));
  uint64_t skipped = 0;
  ASSERT_TRUE((*table)->Apply(in.Get(), &skipped).ok());
  const std::string path = dir_ + "/forecasts.journal";
  auto text = log::file::ReadAll(path);
  ASSERT_TRUE(text.ok());
  std::string damaged = *text;
  damaged[damaged.find("\"value\":10") + 8] = '9';
  {
    std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
    f.write(damaged.data(), static_cast<std::streamsize>(damaged.size()));  // in place: same inode
  }
  auto failed = (*table)->GetSnapshot({.sensors = {7}});
  ASSERT_FALSE(failed->status.ok());
  EXPECT_TRUE(failed->status.IsCorruption()) << failed->status.ToString();
  EXPECT_NE(failed->status.message().find(path + ": the line at byte 0"), std::string::npos) << failed->status.message();
  EXPECT_TRUE(failed->memtable.empty());
  EXPECT_EQ(Rows(**table, {.sensors = {9}}).size(), 3u);
}

// store.forecast_retention, on a clock the test sets: an issue goes once all its target hours
// are past (measured back from the wall clock, or from the newest issue if earlier), from SQL at
// once and from the journal when it is mostly such issues (rewritten), and a restart neither
// brings them back nor loses the position of a partition whose lines all went.
TEST_F(ForecastTableTest, RetentionDropsPastIssuesFromSqlAndFromTheJournal) {
  constexpr int64_t kDay = 24 * kHour;
  constexpr int64_t kRetention = 2 * kDay;
  const std::string path = dir_ + "/forecasts.journal";
  auto table = ForecastTable::Open(dir_, false, kRetention, kDay0);
  ASSERT_TRUE(table.ok());
  // Day 0: sensor 7 issues at each of 4 hours (partition 0), sensor 9 once (partition 1); day 5:
  // sensor 7 once more (partition 0).
  Records in;
  for (int i = 0; i < 4; ++i) in.Add(0, i, Issue(7, "temperature", kDay0 + i * kHour, 24, 10 * i));
  in.Add(1, 0, Issue(9, "temperature", kDay0, 24, 50));
  in.Add(0, 4, Issue(7, "temperature", kDay0 + 5 * kDay, 24, 70));
  uint64_t skipped = 0;
  ASSERT_TRUE((*table)->Apply(in.Get(), &skipped).ok());
  ASSERT_EQ((*table)->rows(), 6u * 24);
  const int64_t full = (*table)->journal_bytes();
  ASSERT_EQ(static_cast<int64_t>(std::filesystem::file_size(path)), full);

  // The issue at kDay0 + 1h targets hours up to kDay0 + 24h: past once 25h <= now - 2 days.
  auto dropped = (*table)->ApplyRetention(kDay0 + 25 * kHour + kRetention - 1);
  ASSERT_TRUE(dropped.ok());
  EXPECT_EQ(*dropped, 2u * 24);  // the issues at kDay0, of both sensors
  EXPECT_EQ((*table)->rows(), 4u * 24);
  for (const Row& r : Rows(**table)) EXPECT_GE(r.issued, kDay0 + kHour);
  // Less than half the journal is dropped issues: it is left as it is.
  EXPECT_EQ(std::filesystem::file_size(path), static_cast<uint64_t>(full));
  EXPECT_GT((*table)->dead_journal_bytes(), 0);

  dropped = (*table)->ApplyRetention(kDay0 + 27 * kHour + kRetention);
  ASSERT_TRUE(dropped.ok());
  EXPECT_EQ(*dropped, 3u * 24);
  std::vector<Row> kept = Rows(**table);
  ASSERT_EQ(kept.size(), 24u);
  EXPECT_EQ(kept.front().issued, kDay0 + 5 * kDay);
  // Rewritten: the positions, then the one line kept.
  auto journal = log::file::ReadAll(path);
  ASSERT_TRUE(journal.ok());
  EXPECT_LT(static_cast<int64_t>(journal->size()), full / 4);
  EXPECT_EQ(std::count(journal->begin(), journal->end(), '\n'), 3);
  EXPECT_EQ(journal->substr(0, 28), "0 4 00000000 \n1 0 00000000 \n");
  EXPECT_FALSE(std::filesystem::exists(path + ".tmp"));
  EXPECT_EQ((*table)->dead_journal_bytes(), 0);

  // Appends go on after the rewrite; a restart reads the same rows and positions back.
  Records more;
  more.Add(1, 1, Issue(9, "temperature", kDay0 + 5 * kDay + kHour, 24, 90));
  ASSERT_TRUE((*table)->Apply(more.Get(), &skipped).ok());
  std::vector<Row> after = Rows(**table);
  EXPECT_EQ(after.size(), 48u);
  table->reset();
  auto reopened = ForecastTable::Open(dir_, false, kRetention, kDay0 + 27 * kHour + kRetention);
  ASSERT_TRUE(reopened.ok());
  EXPECT_EQ(Rows(**reopened), after);
  EXPECT_EQ((*reopened)->next_offsets(), (std::vector<int64_t>{5, 2}));

  // A year later by the wall clock (the pipeline stopped, or these are an archive's): the issues
  // within the retention before the newest one stay; a newer issue moves the cutoff on.
  reopened->reset();
  const int64_t year_later = kDay0 + 400 * kDay;
  auto late = ForecastTable::Open(dir_, false, kRetention, year_later);
  ASSERT_TRUE(late.ok());
  EXPECT_EQ(Rows(**late), after);
  Records newer;
  newer.Add(0, 5, Issue(7, "temperature", kDay0 + 8 * kDay + 2 * kHour, 24, 20));
  ASSERT_TRUE((*late)->Apply(newer.Get(), &skipped).ok());
  dropped = (*late)->ApplyRetention(year_later);
  ASSERT_TRUE(dropped.ok());
  EXPECT_EQ(*dropped, 48u);
  ASSERT_EQ((*late)->rows(), 24u);
  journal = log::file::ReadAll(path);
  ASSERT_TRUE(journal.ok());
  EXPECT_EQ(journal->substr(0, 28), "0 5 00000000 \n1 1 00000000 \n");
  EXPECT_EQ(std::count(journal->begin(), journal->end(), '\n'), 3);
  // An issue dated far ahead does not move the cutoff past the wall clock.
  Records ahead;
  ahead.Add(2, 0, Issue(11, "temperature", kDay0 + 10000 * kDay, 24, 0));
  ASSERT_TRUE((*late)->Apply(ahead.Get(), &skipped).ok());
  dropped = (*late)->ApplyRetention(kDay0 + 9 * kDay + 3 * kHour);
  ASSERT_TRUE(dropped.ok());
  EXPECT_EQ(*dropped, 0u);
  EXPECT_EQ((*late)->rows(), 48u);
  late->reset();
  auto last = ForecastTable::Open(dir_, false, kRetention, kDay0 + 9 * kDay + 3 * kHour);
  ASSERT_TRUE(last.ok());
  EXPECT_EQ((*last)->rows(), 48u);
  EXPECT_EQ((*last)->next_offsets(), (std::vector<int64_t>{6, 2, 1}));
}

// A crash during the journal's rewrite leaves its temp file (written in part, or whole but not
// renamed): the journal it was to replace is intact, nothing is lost, and the temp file goes.
TEST_F(ForecastTableTest, ACrashDuringTheRewriteLosesNothing) {
  constexpr int64_t kRetention = 24 * kHour;
  const std::string path = dir_ + "/forecasts.journal";
  std::vector<Row> before;
  {
    auto table = ForecastTable::Open(dir_, false, kRetention, kDay0);
    ASSERT_TRUE(table.ok());
    Records in;
    for (int i = 0; i < 5; ++i) in.Add(0, i, Issue(7, "temperature", kDay0 + i * kHour, 24, 10 * i));
    in.Add(0, 5, Issue(7, "temperature", kDay0 + 72 * kHour, 24, 70));
    uint64_t skipped = 0;
    ASSERT_TRUE((*table)->Apply(in.Get(), &skipped).ok());
    ASSERT_TRUE((*table)->Sync().ok());
    before = Rows(**table);
  }
  auto journal = log::file::ReadAll(path);
  ASSERT_TRUE(journal.ok());
  // What the rewrite at kDay0 + 2 days + 4h would have written, cut short by the crash.
  {
    std::ofstream tmp(path + ".tmp", std::ios::binary);
    tmp << "0 5 00000000 \n" << journal->substr(journal->rfind('\n', journal->size() - 2) + 1, 100);
  }
  // Opened where nothing is past yet: every row is there, from the journal; the temp file is gone.
  auto table = ForecastTable::Open(dir_, false, kRetention, kDay0);
  ASSERT_TRUE(table.ok());
  EXPECT_EQ(Rows(**table), before);
  EXPECT_EQ((*table)->next_offsets(), (std::vector<int64_t>{6}));
  EXPECT_FALSE(std::filesystem::exists(path + ".tmp"));
  auto unchanged = log::file::ReadAll(path);
  ASSERT_TRUE(unchanged.ok());
  EXPECT_EQ(*unchanged, *journal);
  // The rewrite then runs to the end: the issue whose hours are not past stays.
  auto dropped = (*table)->ApplyRetention(kDay0 + 52 * kHour);
  ASSERT_TRUE(dropped.ok());
  EXPECT_EQ(*dropped, 5u * 24);
  table->reset();
  auto reopened = ForecastTable::Open(dir_, false, kRetention, kDay0 + 52 * kHour);
  ASSERT_TRUE(reopened.ok());
  std::vector<Row> want = before;
  want.erase(std::remove_if(want.begin(), want.end(), [](const Row& r) { return r.issued != kDay0 + 72 * kHour; }), want.end());
  ASSERT_EQ(want.size(), 24u);
  EXPECT_EQ(Rows(**reopened), want);
  EXPECT_EQ((*reopened)->next_offsets(), (std::vector<int64_t>{6}));
}

// The feeder waits for the topic, applies what comes, and after a restart resumes after what its
// journal holds: each record journaled once, the rows those of the topic.
TEST_F(ForecastTableTest, TheFeederFollowsTheTopicOnceThroughRestarts) {
  metrics::Registry registry;
  auto log = log::OpenEmbeddedLog({.dir = dir_ + "/log", .metrics = &registry});
  ASSERT_TRUE(log.ok()) << log.status().ToString();
  auto append = [&](int32_t partition, const std::string& value) {
    log::Record r{.timestamp_us = kDay0, .key = "k", .value = value};
    ASSERT_TRUE((*log)->Append("forecasts", partition, std::span<const log::Record>(&r, 1)).ok());
  };
  std::filesystem::create_directories(dir_ + "/store");
  auto wait_rows = [](const ForecastTable& table, size_t rows) {
    for (int i = 0; i < 500 && table.rows() < rows; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    EXPECT_EQ(table.rows(), rows);
  };
  {
    auto table = ForecastTable::Open(dir_ + "/store", false);
    ASSERT_TRUE(table.ok());
    auto feeder = ForecastFeeder::Start(table->get(), log->get(), {}, &registry);  // before the topic exists
    ASSERT_TRUE(feeder.ok()) << feeder.status().ToString();
    ASSERT_TRUE((*log)->CreateTopic({.name = "forecasts", .partitions = 2}).ok());
    append(0, Issue(7, "temperature", kDay0, 24, 10));
    append(1, Issue(8, "temperature", kDay0, 24, 20));
    wait_rows(**table, 48);
    ASSERT_TRUE((*feeder)->Stop().ok());
  }
  append(0, Issue(7, "temperature", kDay0 + kHour, 24, 30));
  append(0, Issue(7, "temperature", kDay0, 24, 10));  // the same key again, as after a processor crash
  auto table = ForecastTable::Open(dir_ + "/store", false);
  ASSERT_TRUE(table.ok());
  EXPECT_EQ((*table)->rows(), 48u);  // from the journal, before reading on
  auto feeder = ForecastFeeder::Start(table->get(), log->get(), {}, &registry);
  ASSERT_TRUE(feeder.ok());
  wait_rows(**table, 72);
  for (int i = 0; i < 500 && (*table)->next_offsets() != std::vector<int64_t>{3, 1}; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_TRUE((*feeder)->Stop().ok());
  EXPECT_EQ((*table)->next_offsets(), (std::vector<int64_t>{3, 1}));
  auto journal = log::file::ReadAll(dir_ + "/store/forecasts.journal");
  ASSERT_TRUE(journal.ok());
  EXPECT_EQ(std::count(journal->begin(), journal->end(), '\n'), 4);  // each record once
  EXPECT_EQ(registry.GetGauge(store_metrics::kForecastRows).value(), 72);
}

}  // namespace
}  // namespace mare::store
