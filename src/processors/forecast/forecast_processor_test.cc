// The forecast processor: a series issues a forecast of the right hours each time one of its
// hours closes, the day-ahead one at 00:00 UTC; its issues depend only on its closed hours (a
// restore from its kept history issues the same bytes); over the embedded log, a processor
// restarted from an older checkpoint appends again exactly what it had appended, and nothing else.
#include "processors/forecast/forecast_processor.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <map>
#include <numbers>
#include <thread>

#include "common/scratch_dir.h"
#include "common/time.h"
#include "log/embedded_log.h"
#include "log/file.h"
#include "processors/forecast/forecast_checkpoint.h"
#include "processors/forecast/forecast_record.h"
#include "processors/forecast/series_forecaster.h"

namespace mare::forecast {
namespace {

constexpr int64_t kStartHour = 24 * 19000;  // 00:00 UTC of a day in 2022

// A daily cycle, a slow drift and deterministic noise; some hours missing.
double Temperature(int64_t hour, uint64_t sensor) {
  double day = 2 * std::numbers::pi * static_cast<double>(hour % 24) / 24;
  double drift = 3 * std::sin(static_cast<double>(hour) / 400.0 + static_cast<double>(sensor));
  uint64_t x = static_cast<uint64_t>(hour) * 6364136223846793005ULL + sensor * 1442695040888963407ULL;
  double noise = static_cast<double>((x >> 33) % 1000) / 1000.0 - 0.5;
  return 12 + 4 * std::sin(day) + drift + noise;
}
bool Missing(int64_t hour) { return hour % 97 == 13 || (hour >= kStartHour + 24 * 50 && hour < kStartHour + 24 * 53 + 5); }

SeriesOptions Small() {
  SeriesOptions o;
  o.history_days = 30;
  return o;
}

TEST(SeriesForecasterTest, IssuesTheNextHoursWhenAnHourClosesAndTheDayAheadAtMidnight) {
  SeriesForecaster s(Small());
  ForecastIssue issue;
  int issued = 0, day_ahead = 0, with_interval = 0;
  for (int64_t h = kStartHour + 5; h < kStartHour + 24 * 40; ++h) {
    if (Missing(h)) continue;
    ASSERT_TRUE(s.Close(h, Temperature(h, 1), &issue));
    ++issued;
    EXPECT_EQ(issue.origin, h + 1);
    EXPECT_EQ(issue.day_ahead, (h + 1) % 24 == 0) << h;
    day_ahead += issue.day_ahead;
    ASSERT_EQ(issue.mean.size(), 24u);
    for (size_t i = 0; i < 24; ++i) {
      ASSERT_TRUE(std::isfinite(issue.mean[i])) << "hour " << h << " lead " << i + 1;
      if (std::isnan(issue.lower[i])) continue;
      ++with_interval;
      EXPECT_LE(issue.lower[i], issue.upper[i]);
    }
    // A closed hour is never taken again, nor an older one.
    EXPECT_FALSE(s.Close(h, 99.0, nullptr));
    if (h > kStartHour + 5) {
      EXPECT_FALSE(s.Close(h - 1, 99.0, nullptr));
    }
  }
  EXPECT_EQ(s.last_closed(), kStartHour + 24 * 40 - 1);
  // Every day's 23:00 closed but on the gap's days (50..53 are outside; hour%97==13 can hit 23:00).
  int expected_day_ahead = 0;
  for (int64_t d = 1; d <= 40; ++d) expected_day_ahead += !Missing(kStartHour + 24 * d - 1);
  EXPECT_EQ(day_ahead, expected_day_ahead);
  EXPECT_GT(with_interval, 24 * 24 * 10);  // intervals once 20 errors are in: from the 2nd week on
  // Target hours in the record: issued_at, then each following hour.
  std::string value = ForecastValue(7, "temperature", issue);
  EXPECT_NE(value.find("\"issued_at\":\"" + FormatTimestamp(issue.origin * kMicrosPerHour) + "\""), std::string::npos);
  EXPECT_NE(value.find("\"target_hour\":\"" + FormatTimestamp((issue.origin + 23) * kMicrosPerHour) + "\""), std::string::npos);
  EXPECT_EQ(ForecastKey(7, "temperature", issue.origin), "7/temperature/" + std::to_string(issue.origin * kMicrosPerHour));
}

TEST(SeriesForecasterTest, BeatsPersistenceOnASmoothSeries) {
  SeriesForecaster s(Small());
  ForecastIssue issue;
  std::map<int64_t, std::vector<double>> day_ahead;  // origin -> means
  for (int64_t h = kStartHour; h < kStartHour + 24 * 60; ++h) {
    ASSERT_TRUE(s.Close(h, Temperature(h, 2), &issue));
    if (issue.day_ahead) day_ahead[issue.origin] = issue.mean;
  }
  double mae = 0, persistence = 0;
  int n = 0;
  for (const auto& [origin, means] : day_ahead) {
    if (origin < kStartHour + 24 * 20 || origin + 24 > kStartHour + 24 * 60) continue;
    for (int i = 0; i < 24; ++i) {
      double actual = Temperature(origin + i, 2);
      mae += std::fabs(means[static_cast<size_t>(i)] - actual);
      persistence += std::fabs(Temperature(origin + i - 24, 2) - actual);
      ++n;
    }
  }
  ASSERT_GT(n, 24 * 30);
  EXPECT_LT(mae / n, persistence / n);
}

// The issues of a series restored from its kept history (as after a restart) are the first
// run's, bit for bit, also after the history was trimmed and across gaps.
TEST(SeriesForecasterTest, RestoredFromItsHistoryIssuesTheSameBytes) {
  SeriesOptions options = Small();
  options.refit_hours = 12;  // Holt–Winters refitted at 07:00 and 19:00
  options.refit_phase = 7;
  SeriesForecaster first(options);
  ForecastIssue a, b;
  const int64_t end = kStartHour + 24 * 175;
  int64_t restore_at = kStartHour + 24 * 160 + 7;  // after the first trim (118 + 30 days kept)
  std::unique_ptr<SeriesForecaster> second;
  int compared = 0;
  for (int64_t h = kStartHour; h < end; ++h) {
    if (Missing(h) || (h >= kStartHour + 24 * 161 + 20 && h < kStartHour + 24 * 162 + 2)) continue;  // a midnight in a gap
    double v = Temperature(h, 3);
    if (h >= restore_at && !second) {
      EXPECT_GT(first.history().first_hour, kStartHour);  // trimmed
      second = std::make_unique<SeriesForecaster>(options);
      second->Restore(first.history());
      EXPECT_EQ(second->last_closed(), first.last_closed());
    }
    ASSERT_TRUE(first.Close(h, v, &a));
    if (!second) continue;
    ASSERT_TRUE(second->Close(h, v, &b));
    ASSERT_EQ(ForecastValue(1, "temperature", a), ForecastValue(1, "temperature", b)) << "hour " << h;
    ++compared;
  }
  EXPECT_GT(compared, 300);
}

// Rollups topic records for `sensors` sensors' hours [from, to): a non-final revision, then the
// final one (and a replayed final later, as after a rollup processor's crash).
void AppendRollups(log::Log* log, int sensors, int64_t from, int64_t to) {
  for (int64_t h = from; h < to; ++h) {
    for (int s = 0; s < sensors; ++s) {
      if (Missing(h) && s == 0) continue;
      std::vector<std::string> keys, values;
      for (int pass = 0; pass < 3; ++pass) {
        int64_t at = pass == 2 ? h - 1 : h;  // the third: the previous hour's final again
        if (at < from) continue;
        keys.push_back(std::to_string(s) + "/temperature/1h/" + std::to_string(at * kMicrosPerHour));
        std::string v = "{\"sensor_id\":" + std::to_string(s) + ",\"field\":\"temperature\",\"resolution\":\"1h\",\"mean\":";
        v += std::to_string(Temperature(at, static_cast<uint64_t>(s)) + (pass == 0 ? 1.0 : 0.0));
        v += pass == 0 ? ",\"revision\":1,\"final\":false}" : ",\"revision\":2,\"final\":true}";
        values.push_back(v);
      }
      // Another field and resolution, not forecast.
      keys.push_back(std::to_string(s) + "/pressure/1h/" + std::to_string(h * kMicrosPerHour));
      values.push_back("{\"mean\":1013,\"final\":true}");
      keys.push_back(std::to_string(s) + "/temperature/1m/" + std::to_string(h * kMicrosPerHour));
      values.push_back("{\"mean\":1,\"final\":true}");
      std::vector<log::Record> records;
      for (size_t i = 0; i < keys.size(); ++i) records.push_back({.timestamp_us = h * kMicrosPerHour, .key = keys[i], .value = values[i]});
      ASSERT_TRUE(log->Append("rollups", s % 2, records).ok());
    }
  }
}

std::vector<std::pair<std::string, std::string>> ReadForecasts(log::Log* log, const std::string& group) {
  auto consumer = log->Subscribe(group, "forecasts");
  EXPECT_TRUE(consumer.ok());
  std::vector<std::pair<std::string, std::string>> out;
  std::vector<log::ConsumedRecord> batch;
  for (;;) {
    EXPECT_TRUE((*consumer)->Poll(&batch, 10000, std::chrono::milliseconds(50)).ok());
    if (batch.empty()) break;
    for (const auto& r : batch) out.emplace_back(std::string(r.key), std::string(r.value));
  }
  return out;
}

class ForecastProcessorTest : public ::testing::Test {
 protected:
  std::unique_ptr<log::Log> OpenLog() {
    log::EmbeddedLogOptions o;
    o.dir = dir_ + "/log";
    o.metrics = &registry_;
    auto l = log::OpenEmbeddedLog(o);
    EXPECT_TRUE(l.ok()) << l.status().ToString();
    EXPECT_TRUE((*l)->CreateTopic({.name = "rollups", .partitions = 2}).ok());
    return std::move(*l);
  }
  ForecastOptions Options(const std::string& sub) {
    ForecastOptions o;
    o.history_days = 30;
    o.checkpoint_dir = dir_ + "/" + sub;
    o.checkpoint_interval_us = 30'000;
    o.poll_records = 50;
    return o;
  }
  // Runs a processor until it has read everything, then stops it.
  void RunToEnd(log::Log* log, const ForecastOptions& o) {
    auto p = ForecastProcessor::Start(o, log, &registry_);
    ASSERT_TRUE(p.ok()) << p.status().ToString();
    auto rollups = log->Describe("rollups");
    ASSERT_TRUE(rollups.ok());
    for (int i = 0; i < 2000; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
      if (i > 5 && (*p)->lag() == 0) break;
    }
    ASSERT_TRUE((*p)->Stop().ok());
  }

