#include "sinks/carried_reading.h"

#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <vector>

#include "common/scratch_dir.h"
#include "log/log_with_topics.h"
#include "reading/parser.h"
#include "sinks/raw_reading.h"

namespace mare::sinks {
namespace {

// What ingest appends for a reading: the record whose numbers are the parser's, its event time
// the reading's timestamp, its key the sensor id.
struct Appended {
  std::string json;
  std::string key;
  int64_t timestamp_us = 0;
  std::vector<std::string> names;  // the numbers' names, owned
  std::vector<NumberField> numbers;

  log::ConsumedRecord Record() const {
    log::ConsumedRecord r;
    r.timestamp_us = timestamp_us;
    r.key = key;
    r.value = json;
    r.has_numbers = true;
    r.numbers = numbers;
    return r;
  }
};

Appended AsIngestAppends(const std::string& json) {
  RawReadingReader parser(1 << 20);
  auto read = parser.Read(json);
  EXPECT_TRUE(read.ok()) << read.status().ToString();
  Appended a;
  a.json = json;
  if (!read.ok()) return a;
  const Reading& r = **read;
  a.key = std::to_string(r.sensor_id);
  a.timestamp_us = r.timestamp_us;
  for (const NumberField& n : r.numbers) a.names.emplace_back(n.name);
  for (size_t i = 0; i < r.numbers.size(); ++i) a.numbers.push_back({a.names[i], r.numbers[i].value});
  return a;
}

void ExpectSameReading(const Reading& got, const Reading& want, const std::string& json) {
  SCOPED_TRACE(json);
  EXPECT_EQ(got.timestamp_us, want.timestamp_us);
  EXPECT_EQ(got.sensor_id, want.sensor_id);
  ASSERT_EQ(got.has_location, want.has_location);
  if (want.has_location) {
    EXPECT_EQ(got.lat, want.lat);  // bit for bit: both round to the nearest double
    EXPECT_EQ(got.lon, want.lon);
  }
  ASSERT_EQ(got.numbers.size(), want.numbers.size());
  for (size_t i = 0; i < want.numbers.size(); ++i) {
    EXPECT_EQ(got.numbers[i].name, want.numbers[i].name);
    EXPECT_EQ(got.numbers[i].value, want.numbers[i].value);
  }
  ASSERT_EQ(got.texts.size(), want.texts.size());
  for (size_t i = 0; i < want.texts.size(); ++i) {
    EXPECT_EQ(got.texts[i].name, want.texts[i].name);
    EXPECT_EQ(got.texts[i].value, want.texts[i].value);
  }
  EXPECT_EQ(got.raw, json);
}

// The readings ingest accepts in every form the scan reads: each comes out as the parser reads it.
TEST(ReadCarried, GivesTheReadingTheParserGives) {
  const std::vector<std::string> readings = {
      R"({"timestamp":"2024-01-21 10:06:04.095931","temperature":20.9,"humidity":59.22,"pressure":1001.87,"sensor_id":1,"location":{"lon":3.185785,"lat":42.488629}})",
      R"({"timestamp":1705831564,"sensor_id":4294967295,"location":{"lat":-90,"lon":180},"status":"ok","station":"Banyuls"})",
      R"({ "sensor_id" : 7 , "timestamp" : 1705831564095 , "wave_height" : 1e-3 , "wind_speed" : -0.0 , "status" : "dégradé ✓" })",
      R"({"timestamp":"2024-01-21T12:06:04.1+02:00","sensor_id":3,"temperature":null,"location":null,"dew_point":12.345678901234567})",
      R"({"timestamp":1705831564.25,"sensor_id":0,"location":{"lat":42.48862900000000001,"lon":3.1857850000000000001},"x":123456789012345678901234567890})",
      R"({"timestamp":"2024-01-21 10:06:04","sensor_id":9})",
      R"({"sensor_id":9,"status":"","timestamp":"2024-01-21 10:06:04","humidity":5e2,"note":"a:b,c}d{"})",
  };
  for (const std::string& json : readings) {
    Appended a = AsIngestAppends(json);
    RawReadingReader parser(1 << 20);
    auto want = parser.Read(json);
    ASSERT_TRUE(want.ok()) << json;
    Reading got;
    ASSERT_TRUE(ReadCarried(a.Record(), &got)) << json;
    ExpectSameReading(got, **want, json);
  }
}

// What the scan does not read is left to the parser, whose reading RawReadingReader then gives.
TEST(ReadCarried, LeavesToTheParserWhatItDoesNotRead) {
  RawReadingReader reader(1 << 20);
  RawReadingReader parser(1 << 20);
  Reading got;

  // An escaped text: only the parser unescapes.
  std::string escaped = R"({"timestamp":1705831564,"sensor_id":7,"temperature":20.9,"status":"ok \"x\" \u00e9"})";
  Appended a = AsIngestAppends(escaped);
  EXPECT_FALSE(ReadCarried(a.Record(), &got));
  auto read = reader.Read(a.Record());
  ASSERT_TRUE(read.ok()) << read.status().ToString();
  ASSERT_EQ((*read)->texts.size(), 1u);
  EXPECT_EQ((*read)->texts[0].value, "ok \"x\" \xc3\xa9");
  EXPECT_EQ((*read)->numbers.size(), 1u);

