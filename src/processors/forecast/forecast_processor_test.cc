// The forecast processor: a series issues a forecast of the right hours each time one of its
// hours closes, the day-ahead one at 00:00 UTC; its issues depend only on its closed hours (a
// restore from its kept history issues the same bytes); over the embedded log, a processor
// restarted from an older checkpoint appends again exactly what it had appended, and nothing else.
#include "processors/forecast/forecast_processor.h"

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <zlib.h>
#include <zstd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <cstring>
#include <map>
#include <numbers>
#include <thread>

#include "common/scratch_dir.h"
#include "common/time.h"
#include "log/log_with_topics.h"
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
  options.ensemble.window_days = 28;
  // 30 + 95 days kept (the intervals' 56, the selection's 7, the ensemble's 28, margins):
  // trimmed by day 160 (with the defaults 42 and 42, not before day 205).
  options.selection.window_days = 7;
  options.selection.min_errors = 120;
  SeriesForecaster first(options);
  ForecastIssue a, b;
  const int64_t end = kStartHour + 24 * 175;
  int64_t restore_at = kStartHour + 24 * 160 + 7;  // after the first trim (118 + 30 days kept)
  std::unique_ptr<SeriesForecaster> second;
  int compared = 0, blended = 0;
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
    blended += a.model == "ensemble+local_ridge";
  }
  EXPECT_GT(compared, 300);
  EXPECT_GT(blended, 10);  // the day-ahead issues, the local ridge blended in
}

// A forecaster restored with the models a checkpoint saved (Holt–Winters' fit, the errors, the
// issues being judged) and only the hours its models read (ModelHistory), through the
// checkpoint's bytes, issues what the uninterrupted one does, bit for bit, and shows the same
// skill, with no replay of past origins: also right after a Holt–Winters refit and across a
// midnight in a gap. Version 3's bytes are less than half version 2's.
TEST(SeriesForecasterTest, RestoredWithItsModelsIssuesTheSameBytes) {
  SeriesOptions options = Small();
  options.refit_hours = 12;
  options.refit_phase = 7;
  for (int64_t restore_at : {kStartHour + 24 * 100 + 8, kStartHour + 24 * 161 + 23, kStartHour + 24 * 162 + 3}) {
    SeriesForecaster first(options);
    std::unique_ptr<SeriesForecaster> second;
    ForecastIssue a, b;
    int compared = 0;
    for (int64_t h = kStartHour; h < kStartHour + 24 * 170; ++h) {
      if (Missing(h) || (h >= kStartHour + 24 * 161 + 20 && h < kStartHour + 24 * 162 + 2)) continue;
      double v = Temperature(h, 5);
      if (h >= restore_at && !second) {
        ForecastCheckpoint c;
        c.series.push_back({.sensor_id = 5, .field = "temperature", .partition = 0, .history = first.ModelHistory(),
                            .latest = "", .latest_day_ahead = "", .state = first.SaveState()});
        EXPECT_LE(c.series[0].history.values.size(), 24u * options.history_days);
        EXPECT_LT(c.series[0].history.values.size(), first.history().values.size());
        std::string bytes, v2;
        EncodeForecastCheckpoint(c, &bytes);
        ForecastCheckpoint whole = c;
        whole.series[0].history = first.history();
        EncodeForecastCheckpoint(whole, &v2, 2);
        // (The same state in version 2, with all the hours kept: 2.5 times as large here, with 30
        // days of history; bench/forecast_refresh_bench --checkpoint measures the default 90.)
        EXPECT_LT(bytes.size() * 2, v2.size()) << bytes.size() << " vs " << v2.size();
        ForecastCheckpoint back;
        ASSERT_TRUE(DecodeForecastCheckpoint(bytes, "x", &back).ok());
        EXPECT_EQ(back.version, 3u);
        ASSERT_TRUE(back.series[0].state.has_value());
        EXPECT_FALSE(back.series[0].state->errors[0][0].empty());  // it has errors to restore
        second = std::make_unique<SeriesForecaster>(options);
        ASSERT_TRUE(second->RestoreState(back.series[0].history, *back.series[0].state).ok());
        EXPECT_EQ(second->last_closed(), first.last_closed());
        EXPECT_EQ(SkillValue(5, "temperature", second->Skill(30)), SkillValue(5, "temperature", first.Skill(30)));
      }
      ASSERT_TRUE(first.Close(h, v, &a));
      if (!second) continue;
      ASSERT_TRUE(second->Close(h, v, &b));
      ASSERT_EQ(ForecastValue(5, "temperature", a), ForecastValue(5, "temperature", b)) << "hour " << h;
      ++compared;
    }
    EXPECT_GT(compared, 150) << restore_at;
  }
}

