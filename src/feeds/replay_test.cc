// `mare replay` end to end into a file target: the real NDBC archive, pacing, summaries.
#include "feeds/replay.h"

#include <gtest/gtest.h>

#include <chrono>
#include <map>
#include <thread>

#include "common/time.h"
#include "reading/timestamp.h"
#include "feeds/test_util.h"

namespace mare::feeds {
namespace {

using testing::ParseLine;
using testing::Parsed;
using testing::ReadFile;
using testing::SplitLines;
using testing::TempDir;
using testing::WriteFile;

const std::string kReplayArchive = std::string(MARE_TEST_DATA_DIR) + "/ndbc_44005_2012.txt";

// Each NDBC field's missing-value code.
const std::map<std::string, double> kCodes = {
    {"wind_direction", 999},      {"wind_speed", 99},          {"wind_gust", 99},       {"wave_height", 99},
    {"dominant_wave_period", 99}, {"average_wave_period", 99}, {"mean_wave_direction", 999},
    {"pressure", 9999},           {"temperature", 999},        {"water_temperature", 999},
    {"dew_point", 999},           {"visibility", 99},          {"tide", 99}};

TEST(Replay, TheNdbcArchiveAsNdjson) {
  TempDir dir;
  ReplayConfig config;
  config.path = kReplayArchive;
  config.targets = {"file://" + dir.File("out.ndjson")};
  config.location = Location{43.2, -69.13};
  std::atomic<bool> stop{false};
  Result<FeedOutcome> outcome = RunReplay(config, stop);
  ASSERT_TRUE(outcome.ok()) << outcome.status().ToString();
  EXPECT_EQ(outcome->summary, "replay: sent 8347 readings to 1 target(s), 0 send errors");
  EXPECT_EQ(outcome->readings, 8347u);
  EXPECT_EQ(outcome->skipped_rows, 0u);

  std::vector<std::string> lines = SplitLines(ReadFile(dir.File("out.ndjson")));
  ASSERT_EQ(lines.size(), 8347u);
  size_t without_wind = 0, without_pressure = 0;
  for (const std::string& line : lines) {
    Parsed p = ParseLine(line);
    ASSERT_TRUE(p.error.empty()) << p.error << ": " << line;
    ASSERT_EQ(p.sensor_id, 44005u);  // from the file name
    ASSERT_EQ(*p.lat, 43.2);
    ASSERT_EQ(*p.lon, -69.13);
    EXPECT_EQ(p.numbers.count("mean_wave_direction") + p.numbers.count("visibility") + p.numbers.count("tide"), 0u);
    for (const auto& [name, value] : p.numbers) {
      // No column's own missing code (a wind direction of 99 degrees or a pressure of 999 hPa
      // is real; 999 degrees and 9999 hPa are not).
      ASSERT_TRUE(kCodes.count(name)) << name;
      ASSERT_NE(value, kCodes.at(name)) << line;
    }
    without_wind += p.numbers.count("wind_speed") == 0;
    without_pressure += p.numbers.count("pressure") == 0;
  }
  EXPECT_EQ(without_wind, 377u);
  EXPECT_EQ(without_pressure, 3u);
  EXPECT_EQ(lines.front().substr(0, 42), "{\"timestamp\": \"2011-12-31 23:50:00.000000\"");
}

TEST(Replay, SpeedCompressesArchiveTime) {
  TempDir dir;
  std::string csv = dir.File("hours.csv");
  WriteFile(csv,
            "timestamp,v\n2024-01-21 10:00:00,1\n2024-01-21 11:00:00,2\n"
            "2024-01-21 12:00:00,3\nbad,4\n2024-01-21 13:00:00,5\n");
  ReplayConfig config;
  config.path = csv;
  config.targets = {"file://" + dir.File("out.ndjson")};
  config.speed = 36000;  // an hour of archive in 100 ms
  std::atomic<bool> stop{false};
  int64_t begin = MonotonicMicros();
  Result<FeedOutcome> outcome = RunReplay(config, stop);
  int64_t took = MonotonicMicros() - begin;
  ASSERT_TRUE(outcome.ok()) << outcome.status().ToString();
  EXPECT_GE(took, 290'000);  // the last row is due 300 ms after the first
  EXPECT_LT(took, 3 * kMicrosPerSecond);
  EXPECT_EQ(outcome->summary, "replay: sent 4 readings to 1 target(s), 0 send errors, 1 rows skipped");
  std::vector<std::string> lines = SplitLines(ReadFile(dir.File("out.ndjson")));
  ASSERT_EQ(lines.size(), 4u);
  EXPECT_EQ(ParseLine(lines[3]).numbers["v"], 5);
  EXPECT_EQ(ParseLine(lines[3]).sensor_id, 1u);  // no station number in "hours.csv"
}

TEST(Replay, StopsWhenAsked) {
  TempDir dir;
  ReplayConfig config;
  config.path = kReplayArchive;
  config.targets = {"file://" + dir.File("out.ndjson")};
  config.speed = 3600;  // the year would take 2.3 hours
  std::atomic<bool> stop{false};
  std::thread stopper([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    stop = true;
  });
  int64_t begin = MonotonicMicros();
  Result<FeedOutcome> outcome = RunReplay(config, stop);
  stopper.join();
  ASSERT_TRUE(outcome.ok());
  EXPECT_LT(MonotonicMicros() - begin, 2 * kMicrosPerSecond);
  EXPECT_GE(outcome->readings, 1u);
  EXPECT_LE(outcome->readings, 3u);
  EXPECT_EQ(SplitLines(ReadFile(dir.File("out.ndjson"))).size(), outcome->readings);
}

TEST(Replay, RejectsBadInput) {
  std::atomic<bool> stop{false};
  ReplayConfig config;
  config.path = "/nonexistent/file.txt";
  config.targets = {"-"};
  EXPECT_FALSE(RunReplay(config, stop).ok());
  EXPECT_FALSE(ParseLocation("42.5").ok());
  EXPECT_FALSE(ParseLocation("91,3").ok());
  EXPECT_EQ(ParseLocation(" 42.4886, 3.1858")->lon, 3.1858);
  EXPECT_EQ(*ParseMissingCodes("99.0,999"), (std::vector<double>{99, 999}));
  EXPECT_FALSE(ParseMissingCodes("99,x").ok());
}

}  // namespace
}  // namespace mare::feeds
