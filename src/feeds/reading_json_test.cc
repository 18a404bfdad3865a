// The wire form of a reading: timestamps, numbers, absent fields, escaping.
#include "feeds/reading_json.h"

#include <gtest/gtest.h>
#include <simdjson.h>

#include <cmath>
#include <limits>

#include "reading/timestamp.h"

namespace mare::feeds {
namespace {

constexpr int64_t kObservatoryExample = 1705831564095931;  // 2024-01-21 10:06:04.095931 UTC

TEST(ReadingJson, WritesTheObservatoryShape) {
  Reading r;
  r.time_micros = kObservatoryExample;
  r.sensor_id = 1;
  r.numbers = {{"temperature", 20.9}, {"humidity", 59.22}, {"pressure", 1001.87}};
  r.location = Location{42.488629, 3.185785};
  std::string out;
  AppendReadingJson(r, &out);
  EXPECT_EQ(out,
            "{\"timestamp\": \"2024-01-21 10:06:04.095931\", \"temperature\": 20.9, \"humidity\": 59.22, "
            "\"pressure\": 1001.87, \"sensor_id\": 1, \"location\": {\"lon\": 3.185785, \"lat\": 42.488629}}\n");
}

TEST(ReadingJson, LeavesMissingValuesOutAndEscapesText) {
  Reading r;
  r.time_micros = 0;
  r.sensor_id = 44005;
  r.numbers = {{"wind_speed", std::numeric_limits<double>::quiet_NaN()},
               {"tide", std::numeric_limits<double>::infinity()},
               {"wave_height", 0.9}};
  r.texts = {{"status", "a \"quoted\"\\ line\nwith\ttab \x01"}};
  std::string out;
  AppendReadingJson(r, &out);
  EXPECT_EQ(out.find("wind_speed"), std::string::npos);
  EXPECT_EQ(out.find("tide"), std::string::npos);
  EXPECT_EQ(out.find("null"), std::string::npos);
  EXPECT_EQ(out.find("location"), std::string::npos);
  ASSERT_EQ(out.back(), '\n');
  EXPECT_EQ(out.find('\n'), out.size() - 1);  // one line

  simdjson::ondemand::parser parser;
  simdjson::padded_string json(out);
  simdjson::ondemand::document doc = parser.iterate(json);
  std::string_view status;
  ASSERT_EQ(doc["status"].get_string().get(status), simdjson::SUCCESS);
  EXPECT_EQ(status, "a \"quoted\"\\ line\nwith\ttab \x01");
  uint64_t id = 0;
  ASSERT_EQ(doc["sensor_id"].get_uint64().get(id), simdjson::SUCCESS);
  EXPECT_EQ(id, 44005u);
  double waves = 0;
  ASSERT_EQ(doc["wave_height"].get_double().get(waves), simdjson::SUCCESS);
  EXPECT_EQ(waves, 0.9);
}

TEST(ReadingJson, NumbersRoundTripExactly) {
  Reading r;
  for (double v : {0.1, 1008.1, -4.0, 1e-7, 123456.789012, 3.185785}) {
    r.numbers = {{"x", v}};
    std::string out;
    AppendReadingJson(r, &out);
    simdjson::ondemand::parser parser;
    simdjson::padded_string json(out);
    simdjson::ondemand::document doc = parser.iterate(json);
    double back = 0;
    ASSERT_EQ(doc["x"].get_double().get(back), simdjson::SUCCESS) << out;
    EXPECT_EQ(back, v) << out;
  }
}

TEST(FieldNames, NormalizesHeaders) {
  EXPECT_EQ(ToFieldName("Air Temp (C)"), "air_temp_c");
  EXPECT_EQ(ToFieldName("WSPD"), "wspd");
  EXPECT_EQ(ToFieldName("2nd-sensor"), "_2nd_sensor");
  EXPECT_EQ(ToFieldName("  "), "_");
  EXPECT_EQ(ToFieldName(std::string(100, 'a')).size(), kMaxFieldNameBytes);
  EXPECT_TRUE(IsFieldName("water_temperature"));
  EXPECT_TRUE(IsFieldName("_x1"));
  EXPECT_FALSE(IsFieldName("1x"));
  EXPECT_FALSE(IsFieldName("Wind"));
  EXPECT_FALSE(IsFieldName(""));
  for (const char* h : {"Air Temp (C)", "9", "é", "a--b"}) EXPECT_TRUE(IsFieldName(ToFieldName(h))) << h;
}

}  // namespace
}  // namespace mare::feeds
