// The batch recompute against the stream's own RollupState on the same readings: the same
// windows, count/min/max/first/last exactly equal, mean/stddev within 1e-9 relative; and the
// same message text when the readings arrive in event-time order.
#include "batch/recompute.h"

#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <random>
#include <set>

#include "batch/batch_metrics.h"
#include "batch/batch_rollup.h"
#include "batch/reconcile.h"
#include "common/scratch_dir.h"
#include "processors/rollup/rollup_state.h"
#include "processors/rollup/test_util.h"
#include "sinks/rollup_message.h"

namespace mare::batch {
namespace {

constexpr int64_t kSecond = 1'000'000;
constexpr int64_t kT0 = 1705795200LL * kSecond;  // 2024-01-21 00:00:00 UTC

struct TestReading {
  uint32_t sensor;
  int64_t ts;
  std::vector<std::pair<std::string, double>> numbers;
};

class RecomputeTest : public ::testing::Test {
 protected:
  ScratchDir scratch_{"mare-batch-test"};
  metrics::Registry registry_;
  std::unique_ptr<store::Store> store_;
  std::vector<rollup::Resolution> resolutions_ = *rollup::ParseResolutions("1m,1h,1d");

  void SetUp() override {
    store::StoreOptions options;
    options.dir = scratch_.path();
    options.compaction_thread = false;
    auto s = store::Store::Open(options, &registry_);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    store_ = std::move(*s);
  }

  // Into the store in arrival order, flushed into a segment every `flush_every` readings (the
  // rest stays in the memtable), so that an hour's rows lie in several segments.
  void Store(const std::vector<TestReading>& readings, size_t flush_every) {
    int64_t flushes = 0;
    for (size_t at = 0; at < readings.size(); at += flush_every) {
      size_t end = std::min(readings.size(), at + flush_every);
      store_->Write([&](store::Store::Batch& b) {
        for (size_t i = at; i < end; ++i) {
          Reading r;
          r.timestamp_us = readings[i].ts;
          r.sensor_id = readings[i].sensor;
          r.has_location = true;
          r.lat = 42.5;
          r.lon = 3.1;
          for (const auto& [name, v] : readings[i].numbers) r.numbers.push_back({name, v});
          b.Add(r);
        }
      });
      if (end < readings.size()) {
        ASSERT_TRUE(store_->Flush({++flushes}).ok());
      }
    }
  }

  // The stream's rollups of the readings in arrival order (one partition, lateness beyond any
  // disorder here, so every reading counts), upserted as a consumer does: key -> message.
  std::map<std::string, rollup::testing::Upserted> Stream(const std::vector<TestReading>& readings) {
    rollup::RollupState state({.resolutions = resolutions_, .lateness_us = 365LL * 86400 * kSecond, .partitions = 1});
    std::map<std::string, rollup::testing::Upserted> table;
    std::vector<NumberField> numbers;
    for (size_t i = 0; i < readings.size(); ++i) {
      numbers.clear();
      for (const auto& [name, v] : readings[i].numbers) numbers.push_back({name, v});
      EXPECT_TRUE(state.Add(0, static_cast<int64_t>(i), readings[i].ts, readings[i].sensor, numbers));
      if (i % 997 == 0) {  // emissions along the way, as the processor's, evict nothing here
        std::vector<rollup::RollupMessage> out;
        state.Emit(&out);
        rollup::testing::UpsertAll(&table, out);
      }
    }
    std::vector<rollup::RollupMessage> out;
    state.Emit(&out);
    rollup::testing::UpsertAll(&table, out);
    return table;
  }