// The skill the Stats view shows: persistence's MAE over the last 30 days' day-ahead issues,
// computed here from the series itself, and weights that are the ensemble's.
TEST(SeriesForecasterTest, SkillIsEachModelsRecentDayAheadError) {
  SeriesForecaster f(Small());
  ForecastIssue issue;
  const int64_t end = kStartHour + 24 * 70 + 5;
  for (int64_t h = kStartHour; h < end; ++h) {
    if (!Missing(h)) f.Close(h, Temperature(h, 2), &issue);
  }
  SeriesSkill skill = f.Skill(30);
  EXPECT_EQ(skill.as_of, f.last_closed() + 1);
  ASSERT_EQ(skill.models.size(), 7u);
  EXPECT_EQ(skill.models.front().model, "persistence");
  EXPECT_EQ(skill.models[5].model, "local_ridge");
  EXPECT_EQ(skill.models.back().model, "ensemble");
  // What the latest day-ahead issue selected: the ensemble blended with the local ridge once
  // both have two weeks of errors (selection.h).
  EXPECT_TRUE(skill.in_use == "ensemble" || skill.in_use == "ensemble+local_ridge") << skill.in_use;
  double sum = 0, persistence = 0;
  int64_t n = 0;
  for (int64_t o = (skill.as_of - 24 * 30 + 23) / 24 * 24; o < skill.as_of; o += 24) {
    for (int64_t h = o; h < o + 24 && h <= f.last_closed(); ++h) {
      if (Missing(h)) continue;
      double forecast = Temperature(h - 24, 2);
      if (Missing(h - 24)) {  // the last value before the origin
        int64_t last = o - 1;
        while (Missing(last)) --last;
        forecast = Temperature(last, 2);
      }
      persistence += std::fabs(Temperature(h, 2) - forecast);
      ++n;
    }
  }
  EXPECT_EQ(skill.models[0].hours, n);
  EXPECT_NEAR(skill.models[0].mae, persistence / static_cast<double>(n), 1e-12);
  EXPECT_EQ(skill.models[0].skill, 0);
  for (const ModelSkill& m : skill.models) {
    EXPECT_TRUE(std::isfinite(m.mae)) << m.model;
    if (m.model != "ensemble" && m.model != "local_ridge") sum += m.weight;
  }
  EXPECT_TRUE(std::isnan(skill.models[5].weight));  // not in the ensemble
  EXPECT_NEAR(sum, 1, 1e-9);
  EXPECT_TRUE(std::isnan(skill.models.back().weight));
  EXPECT_FALSE(skill.leading.empty());
  std::string json = SkillValue(2, "temperature", skill);
  EXPECT_NE(json.find("\"model\":\"holt_winters\""), std::string::npos) << json;
  EXPECT_NE(json.find("\"weight\":null"), std::string::npos) << json;
}

