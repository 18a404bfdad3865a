// The buoy simulator: deterministic, well-formed, physically sane, with faults at the rate
// asked for.
#include "feeds/simulator.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "common/time.h"
#include "reading/timestamp.h"
#include "feeds/simulate.h"
#include "feeds/test_util.h"

namespace mare::feeds {
namespace {

using testing::ParseLine;
using testing::Parsed;
using testing::ReadFile;
using testing::SplitLines;
using testing::TempDir;

const int64_t kJan21 = *ParseTimestampLoose("2024-01-21 10:00:00");
const int64_t kNewYear = *ParseTimestampLoose("2024-01-01 00:00:00");

std::string Simulate(const TempDir& dir, SimulateConfig config, const std::string& name = "out.ndjson") {
  std::string path = dir.File(name);
  config.targets = {"file://" + path};
  std::atomic<bool> stop{false};
  Result<FeedOutcome> outcome = RunSimulate(config, stop);
  EXPECT_TRUE(outcome.ok()) << outcome.status().ToString();
  return ReadFile(path);
}

// "YYYY-MM-DD hh:mm:ss.ffffff", digits where digits belong.
bool IsObservatoryTimestamp(const std::string& t) {
  const std::string shape = "0000-00-00 00:00:00.000000";
  if (t.size() != shape.size()) return false;
  for (size_t i = 0; i < t.size(); ++i) {
    if (shape[i] == '0' ? !std::isdigit(static_cast<unsigned char>(t[i])) : t[i] != shape[i]) return false;
  }
  return true;
}

SimulateConfig FastConfig(uint64_t seed) {
  SimulateConfig c;
  c.seed = seed;
  c.sensors = 4;
  c.count = 500;
  c.flat_out = true;
  c.start_micros = kJan21;
  c.fault_probability = 0.01;
  return c;
}

TEST(Simulate, SameSeedSameBytesOtherSeedOtherBytes) {
  TempDir dir;
  std::string a = Simulate(dir, FastConfig(7), "a");
  std::string b = Simulate(dir, FastConfig(7), "b");
  std::string c = Simulate(dir, FastConfig(8), "c");
  ASSERT_FALSE(a.empty());
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
}

TEST(Simulate, CountTimesSensorsReadingsInTimeOrder) {
  TempDir dir;
  SimulateConfig config = FastConfig(1);
  config.sensors = 7;
  config.count = 60;
  config.rate = 2;  // one tick every 500 ms
  std::vector<std::string> lines = SplitLines(Simulate(dir, config));
  ASSERT_EQ(lines.size(), 7u * 60u);
  for (size_t i = 0; i < lines.size(); ++i) {
    Parsed p = ParseLine(lines[i]);
    ASSERT_TRUE(p.error.empty()) << p.error << ": " << lines[i];
    size_t tick = i / 7;
    EXPECT_EQ(p.sensor_id, i % 7 + 1) << lines[i];
    EXPECT_EQ(p.timestamp, FormatReadingTime(kJan21 + static_cast<int64_t>(tick) * 500000)) << lines[i];
  }
}

TEST(Simulate, EveryLineHasTheReadingShape) {
  TempDir dir;
  std::vector<std::string> lines = SplitLines(Simulate(dir, FastConfig(3)));
  ASSERT_EQ(lines.size(), 2000u);
  for (const std::string& line : lines) {
    Parsed p = ParseLine(line);
    ASSERT_TRUE(p.error.empty()) << p.error << ": " << line;
    EXPECT_EQ(p.keys.front(), "timestamp");
    EXPECT_TRUE(IsObservatoryTimestamp(p.timestamp)) << p.timestamp;
    EXPECT_TRUE(p.has_sensor_id);
    ASSERT_TRUE(p.lat && p.lon) << line;
    for (const auto& [name, value] : p.numbers) EXPECT_TRUE(IsFieldName(name)) << name;
    for (const char* f : {"temperature", "pressure", "water_temperature", "wave_height"}) {
      EXPECT_TRUE(p.numbers.count(f)) << f << " missing in " << line;
    }
    ASSERT_TRUE(p.texts.count("status")) << line;
    const std::string& status = p.texts["status"];
    EXPECT_TRUE(status == "ok" || status == "stuck" || status == "spike" || status == "missing") << status;
    EXPECT_EQ(p.numbers.count("humidity") == 0, status == "missing") << line;
    // Measurements carry two decimals at most, positions six.
    for (const auto& [name, value] : p.numbers) EXPECT_NEAR(value * 100, std::round(value * 100), 1e-6) << name;
    EXPECT_NEAR(*p.lat * 1e6, std::round(*p.lat * 1e6), 1e-3);
  }
}

TEST(Simulate, OneSensorsStreamDoesNotDependOnTheFleet) {
  TempDir dir;
  SimulateConfig small = FastConfig(5);
  small.sensors = 2;
  SimulateConfig large = FastConfig(5);
  large.sensors = 9;
  auto sensor2 = [](const std::string& text) {
    std::vector<std::string> out;
    for (const std::string& line : SplitLines(text)) {
      if (ParseLine(line).sensor_id == 2) out.push_back(line);
    }
    return out;
  };
  std::vector<std::string> a = sensor2(Simulate(dir, small, "small"));
  ASSERT_EQ(a.size(), 500u);
  EXPECT_EQ(a, sensor2(Simulate(dir, large, "large")));
}

TEST(Simulate, FlatOutDefaultStartPutsNoReadingInTheFuture) {
  SimulateConfig config;
  config.flat_out = true;
  config.count = 3600;
  config.rate = 1;
  const int64_t now = NowMicros();
  EXPECT_EQ(DefaultSimulateStart(config, now), now - 3600 * kMicrosPerSecond);
  config.flat_out = false;
  EXPECT_EQ(DefaultSimulateStart(config, now), now);

  TempDir dir;
  SimulateConfig run = FastConfig(1);
  run.start_micros.reset();
  std::vector<std::string> lines = SplitLines(Simulate(dir, run));
  ASSERT_FALSE(lines.empty());
  int64_t last = *ParseTimestampLoose(ParseLine(lines.back()).timestamp);
  EXPECT_LE(last, NowMicros());
  EXPECT_GT(last, NowMicros() - 60 * kMicrosPerSecond);
}

TEST(Simulate, PacedModeKeepsToTheClock) {
  TempDir dir;
  SimulateConfig config;
  config.sensors = 3;
  config.rate = 20;  // a tick every 50 ms
  config.count = 10;
  const int64_t begin = MonotonicMicros();
  std::vector<std::string> lines = SplitLines(Simulate(dir, config));
  const int64_t took = MonotonicMicros() - begin;
  EXPECT_EQ(lines.size(), 30u);
  EXPECT_GE(took, 9 * 50000);  // ticks 0..9, the last due 450 ms after the first
  EXPECT_LT(took, 5 * kMicrosPerSecond);
}

TEST(Simulate, DurationStopsTheRun) {
  TempDir dir;
  SimulateConfig config;
  config.sensors = 2;
  config.rate = 100;
  config.duration_micros = 300'000;
  const int64_t begin = MonotonicMicros();
  std::vector<std::string> lines = SplitLines(Simulate(dir, config));
  const int64_t took = MonotonicMicros() - begin;
  EXPECT_GE(took, 250'000);
  EXPECT_LT(took, 3 * kMicrosPerSecond);
  EXPECT_GE(lines.size(), 20u);   // ~60 expected
  EXPECT_LE(lines.size(), 70u);
}

TEST(Simulate, RejectsBadOptionsAndUnreachableTargets) {
  std::atomic<bool> stop{false};
  SimulateConfig config;
  config.sensors = 0;
  EXPECT_FALSE(RunSimulate(config, stop).ok());
  config = SimulateConfig();
  config.rate = 0;
  EXPECT_FALSE(RunSimulate(config, stop).ok());
  config = SimulateConfig();
  config.max_rate = 10;  // without --flat-out
  EXPECT_FALSE(RunSimulate(config, stop).ok());
  config = SimulateConfig();
  config.targets = {"tcp://127.0.0.1:1"};  // nothing listens on port 1
  config.count = 1;
  Result<FeedOutcome> r = RunSimulate(config, stop);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("cannot be reached"), std::string::npos) << r.status().ToString();
}

// Physics over a whole year, one reading every 10 minutes, faults off.
TEST(Buoy, StaysPhysicallySaneOverAYear) {
  constexpr int kSensors = 4;
  constexpr int64_t kStep = 600 * kMicrosPerSecond;
  constexpr int kSteps = 366 * 144;
  for (int s = 1; s <= kSensors; ++s) {
    Buoy buoy(s, 42, 0);
    EXPECT_GE(buoy.anchor_lat(), 42.45);
    EXPECT_LE(buoy.anchor_lat(), 42.55);
    EXPECT_GE(buoy.anchor_lon(), 3.18);  // east of the coast: at sea
    EXPECT_LE(buoy.anchor_lon(), 3.30);
    Reading r;
    double jan_air = 0, aug_air = 0, feb_sea = 0, aug_sea = 0, afternoon = 0, night = 0;
    int jan_n = 0, aug_n = 0, feb_n = 0, afternoon_n = 0, night_n = 0;
    double max_step_sea = 0, prev_sea = NAN;
    for (int i = 0; i < kSteps; ++i) {
      int64_t t = kNewYear + i * kStep;
      buoy.Read(t, &r);
      ASSERT_EQ(r.sensor_id, static_cast<uint64_t>(s));
      double air = *r.Number("temperature");
      double humidity = *r.Number("humidity");
      double pressure = *r.Number("pressure");
      double sea = *r.Number("water_temperature");
      double waves = *r.Number("wave_height");
      ASSERT_GE(air, -3) << FormatReadingTime(t);
      ASSERT_LE(air, 38) << FormatReadingTime(t);
      ASSERT_GE(humidity, 0);
      ASSERT_LE(humidity, 100);
      ASSERT_GE(pressure, 985);
      ASSERT_LE(pressure, 1041);
      ASSERT_GE(sea, 10);
      ASSERT_LE(sea, 27);
      ASSERT_GE(waves, 0);
      ASSERT_LE(waves, 9);
      EXPECT_EQ(*r.Text("status"), "ok");
      // Inside the 50 m watch circle (plus rounding).
      double dy = (r.location->lat - buoy.anchor_lat()) * 111320;
      double dx = (r.location->lon - buoy.anchor_lon()) * 111320 * std::cos(buoy.anchor_lat() * M_PI / 180);
      ASSERT_LE(std::hypot(dx, dy), 50.5);
      if (!std::isnan(prev_sea)) max_step_sea = std::max(max_step_sea, std::fabs(sea - prev_sea));
      prev_sea = sea;
      int day = i / 144;
      int hour = (i % 144) / 6;
      if (day < 31) jan_air += air, ++jan_n;
      if (day >= 31 && day < 59) feb_sea += sea, ++feb_n;
      if (day >= 213 && day < 244) aug_air += air, aug_sea += sea, ++aug_n;
      if (hour == 14) afternoon += air, ++afternoon_n;
      if (hour == 2) night += air, ++night_n;
    }
    EXPECT_NEAR(jan_air / jan_n, 10.5, 1.5);
    EXPECT_NEAR(aug_air / aug_n, 23.5, 1.5);
    EXPECT_NEAR(feb_sea / feb_n, 13.3, 1.0);
    EXPECT_NEAR(aug_sea / aug_n, 22.7, 1.0);
    EXPECT_GT(afternoon / afternoon_n - night / night_n, 4.0);  // the diurnal cycle, about +-3 degC
    EXPECT_LT(max_step_sea, 0.5);  // the sea has inertia: no jumps in 10 minutes
  }
}

// At one reading per second, the noise must stay tame (AR steps scale with the time step).
TEST(Buoy, StaysSaneAtOneReadingPerSecondForThreeDays) {
  Buoy buoy(3, 1, 0);
  Reading r;
  double min_p = 1e9, max_p = 0, max_air_step = 0, prev_air = NAN;
  for (int i = 0; i < 3 * 86400; ++i) {
    buoy.Read(kJan21 + i * kMicrosPerSecond, &r);
    double air = *r.Number("temperature");
    double p = *r.Number("pressure");
    ASSERT_GE(air, -3);
    ASSERT_LE(air, 25);
    min_p = std::min(min_p, p);
    max_p = std::max(max_p, p);
    if (!std::isnan(prev_air)) max_air_step = std::max(max_air_step, std::fabs(air - prev_air));
    prev_air = air;
  }
  EXPECT_GE(min_p, 985);
  EXPECT_LE(max_p, 1041);
  EXPECT_GT(max_p - min_p, 3);     // fronts move the pressure over three days
  EXPECT_LT(max_air_step, 0.3);  // no jumps between consecutive seconds without faults
}

TEST(Buoy, FaultsComeAtTheConfiguredRateAndEachKindShows) {
  constexpr double kP = 0.002;
  constexpr int kSensors = 10;
  constexpr int kReadings = 30000;
  int starts = 0, opportunities = 0;
  std::map<std::string, int> kinds;
  for (int s = 1; s <= kSensors; ++s) {
    Buoy faulty(s, 9, kP);
    Buoy clean(s, 9, 0);
    Reading r, c;
    std::string prev_status = "ok";
    double last_ok_temperature = NAN, stuck_value = NAN;
    for (int i = 0; i < kReadings; ++i) {
      int64_t t = kJan21 + i * kMicrosPerSecond;
      faulty.Read(t, &r);
      clean.Read(t, &c);
      const std::string& status = *r.Text("status");
      // Faults never disturb the physics: everything but the faulted value matches.
      ASSERT_EQ(*r.Number("pressure"), *c.Number("pressure"));
      ASSERT_EQ(*r.Number("water_temperature"), *c.Number("water_temperature"));
      double temperature = *r.Number("temperature");
      bool started = status != "ok" && (status != prev_status || status == "spike");
      if (started) {
        ++starts;
        ++kinds[status];
        stuck_value = temperature;
      }
      if (status == "ok" || started) ++opportunities;
      if (status == "ok") {
        EXPECT_EQ(temperature, *c.Number("temperature"));
        ASSERT_NE(r.Number("humidity"), nullptr);
        last_ok_temperature = temperature;
      } else if (status == "stuck") {
        EXPECT_EQ(temperature, stuck_value);
        if (started && !std::isnan(last_ok_temperature)) {
          EXPECT_EQ(temperature, last_ok_temperature);
        }
      } else if (status == "spike") {
        EXPECT_NEAR(temperature - *c.Number("temperature"), 25, 0.011);
      } else if (status == "missing") {
        EXPECT_EQ(r.Number("humidity"), nullptr);
        EXPECT_EQ(temperature, *c.Number("temperature"));
      } else {
        ADD_FAILURE() << "unknown status " << status;
      }
      prev_status = status;
    }
  }
  double expected = kP * opportunities;
  EXPECT_NEAR(starts, expected, 0.2 * expected) << "starts " << starts << " of " << opportunities;
  EXPECT_GT(kinds["stuck"], 0);
  EXPECT_GT(kinds["spike"], 0);
  EXPECT_GT(kinds["missing"], 0);
}

TEST(Buoy, NoFaultsWhenTheProbabilityIsZero) {
  Buoy buoy(1, 1, 0);
  Reading r;
  for (int i = 0; i < 50000; ++i) {
    buoy.Read(kJan21 + i * kMicrosPerSecond, &r);
    ASSERT_EQ(*r.Text("status"), "ok");
  }
}

}  // namespace
}  // namespace mare::feeds