  ScratchDir scratch_{"mare-forecast-proc"};
  const std::string dir_ = scratch_.path();
  metrics::Registry registry_;
};

TEST_F(ForecastProcessorTest, ReplayFromAnOlderCheckpointAppendsTheSameForecastsAgain) {
  auto log = OpenLog();
  const int64_t mid = kStartHour + 24 * 45 + 9, end = kStartHour + 24 * 58;
  AppendRollups(log.get(), 3, kStartHour, mid);
  ForecastOptions o = Options("forecast");
  RunToEnd(log.get(), o);
  const std::string checkpoint = o.checkpoint_dir + "/checkpoint";
  auto old_checkpoint = log::file::ReadAll(checkpoint);
  ASSERT_TRUE(old_checkpoint.ok());
  auto first = ReadForecasts(log.get(), "t1");
  AppendRollups(log.get(), 3, mid, end);
  RunToEnd(log.get(), o);
  auto second = ReadForecasts(log.get(), "t2");
  // As after kill -9 past the old checkpoint: the restart appends everything since again.
  ASSERT_TRUE(log::file::WriteAtomically(checkpoint, *old_checkpoint).ok());
  RunToEnd(log.get(), o);
  auto all = ReadForecasts(log.get(), "t3");
  EXPECT_EQ(all.size(), second.size() + (second.size() - first.size()));

  std::map<std::string, std::string> by_key;
  for (const auto& [k, v] : all) {
    auto [it, added] = by_key.emplace(k, v);
    if (!added) {
      EXPECT_EQ(it->second, v) << "key " << k << " appended twice with different content";
    }
  }
  EXPECT_EQ(by_key.size(), second.size());
  // One forecast per series and closed hour: sensor 0 misses some hours.
  size_t hours = 0;
  int day_ahead = 0;
  for (int64_t h = kStartHour; h < end; ++h) hours += Missing(h) ? 2 : 3;
  EXPECT_EQ(by_key.size(), hours);
  for (const auto& [k, v] : by_key) {
    day_ahead += v.find("\"day_ahead\":true") != std::string::npos;
    EXPECT_EQ(v.find("\"issued_at\":\"") , v.find("\"issued_at\":\"" + FormatTimestamp(std::stoll(k.substr(k.rfind('/') + 1)))));
  }
  EXPECT_GE(day_ahead, 3 * 55);

  // A from-scratch run over the whole topic appends the same records.
  ForecastOptions fresh = Options("fresh");
  fresh.output_topic = "forecasts_fresh";
  RunToEnd(log.get(), fresh);
  auto consumer = log->Subscribe("t4", "forecasts_fresh");
  ASSERT_TRUE(consumer.ok());
  std::vector<log::ConsumedRecord> batch;
  size_t fresh_count = 0;
  for (;;) {
    ASSERT_TRUE((*consumer)->Poll(&batch, 10000, std::chrono::milliseconds(50)).ok());
    if (batch.empty()) break;
    for (const auto& r : batch) {
      ++fresh_count;
      auto it = by_key.find(std::string(r.key));
      ASSERT_NE(it, by_key.end()) << r.key;
      EXPECT_EQ(it->second, r.value) << r.key;
    }
  }
  EXPECT_EQ(fresh_count, by_key.size());
}

TEST_F(ForecastProcessorTest, LatestAnswersTheNewestIssueAndSurvivesARestart) {
  auto log = OpenLog();
  AppendRollups(log.get(), 2, kStartHour, kStartHour + 24 * 3 + 4);
  ForecastOptions o = Options("forecast");
  RunToEnd(log.get(), o);
  auto p = ForecastProcessor::Start(o, log.get(), &registry_);
  ASSERT_TRUE(p.ok());
  std::string latest = (*p)->Latest(1, "temperature", false);
  EXPECT_NE(latest.find("\"issued_at\":\"" + FormatTimestamp((kStartHour + 24 * 3 + 4) * kMicrosPerHour) + "\""), std::string::npos) << latest;
  std::string day = (*p)->Latest(1, "temperature", true);
  EXPECT_NE(day.find("\"issued_at\":\"" + FormatTimestamp((kStartHour + 24 * 3) * kMicrosPerHour) + "\""), std::string::npos) << day;
  EXPECT_EQ((*p)->Latest(1, "pressure", false), "");
  EXPECT_EQ((*p)->Latest(9, "temperature", false), "");
  ASSERT_TRUE((*p)->Stop().ok());
}

TEST(ForecastCheckpointTest, RoundTripsAndRefusesDamage) {
  ForecastCheckpoint c;
  c.horizon = 24;
  c.history_days = 90;
  c.refit_hours = 24;
  c.next_offsets = {5, 0, 17};
  c.series.push_back({.sensor_id = 7, .field = "temperature", .partition = 2,
                      .history = {.first_hour = 100, .values = {1.5, std::nan(""), -3}}, .latest = "{}", .latest_day_ahead = ""});
  std::string bytes;
  EncodeForecastCheckpoint(c, &bytes);
  ForecastCheckpoint back;
  ASSERT_TRUE(DecodeForecastCheckpoint(bytes, "x", &back).ok());
  ASSERT_EQ(back.series.size(), 1u);
  EXPECT_EQ(back.next_offsets, c.next_offsets);
  EXPECT_EQ(back.series[0].field, "temperature");
  EXPECT_EQ(back.series[0].history.first_hour, 100);
  EXPECT_TRUE(std::isnan(back.series[0].history.values[1]));
  EXPECT_EQ(back.series[0].history.values[2], -3);
  EXPECT_EQ(back.series[0].latest, "{}");
  bytes[30] ^= 1;
  EXPECT_EQ(DecodeForecastCheckpoint(bytes, "x", &back).code(), Status::Code::kCorruption);
}

}  // namespace
}  // namespace mare::forecast
