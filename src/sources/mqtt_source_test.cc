#include "sources/mqtt_source.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "reading/parser.h"

namespace mare {
namespace {

struct Collect : ReadingSink {
  std::vector<uint32_t> ids;
  std::vector<std::string> rejects;
  void OnReading(const Reading& r) override { ids.push_back(r.sensor_id); }
  void OnReject(const Reject& r) override { rejects.push_back(ReasonName(r.reason)); }
};

Collect Parse(const std::string& payload) {
  PaddedBuffer buffer;
  buffer.Assign(payload);
  ReadingParser parser;
  Collect out;
  parser.Parse(buffer.view(), 1'800'000'000'000'000, out);
  return out;
}

TEST(MqttTopic, FindsTheSensorIdLevel) {
  EXPECT_EQ(SensorIdLevel("observatory/{sensor_id}/readings"), 1);
  EXPECT_EQ(SensorIdLevel("{sensor_id}"), 0);
  EXPECT_EQ(SensorIdLevel("a/b/{sensor_id}"), 2);
  EXPECT_EQ(SensorIdLevel("observatory/+/readings"), -1);
  EXPECT_EQ(SensorIdLevel("observatory/{sensor}/readings"), -1);
}

TEST(MqttTopic, AddsTheSensorIdToOneReading) {
  std::string out;
  AddSensorId(R"({"timestamp":"2024-01-21 10:06:04","temperature":20.9})", 7, &out);
  EXPECT_EQ(out, R"({"sensor_id":7,"timestamp":"2024-01-21 10:06:04","temperature":20.9})");
  Collect c = Parse(out);
  EXPECT_EQ(c.ids, std::vector<uint32_t>{7});
  EXPECT_TRUE(c.rejects.empty());
}

TEST(MqttTopic, AddsTheSensorIdToEveryLineAndArrayElementButNotNestedObjects) {
  std::string payload =
      "{\"timestamp\":\"2024-01-21 10:06:04\",\"location\":{\"lat\":42.5,\"lon\":3.1},\"note\":\"a {brace} and \\\" quote\"}\n"
      "[{\"timestamp\":\"2024-01-21 10:06:05\"},{\"timestamp\":\"2024-01-21 10:06:06\",\"location\":{\"lat\":1,\"lon\":2}}]\n"
      "{\"timestamp\":\"2024-01-21 10:06:07\"}";
  std::string out;
  AddSensorId(payload, 4294967295u, &out);
  size_t count = 0;
  for (size_t at = out.find("\"sensor_id\""); at != std::string::npos; at = out.find("\"sensor_id\"", at + 1)) ++count;
  EXPECT_EQ(count, 4u);  // the location objects and the string's braces got none
  Collect c = Parse(out);
  EXPECT_EQ(c.ids, (std::vector<uint32_t>{4294967295u, 4294967295u, 4294967295u, 4294967295u}));
  EXPECT_TRUE(c.rejects.empty());
}

TEST(MqttTopic, AReadingWithItsOwnSensorIdIsADuplicateField) {
  std::string out;
  AddSensorId(R"({"timestamp":"2024-01-21 10:06:04","sensor_id":3})", 7, &out);
  Collect c = Parse(out);
  EXPECT_TRUE(c.ids.empty());
  ASSERT_EQ(c.rejects.size(), 1u);
  EXPECT_EQ(c.rejects[0], "duplicate_field");
}

TEST(MqttTopic, NotJsonStaysRejected) {
  std::string out;
  AddSensorId("this is not json", 7, &out);
  EXPECT_EQ(out, "this is not json");
  Collect c = Parse(out);
  ASSERT_EQ(c.rejects.size(), 1u);
  EXPECT_EQ(c.rejects[0], "not_json");
}

}  // namespace
}  // namespace mare