  // A record without numbers (Kafka's, `mare log produce`'s).
  std::string plain = R"({"timestamp":1705831564,"sensor_id":7,"temperature":20.9})";
  a = AsIngestAppends(plain);
  log::ConsumedRecord bare = a.Record();
  bare.has_numbers = false;
  bare.numbers = {};
  EXPECT_FALSE(ReadCarried(bare, &got));
  read = reader.Read(bare);
  ASSERT_TRUE(read.ok());
  ASSERT_EQ((*read)->numbers.size(), 1u);
  EXPECT_EQ((*read)->numbers[0].value, 20.9);

  // Numbers that are not those of the JSON: another name, one missing, one too many.
  a = AsIngestAppends(R"({"timestamp":1705831564,"sensor_id":7,"temperature":20.9,"humidity":60})");
  log::ConsumedRecord r = a.Record();
  std::vector<NumberField> other = {{"temperature", 20.9}, {"pressure", 60}};
  r.numbers = other;
  EXPECT_FALSE(ReadCarried(r, &got));
  r.numbers = std::span<const NumberField>(a.numbers).first(1);
  EXPECT_FALSE(ReadCarried(r, &got));
  std::vector<NumberField> more = {{"temperature", 20.9}, {"humidity", 60}, {"pressure", 1}};
  r.numbers = more;
  EXPECT_FALSE(ReadCarried(r, &got));

  // Not a reading at all, though it carries the numbers of its one number; the parser then
  // says why.
  std::vector<NumberField> temperature = {{"temperature", 20.9}};
  for (std::string bad : {R"({"timestamp":1705831564,"temperature":20.9})", R"({"sensor_id":7,"temperature":20.9})",
                          R"([{"timestamp":1705831564,"sensor_id":7,"temperature":20.9}])",
                          R"({"timestamp":1705831564,"sensor_id":"7","temperature":20.9})",
                          R"({"timestamp":1705831564,"sensor_id":7,"temperature":20.9,"ok":true})",
                          "{\"timestamp\":1705831564,\n\"sensor_id\":7,\"temperature\":20.9}",
                          R"({"timestamp":1705831564,"sensor_id":7,"temperature":20.9} x)",
                          R"({"timestamp":1705831564,"sensor_id":7,"temperature":20.9,"location":{"lat":1}})",
                          R"({"timestamp":1705831564,"sensor_id":7,"temperature":20.9)", ""}) {
    r = log::ConsumedRecord{};
    r.value = bad;
    r.has_numbers = true;
    r.numbers = temperature;
    EXPECT_FALSE(ReadCarried(r, &got)) << bad;
    EXPECT_TRUE(reader.Read(r).status().IsCorruption()) << bad;
  }
}

// Through the embedded log: the numbers a consumer decodes from a batch are what the scan pairs
// with the JSON.
TEST(ReadCarried, ReadsRecordsAsTheEmbeddedLogGivesThemBack) {
  ScratchDir dir("mare-carried");
  metrics::Registry registry;
  auto opened = log::OpenLogWithTopics({.dir = dir.path(), .metrics = &registry}, {{.name = "raw", .partitions = 1}});
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  log::Log& l = **opened;
  std::vector<Appended> appended;
  for (int i = 0; i < 50; ++i) {
    appended.push_back(AsIngestAppends(
        "{\"timestamp\":" + std::to_string(1705831564 + i) + ",\"sensor_id\":" + std::to_string(i % 5) +
        ",\"temperature\":" + std::to_string(10 + i) + ".5,\"status\":\"s" + std::to_string(i) +
        "\",\"location\":{\"lat\":42." + std::to_string(i) + ",\"lon\":3.1}" + (i % 3 ? ",\"humidity\":61" : "") + "}"));
  }
  std::vector<log::Record> records;
  for (const Appended& a : appended) records.push_back({a.timestamp_us, a.key, a.json, true, a.numbers});
  ASSERT_TRUE(l.Append("raw", 0, records).ok());
  auto consumer = l.Subscribe("g", "raw");
  ASSERT_TRUE(consumer.ok());
  std::vector<log::ConsumedRecord> got;
  ASSERT_TRUE((*consumer)->Poll(&got, 100, std::chrono::milliseconds(100)).ok());
  ASSERT_EQ(got.size(), appended.size());
  RawReadingReader parser(1 << 20);
  for (const log::ConsumedRecord& r : got) {
    ASSERT_TRUE(r.has_numbers);
    Reading carried;
    ASSERT_TRUE(ReadCarried(r, &carried)) << r.value;
    auto want = parser.Read(r.value);
    ASSERT_TRUE(want.ok());
    ExpectSameReading(carried, **want, std::string(r.value));
  }
}

}  // namespace
}  // namespace mare::sinks