  std::map<std::string, std::string> Batch(int64_t from, int64_t to, std::vector<uint32_t> sensors = {}) {
    std::map<std::string, std::string> out;
    auto summary = Recompute(*store_, {.resolutions = resolutions_, .from_us = from, .to_us = to, .sensors = sensors},
                             [&](std::span<const BatchRollup> rollups) {
                               for (const BatchRollup& r : rollups) {
                                 std::string json;
                                 AppendRollupJson(r, resolutions_[r.resolution], &json);
                                 EXPECT_TRUE(out.emplace(RollupKey(r, resolutions_[r.resolution]), json).second);
                               }
                               return Status::OK();
                             });
    EXPECT_TRUE(summary.ok()) << summary.status().ToString();
    return out;
  }
};

sinks::RollupMessage Parse(std::string_view json) {
  sinks::RollupReader reader;
  sinks::RollupMessage m;
  Status s = reader.Read(json, &m);
  EXPECT_TRUE(s.ok()) << s.ToString();
  return m;
}

bool Near(double a, double b) { return a == b || std::fabs(a - b) <= 1e-9 * std::max(std::fabs(a), std::fabs(b)); }

// Random readings of 3 sensors over two days and a bit, arriving out of order by up to a
// minute, with equal timestamps, fields that come and go, and a tie of values at the same time.
std::vector<TestReading> Disordered() {
  std::mt19937_64 rng(42);
  std::uniform_real_distribution<double> noise(-3, 3);
  std::vector<TestReading> out;
  for (int64_t t = 0; t < 2 * 86400 + 7200; t += 7) {
    for (uint32_t sensor : {1u, 2u, 9u}) {
      TestReading r{sensor, kT0 + t * kSecond + static_cast<int64_t>(rng() % 3) * 500'000, {}};
      r.numbers.push_back({"temperature", std::round((15 + 5 * std::sin(t / 9000.0) + noise(rng)) * 100) / 100});
      if (rng() % 4 != 0) r.numbers.push_back({"pressure", 1000 + noise(rng) * 7.123456789});
      if (sensor == 9 && t % 1400 == 0) r.numbers.push_back({"wave_height", noise(rng) + 4});
      out.push_back(r);
      if (rng() % 50 == 0) {  // another reading at the very same time, other values
        TestReading twin = r;
        twin.numbers = {{"temperature", r.numbers[0].second + 1.25}};
        out.push_back(twin);
      }
    }
  }
  // Disorder: swap neighbours up to ~60 s apart, keeping each sensor's set of readings.
  for (size_t i = 0; i + 20 < out.size(); i += 3) {
    if (rng() % 3 == 0) std::swap(out[i], out[i + rng() % 20]);
  }
  return out;
}

// What the store keeps of readings: one per sensor and time, the later copy (in its place).
// The stream, until it drops copies itself, counts both: it is compared on this set.
std::vector<TestReading> StoredCopies(const std::vector<TestReading>& readings) {
  std::set<std::pair<uint32_t, int64_t>> seen;
  std::vector<TestReading> out;
  for (auto it = readings.rbegin(); it != readings.rend(); ++it) {
    if (seen.insert({it->sensor, it->ts}).second) out.push_back(*it);
  }
  std::reverse(out.begin(), out.end());
  return out;
}

TEST_F(RecomputeTest, EqualsTheStreamOnTheSameReadings) {
  std::vector<TestReading> readings = Disordered();
  Store(readings, 20'000);
  ASSERT_LT(StoredCopies(readings).size(), readings.size()) << "the data holds second copies";
  auto stream = Stream(StoredCopies(readings));
  auto batch = Batch(kT0, kT0 + 3 * 86400 * kSecond);
  ASSERT_EQ(batch.size(), stream.size());
  size_t compared = 0;
  for (const auto& [key, upserted] : stream) {
    auto it = batch.find(key);
    ASSERT_NE(it, batch.end()) << key;
    sinks::RollupMessage s = Parse(upserted.value), b = Parse(it->second);
    EXPECT_EQ(b.count, s.count) << key;
    EXPECT_EQ(b.revision, s.revision) << key;
    EXPECT_EQ(b.min, s.min) << key;
    EXPECT_EQ(b.max, s.max) << key;
    EXPECT_EQ(b.first, s.first) << key;
    EXPECT_EQ(b.last, s.last) << key;
    EXPECT_TRUE(Near(b.mean, s.mean)) << key << ": " << b.mean << " vs " << s.mean;
    EXPECT_TRUE(Near(b.stddev, s.stddev)) << key << ": " << b.stddev << " vs " << s.stddev;
    EXPECT_EQ(b.source, "batch");
    ++compared;
  }
  // 3 sensors x (3 days + 2 x 24 + 2 hours + 2 x 1440 + 120 minutes) of temperature, and more fields.
  EXPECT_GT(compared, 3u * (3 + 50 + 3000));
}

// In event-time order the stream's Welford sees the same values in the same order: the same
// text, bit for bit, but for `final` and `source`.
TEST_F(RecomputeTest, SameTextWhenReadingsArriveInOrder) {
  std::vector<TestReading> readings = Disordered();
  std::stable_sort(readings.begin(), readings.end(), [](const TestReading& a, const TestReading& b) {
    return a.ts < b.ts;
  });
  Store(readings, 50'000);
  auto stream = Stream(StoredCopies(readings));
  auto batch = Batch(kT0, kT0 + 3 * 86400 * kSecond);
  ASSERT_EQ(batch.size(), stream.size());
  for (const auto& [key, upserted] : stream) {
    std::string text = batch.at(key);
    const std::string suffix = ",\"final\":true,\"source\":\"batch\"}";
    ASSERT_TRUE(text.ends_with(suffix));
    std::string expected = upserted.value.substr(0, upserted.value.rfind(",\"final\":"));
    EXPECT_EQ(text.substr(0, text.size() - suffix.size()), expected) << key;
  }
}

// Equal event times: the store keeps the last copy, wherever the earlier ones were (a segment,
// the memtable), and the batch counts it once.
TEST_F(RecomputeTest, ACopyReplacesTheStoredReadingAcrossSegments) {
  std::vector<TestReading> readings = {
      {5, kT0 + 10 * kSecond, {{"temperature", 1.5}}}, {5, kT0 + 10 * kSecond, {{"temperature", 2.5}}},
      {5, kT0 + 50 * kSecond, {{"temperature", 3.5}}}, {5, kT0 + 50 * kSecond, {{"temperature", 4.5}}},
      {5, kT0 + 10 * kSecond, {{"temperature", 0.5}}}, {5, kT0 + 50 * kSecond, {{"temperature", 5.5}}},
  };
  Store(readings, 2);  // two segments, and two readings in the memtable
  auto batch = Batch(kT0, kT0 + 60 * kSecond);
  sinks::RollupMessage m = Parse(batch.at("5/temperature/1m/" + std::to_string(kT0)));
  EXPECT_EQ(m.count, 2);
  EXPECT_EQ(m.first, 0.5);
  EXPECT_EQ(m.last, 5.5);
  auto stream = Stream(StoredCopies(readings));
  sinks::RollupMessage s = Parse(stream.at("5/temperature/1m/" + std::to_string(kT0)).value);
  EXPECT_EQ(s.first, m.first);
  EXPECT_EQ(s.last, m.last);
}

TEST_F(RecomputeTest, PeriodIsWidenedToWholeDaysAndSensorsFiltered) {
  std::vector<TestReading> readings;
  for (int64_t m = 0; m < 3 * 1440; m += 30) {
    for (uint32_t sensor : {1u, 2u}) readings.push_back({sensor, kT0 + m * 60 * kSecond, {{"temperature", m / 10.0}}});
  }
  Store(readings, 1000);
  // 06:00 on day 2 to 01:00 on day 3: days 2 and 3 whole, sensor 2 only.
  auto batch = Batch(kT0 + 30 * 3600 * kSecond, kT0 + 49 * 3600 * kSecond, {2});
  size_t days = 0;
  for (const auto& [key, json] : batch) {
    sinks::RollupMessage m = Parse(json);
    EXPECT_EQ(m.sensor_id, 2u);
    EXPECT_GE(m.window_start_us, kT0 + 86400 * kSecond);
    EXPECT_LT(m.window_start_us, kT0 + 3 * 86400 * kSecond);
    if (m.resolution == "1d") {
      ++days;
      EXPECT_EQ(m.count, 48);
    }
  }
  EXPECT_EQ(days, 2u);
  EXPECT_EQ(batch.size(), 2u + 48 + 96);
  auto [from, to] = WidenedPeriod(resolutions_, kT0 + 30 * 3600 * kSecond, kT0 + 49 * 3600 * kSecond);
  EXPECT_EQ(from, kT0 + 86400 * kSecond);
  EXPECT_EQ(to, kT0 + 3 * 86400 * kSecond);
}

TEST_F(RecomputeTest, RejectsResolutionsThatDoNotNest) {
  auto r = Recompute(*store_, {.resolutions = *rollup::ParseResolutions("5m,7m"), .from_us = kT0, .to_us = kT0 + kSecond},
                     [](std::span<const BatchRollup>) { return Status::OK(); });
  EXPECT_FALSE(r.ok());
}

// Reconcile: equal rollups are equal; an edited row, a missing row and readings dropped as late
// are each found with their cause.
TEST_F(RecomputeTest, ReconcileFindsAndExplainsDifferences) {
  std::vector<TestReading> readings;
  for (int64_t s = 0; s < 7200; s += 10) readings.push_back({3, kT0 + s * kSecond, {{"temperature", 10 + s / 1000.0}}});
  Store(readings, 400);
  RollupsByKey stream;
  for (const auto& [key, upserted] : Stream(readings)) {
    sinks::RollupMessage m = Parse(upserted.value);
    stream.emplace(KeyOf(m), m);
  }
  ReconcileOptions options{.recompute = {.resolutions = resolutions_, .from_us = kT0, .to_us = kT0 + 7200 * kSecond}};
  auto same = Reconcile(*store_, options, stream, {}, &registry_);
  ASSERT_TRUE(same.ok()) << same.status().ToString();
  EXPECT_TRUE(same->differences.empty());
  EXPECT_EQ(same->compared, 120u + 2 + 1);

  std::string edited = "3/temperature/1h/" + std::to_string(kT0);
  stream.at(edited).max = 99;
  std::string gone = "3/temperature/1m/" + std::to_string(kT0 + 600 * kSecond);
  stream.erase(gone);
  std::string fewer = "3/temperature/1m/" + std::to_string(kT0 + 1200 * kSecond);
  stream.at(fewer).count -= 2;
  ScratchDir dead("mare-batch-dead-letter");
  std::string path = dead.path() + "/dead-letter.log";
  {
    std::FILE* f = std::fopen(path.c_str(), "w");
    ASSERT_NE(f, nullptr);
    for (int s : {1210, 1220}) {
      std::string raw = "{\"timestamp\":" + std::to_string(1705795200 + s) + ",\"sensor_id\":3,\"temperature\":1}";
      std::fprintf(f, "2024-01-21T01:00:00.000000Z udp late %zu event time is too old\n%s\n", raw.size(), raw.c_str());
    }
    std::fclose(f);
  }
  LateReadings late;
  ASSERT_TRUE(late.Load({path + ".1", path}).ok());
  EXPECT_EQ(late.size(), 2u);
  auto report = Reconcile(*store_, options, stream, {.late = &late}, &registry_);
  ASSERT_TRUE(report.ok());
  ASSERT_EQ(report->differences.size(), 3u);
  std::map<std::string, const Difference*> by_key;
  for (const auto& d : report->differences) by_key[d.key] = &d;
  EXPECT_EQ(by_key.at(edited)->kind, Difference::Kind::kValues);
  EXPECT_NE(by_key.at(edited)->cause.find("changed outside mare"), std::string::npos) << by_key.at(edited)->cause;
  EXPECT_EQ(by_key.at(gone)->kind, Difference::Kind::kMissingInStream);
  EXPECT_NE(by_key.at(gone)->cause.find("imported"), std::string::npos) << by_key.at(gone)->cause;
  EXPECT_EQ(by_key.at(fewer)->kind, Difference::Kind::kCount);
  EXPECT_NE(by_key.at(fewer)->cause.find("2 readings dropped as too late"), std::string::npos) << by_key.at(fewer)->cause;
  EXPECT_EQ(registry_.GetGauge(batch_metrics::kDifferingWindows).value(), 3.0);

  // The same missing window, when the rollups topic has it: the sink lost it. And readings the
  // stream lacks before the oldest reading still in the raw topic: a gap of the log's retention.
  std::set<std::string> topic_keys = {gone};
  std::string early = "3/temperature/1m/" + std::to_string(kT0 + 60 * kSecond);
  stream.at(early).count -= 1;
  auto explained = Reconcile(*store_, options, stream,
                             {.late = &late, .topic_keys = &topic_keys, .raw_retained_since_us = kT0 + 300 * kSecond});
  ASSERT_TRUE(explained.ok());
  ASSERT_EQ(explained->differences.size(), 4u);
  for (const auto& d : explained->differences) by_key[d.key] = &d;
  EXPECT_NE(by_key.at(gone)->cause.find("missing in the sink"), std::string::npos) << by_key.at(gone)->cause;
  EXPECT_NE(by_key.at(early)->cause.find("gap of the log's retention"), std::string::npos) << by_key.at(early)->cause;
  EXPECT_NE(by_key.at(fewer)->cause.find("2 readings dropped as too late"), std::string::npos) << by_key.at(fewer)->cause;
}

}  // namespace
}  // namespace mare::batch