// A state made for other options is refused, and the forecaster is left as it was.
TEST(SeriesForecasterTest, RefusesAStateOfAnotherHorizon) {
  SeriesForecaster first(Small());
  ForecastIssue issue;
  for (int64_t h = kStartHour; h < kStartHour + 24 * 20; ++h) first.Close(h, Temperature(h, 1), &issue);
  SeriesOptions longer = Small();
  longer.horizon = 48;
  SeriesForecaster other(longer);
  EXPECT_EQ(other.RestoreState(first.history(), first.SaveState()).code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(other.last_closed(), SeriesForecaster::kNone);
  HourlySeries shorter = first.history();
  shorter.values.pop_back();
  SeriesForecaster same(Small());
  EXPECT_EQ(same.RestoreState(shorter, first.SaveState()).code(), Status::Code::kInvalidArgument);
}

// A damaged state's pending issues (found by fuzz/forecast_checkpoint: an origin near INT64_MIN
// overflowed Close's lead) or replay hour are refused; a sound state still restores.
TEST(SeriesForecasterTest, RefusesPendingIssuesOutOfRange) {
  SeriesForecaster first(Small());
  ForecastIssue issue;
  for (int64_t h = kStartHour; h < kStartHour + 24 * 20 + 5; ++h) first.Close(h, Temperature(h, 1), &issue);
  const SeriesState sound = first.SaveState();
  ASSERT_FALSE(sound.pending.empty());
  SeriesForecaster restored(Small());
  ASSERT_TRUE(restored.RestoreState(first.history(), sound).ok());

  SeriesState far = sound;
  far.pending.front().origin = std::numeric_limits<int64_t>::min() + 1;
  SeriesState future = sound;
  future.pending.back().origin = sound.last_closed + 25;
  SeriesState replay = sound;
  replay.replay_from = std::numeric_limits<int64_t>::max();
  for (const SeriesState* bad : {&far, &future, &replay}) {
    SeriesForecaster f(Small());
    EXPECT_EQ(f.RestoreState(first.history(), *bad).code(), Status::Code::kInvalidArgument);
    EXPECT_EQ(f.last_closed(), SeriesForecaster::kNone);
  }
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
    auto l = log::OpenLogWithTopics({.dir = dir_ + "/log", .metrics = &registry_}, {{.name = "rollups", .partitions = 2}});
    EXPECT_TRUE(l.ok()) << l.status().ToString();
    return l.ok() ? std::move(*l) : nullptr;
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
  // with_models: how many series it resumed with their models from the checkpoint.
  void RunToEnd(log::Log* log, const ForecastOptions& o, size_t* with_models = nullptr) {
    auto p = ForecastProcessor::Start(o, log, &registry_);
    ASSERT_TRUE(p.ok()) << p.status().ToString();
    if (with_models != nullptr) *with_models = (*p)->restored_with_models();
    auto rollups = log->Describe(o.input_topic);
    ASSERT_TRUE(rollups.ok());
    // Until it has consumed every partition to the end the topic has now (lag() can read 0
    // before the first poll), for 2 minutes at most.
    auto caught_up = [&] {
      for (const log::PartitionInfo& partition : *rollups) {
        if ((*p)->consumed(partition.partition) < partition.end_offset) return false;
      }
      return true;
    };
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::minutes(2);
    while (!caught_up() && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    ASSERT_TRUE(caught_up()) << "not caught up with " << o.input_topic << " in 2 minutes";
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
  size_t with_models = 0;
  RunToEnd(log.get(), o, &with_models);
  EXPECT_EQ(with_models, 3u);  // resumed with its models, not rebuilt from the hours
  auto second = ReadForecasts(log.get(), "t2");
  // As after kill -9 past the old checkpoint: the restart appends everything since again.
  ASSERT_TRUE(log::file::WriteAtomically(checkpoint, *old_checkpoint).ok());
  RunToEnd(log.get(), o, &with_models);
  EXPECT_EQ(with_models, 3u);
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

// The series of a batch issued on several threads (issue_threads): the same records with the
// same timestamps at the same offsets of every partition as on one thread, the same checkpoint
// (offsets read, every series' hours and models), the same latest answers; also with small batches.
TEST_F(ForecastProcessorTest, ThreadsAppendTheSameRecordsInTheSameOrderAsOne) {
  auto log = OpenLog();
  const int sensors = 6;
  const int64_t end = kStartHour + 24 * 31 + 5;
  AppendRollups(log.get(), sensors, kStartHour, end);
  struct Run {
    std::vector<std::string> records;  // partition, offset, timestamp, key, value
    std::string checkpoint, latest, day_ahead;
  };
  std::vector<Run> runs;
  // One forecast per series and closed hour (sensor 0 misses some hours).
  size_t hours = 0;
  for (int64_t h = kStartHour; h < end; ++h) hours += Missing(h) ? sensors - 1 : sensors;
  const struct {
    int threads;
    size_t poll_records;
  } settings[] = {{1, 4096}, {4, 4096}, {3, 50}};
  for (const auto& setting : settings) {
    const std::string name = std::to_string(setting.threads) + "_" + std::to_string(setting.poll_records);
    ForecastOptions o = Options("forecast_" + name);
    o.output_topic = "forecasts_" + name;
    o.issue_threads = setting.threads;
    o.poll_records = setting.poll_records;
    o.checkpoint_interval_us = 3'600'000'000;  // only the final one: the same point in every run
    auto p = ForecastProcessor::Start(o, log.get(), &registry_);
    ASSERT_TRUE(p.ok()) << p.status().ToString();
    // Until every forecast is in the topic (a lag of 0 alone can come before the first poll:
    // under ASan this run stopped after 820 of 4,486), for 2 minutes at most.
    auto appended = [&] {
      int64_t n = 0;
      if (auto out = log->Describe(o.output_topic); out.ok()) {
        for (const auto& partition : *out) n += partition.end_offset;
      }
      return n;
    };
    for (int i = 0; i < 12000 && (appended() < static_cast<int64_t>(hours) || (*p)->lag() != 0); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    Run run;
    run.latest = (*p)->Latest(sensors - 1, "temperature", false);
    run.day_ahead = (*p)->Latest(sensors - 1, "temperature", true);
    ASSERT_TRUE((*p)->Stop().ok());
    auto checkpoint = log::file::ReadAll(o.checkpoint_dir + "/checkpoint");
    ASSERT_TRUE(checkpoint.ok());
    run.checkpoint = *checkpoint;
    auto consumer = log->Subscribe("read_" + name, o.output_topic);
    ASSERT_TRUE(consumer.ok());
    std::vector<log::ConsumedRecord> batch;
    for (;;) {
      ASSERT_TRUE((*consumer)->Poll(&batch, 10000, std::chrono::milliseconds(50)).ok());
      if (batch.empty()) break;
      for (const auto& r : batch) {
        run.records.push_back(fmt::format("{} {} {} {} {}", r.partition, r.offset, r.timestamp_us, r.key, r.value));
      }
    }
    std::sort(run.records.begin(), run.records.end());  // partitions are read interleaved; offsets order each
    runs.push_back(std::move(run));
  }
  ASSERT_EQ(runs[0].records.size(), hours);
  EXPECT_NE(runs[0].latest, "");
  EXPECT_NE(runs[0].day_ahead, "");
  for (size_t i = 1; i < runs.size(); ++i) {
    SCOPED_TRACE(fmt::format("{} threads, batches of {}", settings[i].threads, settings[i].poll_records));
    ASSERT_EQ(runs[i].records.size(), runs[0].records.size());
    for (size_t r = 0; r < runs[0].records.size(); ++r) ASSERT_EQ(runs[i].records[r], runs[0].records[r]) << r;
    EXPECT_TRUE(runs[i].checkpoint == runs[0].checkpoint);
    EXPECT_EQ(runs[i].latest, runs[0].latest);
    EXPECT_EQ(runs[i].day_ahead, runs[0].day_ahead);
  }
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
  EXPECT_EQ(back.version, 3u);
  EXPECT_FALSE(back.series[0].state.has_value());
  bytes[30] ^= 1;
  EXPECT_EQ(DecodeForecastCheckpoint(bytes, "x", &back).code(), Status::Code::kCorruption);
}

// Re-seals a body under a fresh header, as a writer would have: damage the CRC cannot catch.
std::string Sealed(std::string bytes, uint32_t version) {
  std::string body = bytes.substr(24);
  uint64_t length = body.size();
  uint32_t crc = static_cast<uint32_t>(::crc32(::crc32(0L, Z_NULL, 0), reinterpret_cast<const Bytef*>(body.data()),
                                               static_cast<uInt>(body.size())));
  std::memcpy(bytes.data() + 8, &version, 4);
  std::memcpy(bytes.data() + 12, &length, 8);
  std::memcpy(bytes.data() + 20, &crc, 4);
  return bytes;
}

TEST(ForecastCheckpointTest, ReadsVersion1AndRefusesAStateOutOfBounds) {
  ForecastCheckpoint c;
  c.horizon = 24;
  c.next_offsets = {3};
  c.series.push_back({.sensor_id = 7, .field = "t", .partition = 0, .history = {.first_hour = 100, .values = {1.5}},
                      .latest = "", .latest_day_ahead = ""});
  std::string bytes;
  EncodeForecastCheckpoint(c, &bytes, 2);
  // Version 1 had no state flag after each series: the same file without it.
  std::string v1 = bytes;
  v1.pop_back();
  ForecastCheckpoint back;
  ASSERT_TRUE(DecodeForecastCheckpoint(Sealed(v1, 1), "x", &back).ok());
  EXPECT_EQ(back.version, 1u);
  EXPECT_FALSE(back.series[0].state.has_value());
  EXPECT_EQ(back.series[0].history.values, std::vector<double>{1.5});

  SeriesState state;
  state.last_closed = 100;
  state.errors.assign(7, std::vector<SeriesState::Errors>(24));
  state.errors[2][5] = {{96, 0.5}, {120, -0.25}};
  state.pending.push_back({.origin = 96, .means = std::vector<std::vector<double>>(7, std::vector<double>(24, 2.0))});
  c.series[0].state = state;
  EncodeForecastCheckpoint(c, &bytes, 2);
  ASSERT_TRUE(DecodeForecastCheckpoint(bytes, "x", &back).ok());
  EXPECT_EQ(back.version, 2u);
  ASSERT_TRUE(back.series[0].state.has_value());
  EXPECT_EQ(back.series[0].state->errors[2][5], state.errors[2][5]);
  EXPECT_EQ(back.series[0].state->pending[0].means[6][23], 2.0);
  // The flag, the model count, the lead count and the order of origins, each damaged and re-sealed.
  const size_t state_at = bytes.size() - (8 * 3 + 1 + 8 * 4 + 4 + 4 + 7 * 24 * 4 + 2 * 16 + 4 + 8 + 7 * 24 * 8) - 1;
  ASSERT_EQ(bytes[state_at], 1);  // the state flag
  for (auto [offset, value] : std::vector<std::pair<size_t, uint32_t>>{{0, 2}, {1 + 57, 100000}, {1 + 61, 1000}}) {
    std::string damaged = bytes;
    if (offset == 0) {
      damaged[state_at] = static_cast<char>(value);
    } else {
      std::memcpy(damaged.data() + state_at + offset, &value, 4);
    }
    EXPECT_EQ(DecodeForecastCheckpoint(Sealed(damaged, 2), "x", &back).code(), Status::Code::kCorruption) << offset;
  }
  std::string backwards = bytes;
  const size_t first_origin = state_at + 1 + 57 + 8 + (2 * 24 + 5) * 4 + 4;
  int64_t later = 1000;
  std::memcpy(backwards.data() + first_origin, &later, 8);
  EXPECT_EQ(DecodeForecastCheckpoint(Sealed(backwards, 2), "x", &back).code(), Status::Code::kCorruption);
}

template <typename T>
void PutLe(std::string* out, T v) {
  out->append(reinterpret_cast<const char*>(&v), sizeof v);
}

// A version 3 file of one series (sensor 7, field "t", partition 0) written by hand from
// docs/formats/forecast-checkpoint.md: the record is its numbers in byte planes, then its shape,
// compressed here with zstd.
std::string V3File(const std::vector<double>& numbers, const std::string& shape) {
  std::string record;
  PutLe<uint32_t>(&record, static_cast<uint32_t>(numbers.size()));
  for (int k = 0; k < 8; ++k) {
    for (double v : numbers) {
      uint64_t bits;
      std::memcpy(&bits, &v, 8);
      record.push_back(static_cast<char>(bits >> (8 * k)));
    }
  }
  record += shape;
  std::string packed(ZSTD_compressBound(record.size()), '\0');
  packed.resize(ZSTD_compress(packed.data(), packed.size(), record.data(), record.size(), 3));
  std::string file = "MAREFCST" + std::string(16, '\0');
  for (uint32_t v : {24u, 90u, 24u, 1u}) PutLe<uint32_t>(&file, v);  // horizon, history, refit, 1 partition
  PutLe<int64_t>(&file, 40);
  PutLe<uint64_t>(&file, 1);
  PutLe<uint64_t>(&file, 7);
  PutLe<uint16_t>(&file, 1);
  file += "t";
  PutLe<int32_t>(&file, 0);
  PutLe<uint32_t>(&file, static_cast<uint32_t>(packed.size()));
  file += packed;
  return Sealed(file, 3);
}

// The shape of a record with 3 hours, a state of 2 models and 2 leads; `books`, the count of
// the first error list and its second origin's step (a varint's bytes) as given.
std::string V3Shape(uint32_t books, uint8_t first_count, const std::string& step, const std::string& tail = "") {
  std::string s;
  PutLe<int64_t>(&s, 1000);  // first_hour
  PutLe<uint32_t>(&s, 3);    // hours: numbers 0..2
  PutLe<uint32_t>(&s, 2);
  s += "{}";                 // latest
  PutLe<uint32_t>(&s, 0);    // latest_day_ahead
  s += '\1';                 // has_state
  for (int64_t v : {1002, 0, 984}) PutLe<int64_t>(&s, v);  // last_closed, replay_from, hw_fit
  s += '\1';                 // fitted; alpha, beta, gamma, phi: numbers 3..6
  PutLe<uint32_t>(&s, books);
  PutLe<uint32_t>(&s, 2);    // leads
  s += static_cast<char>(first_count);
  s += "\x80\x0f";           // origin 960, zigzag: 1920
  s += step;                 // numbers 7, 8
  s += '\0';                 // book 0, lead 2: none
  s += "\x01\xb0\x0f";       // book 1, lead 1: origin 984; number 9
  s += '\0';
  PutLe<uint32_t>(&s, 1);    // pending
  PutLe<int64_t>(&s, 984);   // means: numbers 10..13
  return s + tail;
}

TEST(ForecastCheckpointTest, ReadsVersion3AsDocumentedAndRefusesDamage) {
  const std::vector<double> numbers = {1.5, std::nan(""), -2, 0.5, 0.1, 0.2, 0.9, 0.25, -0.5, 1.0, 10, 11, 12, 13};
  ForecastCheckpoint c;
  ASSERT_TRUE(DecodeForecastCheckpoint(V3File(numbers, V3Shape(2, 2, "\x18")), "x", &c).ok());
  EXPECT_EQ(c.version, 3u);
  EXPECT_EQ(c.history_days, 90u);
  EXPECT_EQ(c.next_offsets, std::vector<int64_t>{40});
  ASSERT_EQ(c.series.size(), 1u);
  const SeriesCheckpoint& s = c.series[0];
  EXPECT_EQ(s.sensor_id, 7u);
  EXPECT_EQ(s.field, "t");
  EXPECT_EQ(s.history.first_hour, 1000);
  ASSERT_EQ(s.history.values.size(), 3u);
  EXPECT_TRUE(std::isnan(s.history.values[1]));
  EXPECT_EQ(s.history.values[2], -2);
  EXPECT_EQ(s.latest, "{}");
  ASSERT_TRUE(s.state.has_value());
  EXPECT_EQ(s.state->last_closed, 1002);
  EXPECT_EQ(s.state->holt_winters_fit, 984);
  EXPECT_TRUE(s.state->holt_winters_fitted);
  EXPECT_EQ(s.state->holt_winters.phi, 0.9);
  EXPECT_EQ(s.state->errors[0][0], (SeriesState::Errors{{960, 0.25}, {984, -0.5}}));
  EXPECT_TRUE(s.state->errors[0][1].empty());
  EXPECT_EQ(s.state->errors[1][0], (SeriesState::Errors{{984, 1.0}}));
  ASSERT_EQ(s.state->pending.size(), 1u);
  EXPECT_EQ(s.state->pending[0].means, (std::vector<std::vector<double>>{{10, 11}, {12, 13}}));
  // What the encoder writes for it reads back the same.
  std::string again;
  EncodeForecastCheckpoint(c, &again);
  ForecastCheckpoint back;
  ASSERT_TRUE(DecodeForecastCheckpoint(again, "x", &back).ok());
  EXPECT_EQ(back.series[0].state->errors, s.state->errors);
  EXPECT_EQ(back.series[0].state->pending[0].means, s.state->pending[0].means);

  // An origin going back (a step of 2^64 - 24), more than 64 models, more errors than numbers,
  // a number or a shape byte left over, a damaged zstd frame: each refused.
  const std::string back_step = "\xe8\xff\xff\xff\xff\xff\xff\xff\xff\x01";
  std::vector<std::string> damaged = {V3File(numbers, V3Shape(2, 2, back_step)), V3File(numbers, V3Shape(65, 2, "\x18")),
                                      V3File(numbers, V3Shape(2, 100, "\x18")),
                                      V3File({numbers.begin(), numbers.end() - 1}, V3Shape(2, 2, "\x18")),
                                      V3File(numbers, V3Shape(2, 2, "\x18", std::string(1, '\0')))};
  std::vector<double> more = numbers;
  more.push_back(1);
  damaged.push_back(V3File(more, V3Shape(2, 2, "\x18")));
  std::string frame = V3File(numbers, V3Shape(2, 2, "\x18"));
  frame[79] ^= 0x55;  // the frame's magic number (after the header, offsets and the series' key)
  damaged.push_back(Sealed(frame, 3));
  for (size_t i = 0; i < damaged.size(); ++i) {
    EXPECT_EQ(DecodeForecastCheckpoint(damaged[i], "x", &back).code(), Status::Code::kCorruption) << i;
  }
}

// The fuzz seeds are written by hand from docs/formats/forecast-checkpoint.md (a Python writer):
// the decoder reads what the document says, in every version, and the state restores.
TEST(ForecastCheckpointTest, ReadsTheFormatAsDocumented) {
  ForecastCheckpoint c;
  ASSERT_TRUE(ReadForecastCheckpoint("fuzz/corpus/forecast_checkpoint/v1-two-series", &c).ok());
  EXPECT_EQ(c.version, 1u);
  ASSERT_EQ(c.series.size(), 2u);
  EXPECT_EQ(c.series[1].field, "pressure");
  EXPECT_EQ(c.series[1].history.values.size(), 10u);
  EXPECT_FALSE(c.series[0].state.has_value());
  ASSERT_TRUE(ReadForecastCheckpoint("fuzz/corpus/forecast_checkpoint/v2-one-series-with-state", &c).ok());
  EXPECT_EQ(c.version, 2u);
  EXPECT_EQ(c.next_offsets, (std::vector<int64_t>{40, 0}));
  ASSERT_EQ(c.series.size(), 1u);
  ASSERT_TRUE(c.series[0].state.has_value());
  const SeriesState& state = *c.series[0].state;
  EXPECT_EQ(state.holt_winters.phi, 0.9);
  ASSERT_EQ(state.errors.size(), 6u);
  EXPECT_EQ(state.errors[5][4], (SeriesState::Errors{{kStartHour + 24, 0.25 * (5 - 1)}}));
  ASSERT_EQ(state.pending.size(), 1u);
  EXPECT_EQ(state.pending[0].means[3][23], 13.0);
  // Version 3, rewritten from that file by fuzz/forecast_checkpoint_v3_seed.py (which reads
  // and writes the document's layouts): the same checkpoint, bit for bit.
  ForecastCheckpoint v3;
  ASSERT_TRUE(ReadForecastCheckpoint("fuzz/corpus/forecast_checkpoint/v3-one-series-with-state", &v3).ok());
  EXPECT_EQ(v3.version, 3u);
  EXPECT_EQ(v3.next_offsets, c.next_offsets);
  ASSERT_EQ(v3.series.size(), 1u);
  const SeriesCheckpoint& a = c.series[0];
  const SeriesCheckpoint& b = v3.series[0];
  EXPECT_EQ(b.sensor_id, a.sensor_id);
  EXPECT_EQ(b.field, a.field);
  EXPECT_EQ(b.history.first_hour, a.history.first_hour);
  ASSERT_EQ(b.history.values.size(), a.history.values.size());
  EXPECT_EQ(std::memcmp(b.history.values.data(), a.history.values.data(), 8 * a.history.values.size()), 0);
  EXPECT_EQ(b.latest, a.latest);
  ASSERT_TRUE(b.state.has_value());
  EXPECT_EQ(b.state->errors, state.errors);
  EXPECT_EQ(b.state->holt_winters.alpha, state.holt_winters.alpha);
  EXPECT_EQ(b.state->holt_winters_fit, state.holt_winters_fit);
  ASSERT_EQ(b.state->pending.size(), 1u);
  EXPECT_EQ(b.state->pending[0].means, state.pending[0].means);
  SeriesOptions o;
  o.history_days = 7;
  SeriesForecaster f(o);
  // Written with 6 books (5 models and the ensemble): a forecaster of 8 (the local ridge, the
  // selected forecast) refuses it, as the processor does, and rebuilds from the hours.
  EXPECT_FALSE(f.RestoreState(c.series[0].history, state).ok());
  f.Restore(c.series[0].history);
  EXPECT_EQ(f.last_closed(), state.last_closed);
  ForecastIssue issue;
  ASSERT_TRUE(f.Close(f.last_closed() + 1, 12.5, &issue));
  EXPECT_EQ(issue.origin, kStartHour + 49);
}

}  // namespace
}  // namespace mare::forecast
