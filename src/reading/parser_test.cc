// The parser's contract as a table: what is accepted, and for what is not, the reason.
#include "reading/parser.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <map>
#include <string>

namespace mare {
namespace {

constexpr int64_t kNow = 1705831564095931;  // 2024-01-21T10:06:04.095931Z

struct Accepted {
  int64_t ts;
  uint32_t sensor;
  bool has_location;
  double lat, lon;
  std::map<std::string, double> numbers;
  std::map<std::string, std::string> texts;
  std::string raw;
};

struct Collected : ReadingSink {
  std::vector<Accepted> readings;
  std::vector<std::pair<RejectReason, std::string>> rejects;  // reason, detail
  std::vector<std::string> reject_raw;
  void OnReading(const Reading& r) override {
    Accepted a{r.timestamp_us, r.sensor_id, r.has_location, r.lat, r.lon, {}, {}, std::string(r.raw)};
    for (auto& n : r.numbers) a.numbers[std::string(n.name)] = n.value;
    for (auto& t : r.texts) a.texts[std::string(t.name)] = std::string(t.value);
    readings.push_back(std::move(a));
  }
  void OnReject(const Reject& r) override {
    rejects.emplace_back(r.reason, r.detail);
    reject_raw.emplace_back(r.raw);
  }
};

Collected ParseAll(std::string_view text, ParserOptions options = {}) {
  ReadingParser parser(options);
  PaddedBuffer buf;
  buf.Assign(text);
  Collected c;
  parser.Parse(buf.view(), kNow, c);
  return c;
}

const char* kObservatory =
    R"({"timestamp": "2024-01-21 10:06:04.095931", "temperature": 20.9, "humidity": 59.22, "pressure": 1001.87, "sensor_id": 1, "location": {"lon": 3.185785, "lat": 42.488629}})";

TEST(Parser, AcceptsTheObservatoryShape) {
  Collected c = ParseAll(kObservatory);
  ASSERT_EQ(c.rejects.size(), 0u) << c.rejects[0].second;
  ASSERT_EQ(c.readings.size(), 1u);
  const Accepted& r = c.readings[0];
  EXPECT_EQ(r.ts, kNow);
  EXPECT_EQ(r.sensor, 1u);
  EXPECT_TRUE(r.has_location);
  EXPECT_DOUBLE_EQ(r.lat, 42.488629);
  EXPECT_DOUBLE_EQ(r.lon, 3.185785);
  EXPECT_EQ(r.numbers, (std::map<std::string, double>{{"temperature", 20.9}, {"humidity", 59.22}, {"pressure", 1001.87}}));
  EXPECT_EQ(r.raw, kObservatory);
}

// Found by fuzz/reading_parser (fuzz/corpus/reading_parser/leading-carriage-return.ndjson): a
// carriage return before the object was kept in the reading's text, and so in the log.
TEST(Parser, RawTextStartsAtTheObjectWhateverWhitespacePrecedesIt) {
  Collected c = ParseAll(std::string("\r") + kObservatory + "\n \t\r\r" + kObservatory + "\r\n");
  ASSERT_EQ(c.rejects.size(), 0u) << c.rejects[0].second;
  ASSERT_EQ(c.readings.size(), 2u);
  EXPECT_EQ(c.readings[0].raw, kObservatory);
  EXPECT_EQ(c.readings[1].raw, kObservatory);
}

TEST(Parser, DynamicNumericAndTextFields) {
  Collected c = ParseAll(
      R"({"timestamp":"2024-01-21T10:00:00Z","sensor_id":7,"water_temperature":14.25,"wave_height":0.8,"status":"ok","station":"Banyuls \"Sola\" \u00e9"})");
  ASSERT_EQ(c.readings.size(), 1u) << (c.rejects.empty() ? "" : c.rejects[0].second);
  const Accepted& r = c.readings[0];
  EXPECT_FALSE(r.has_location);
  EXPECT_EQ(r.numbers.at("water_temperature"), 14.25);
  EXPECT_EQ(r.numbers.at("wave_height"), 0.8);
  EXPECT_EQ(r.texts.at("status"), "ok");
  EXPECT_EQ(r.texts.at("station"), "Banyuls \"Sola\" \xc3\xa9");
}

// Numbers with more digits than 64 bits hold are read correctly rounded, as strtod reads them:
// Debian's simdjson 3.0.1 read "0.95000000000000000000" as 0.0277 (json_number.h). Found by
// fuzz/line_protocol in a latitude.
TEST(Parser, LongNumbersAreCorrectlyRounded) {
  const char* lat = "0.0000000000000020000000000000011834396470817645470";
  const char* temperature = "0.95000000000000000000";
  const char* pressure = "1013.2500000000000000000001";
  const char* ts = "1705831564.00000000000000000000";
  Collected c = ParseAll(fmt::format(R"({{"timestamp":{},"sensor_id":3,"temperature":{} ,"pressure":{},"location":{{"lat":{},"lon":3.1}}}})",
                                     ts, temperature, pressure, lat));
  ASSERT_EQ(c.readings.size(), 1u) << (c.rejects.empty() ? "" : c.rejects[0].second);
  const Accepted& r = c.readings[0];
  EXPECT_EQ(r.numbers.at("temperature"), std::strtod(temperature, nullptr));
  EXPECT_EQ(r.numbers.at("temperature"), 0.95);
  EXPECT_EQ(r.numbers.at("pressure"), std::strtod(pressure, nullptr));
  EXPECT_EQ(r.lat, std::strtod(lat, nullptr));
  EXPECT_EQ(r.lon, 3.1);
  EXPECT_EQ(r.ts, 1705831564000000);
  // Long exponents and a minus sign; a short number is left as simdjson read it.
  Collected d = ParseAll(R"({"timestamp":1705831564,"sensor_id":3,"a":-0.000000000000000000001234567890123e+5,"b":0.25})");
  ASSERT_EQ(d.readings.size(), 1u) << (d.rejects.empty() ? "" : d.rejects[0].second);
  EXPECT_EQ(d.readings[0].numbers.at("a"), std::strtod("-0.000000000000000000001234567890123e+5", nullptr));
  EXPECT_EQ(d.readings[0].numbers.at("b"), 0.25);
}

TEST(Parser, NullMeansAbsent) {
  Collected c = ParseAll(R"({"timestamp":1705831564,"sensor_id":2,"temperature":null,"humidity":60,"location":null})");
  ASSERT_EQ(c.readings.size(), 1u);
  EXPECT_EQ(c.readings[0].numbers.count("temperature"), 0u);
  EXPECT_EQ(c.readings[0].numbers.at("humidity"), 60);
  EXPECT_FALSE(c.readings[0].has_location);
}

TEST(Parser, TimestampForms) {
  struct Case { const char* ts; int64_t want; };
  const Case cases[] = {
      {R"("2024-01-21 10:06:04.095931")", kNow},
      {R"("2024-01-21T10:06:04.095931Z")", kNow},
      {R"("2024-01-21T11:06:04.095931+01:00")", kNow},
      {"1705831564", 1705831564000000},
      {"1705831564.5", 1705831564500000},
      {"1705831564095", 1705831564095000},
  };
  for (const Case& c : cases) {
    Collected got = ParseAll(std::string(R"({"sensor_id":1,"timestamp":)") + c.ts + "}");
    ASSERT_EQ(got.readings.size(), 1u) << c.ts << ": " << (got.rejects.empty() ? "" : got.rejects[0].second);
    EXPECT_EQ(got.readings[0].ts, c.want) << c.ts;
  }
}

struct Invalid {
  const char* input;
  RejectReason reason;
  const char* detail_contains;
};

// Every way a reading can be wrong, with the reason it is rejected for and a piece of the
// message that says what and where.
const Invalid kInvalid[] = {
    {R"({"timestamp": "2024-01-21 10:00:00", "sensor_id": 1, "temperature": 20.9)", RejectReason::kNotJson, "not JSON"},
    {R"(temperature=20.9,sensor=1)", RejectReason::kNotJson, "not JSON"},
    {R"({"timestamp": "2024-01-21 10:00:00" "sensor_id": 1})", RejectReason::kNotJson, "not JSON"},
    {R"({"timestamp":"2024-01-21 10:00:00","sensor_id":1} trailing)", RejectReason::kNotJson, "not JSON"},
    {R"({"timestamp":"2024-01-21 10:00:00","sensor_id":1} {"timestamp":"2024-01-21 10:00:00","sensor_id":2})", RejectReason::kNotJson, "not JSON"},
    {R"(true)", RejectReason::kNotObject, "JSON object"},
    {R"("just a string")", RejectReason::kNotObject, "JSON object"},
    {R"(42)", RejectReason::kNotObject, "JSON object"},
    {R"({"sensor_id": 1, "temperature": 20.9})", RejectReason::kMissingTimestamp, "no timestamp"},
    {R"({"timestamp": "2024-01-21 10:00:00", "temperature": 20.9})", RejectReason::kMissingSensorId, "no sensor_id"},
    {R"({"timestamp": "2024-02-30 10:00:00", "sensor_id": 1})", RejectReason::kInvalidTimestamp, "day 30 out of range"},
    {R"({"timestamp": "yesterday", "sensor_id": 1})", RejectReason::kInvalidTimestamp, "not a date-time"},
    {R"({"timestamp": "1900-01-01T00:00:00+08:00", "sensor_id": 1})", RejectReason::kInvalidTimestamp, "is 1899-12-31 16:00:00 UTC, outside the years 1900 to 9999"},
    {R"({"timestamp": true, "sensor_id": 1})", RejectReason::kInvalidTimestamp, "date-time string or epoch"},
    {R"({"timestamp": -5, "sensor_id": 1})", RejectReason::kInvalidTimestamp, "positive"},
    {R"({"timestamp": 1e300, "sensor_id": 1})", RejectReason::kInvalidTimestamp, "too large"},
    {R"({"timestamp": "2024-01-21 12:00:00", "sensor_id": 1})", RejectReason::kFutureTimestamp, "ahead of the clock"},
    {R"({"timestamp": "2024-01-21 10:00:00", "sensor_id": "buoy-1"})", RejectReason::kInvalidSensorId, "integer"},
    {R"({"timestamp": "2024-01-21 10:00:00", "sensor_id": -1})", RejectReason::kInvalidSensorId, "integer"},
    {R"({"timestamp": "2024-01-21 10:00:00", "sensor_id": 1.5})", RejectReason::kInvalidSensorId, "integer"},
    {R"({"timestamp": "2024-01-21 10:00:00", "sensor_id": 4294967296})", RejectReason::kInvalidSensorId, "4294967295"},
    {R"({"timestamp": "2024-01-21 10:00:00", "sensor_id": 1, "temperature": NaN})", RejectReason::kInvalidNumber, "'temperature': NaN"},
    {R"({"timestamp": "2024-01-21 10:00:00", "sensor_id": 1, "temperature": Infinity})", RejectReason::kInvalidNumber, "finite"},
    {R"({"timestamp": "2024-01-21 10:00:00", "sensor_id": 1, "temperature": -Infinity})", RejectReason::kInvalidNumber, "finite"},
    {R"({"timestamp": "2024-01-21 10:00:00", "sensor_id": 1, "temperature": 1e999})", RejectReason::kInvalidNumber, "'temperature'"},
    {R"({"timestamp": "2024-01-21 10:00:00", "sensor_id": 1, "temperature": "nan"})", RejectReason::kInvalidNumber, "finite"},
    {R"({"timestamp": "2024-01-21 10:00:00", "sensor_id": 1, "temperature": "20.9"})", RejectReason::kInvalidNumber, "must be a number"},
    {R"({"timestamp": "2024-01-21 10:00:00", "sensor_id": 1, "salinity": "-inf"})", RejectReason::kInvalidNumber, "finite"},
    {R"({"timestamp": "2024-01-21 10:00:00", "sensor_id": 1, "location": {"lat": 91, "lon": 3.1}})", RejectReason::kInvalidLocation, "lat 91 outside [-90, 90]"},
    {R"({"timestamp": "2024-01-21 10:00:00", "sensor_id": 1, "location": {"lat": -90.5, "lon": 3.1}})", RejectReason::kInvalidLocation, "outside [-90, 90]"},
    {R"({"timestamp": "2024-01-21 10:00:00", "sensor_id": 1, "location": {"lat": 42, "lon": 180.01}})", RejectReason::kInvalidLocation, "lon 180.01 outside [-180, 180]"},
    {R"({"timestamp": "2024-01-21 10:00:00", "sensor_id": 1, "location": {"lat": 42}})", RejectReason::kInvalidLocation, "both lat and lon"},
    {R"({"timestamp": "2024-01-21 10:00:00", "sensor_id": 1, "location": [3.1, 42.4]})", RejectReason::kInvalidLocation, "must be an object"},
    {R"({"timestamp": "2024-01-21 10:00:00", "sensor_id": 1, "location": {"lat": "42", "lon": 3}})", RejectReason::kInvalidLocation, "must be a number"},
    {R"({"timestamp": "2024-01-21 10:00:00", "sensor_id": 1, "location": {"lat": 42, "lon": 3, "alt": 2}})", RejectReason::kInvalidLocation, "unknown key 'alt'"},
    {R"({"timestamp": "2024-01-21 10:00:00", "sensor_id": 1, "air temp": 20})", RejectReason::kInvalidFieldName, "'air temp'"},
    {R"({"timestamp": "2024-01-21 10:00:00", "sensor_id": 1, "9lives": 20})", RejectReason::kInvalidFieldName, "not a name"},
    {R"({"timestamp": "2024-01-21 10:00:00", "sensor_id": 1, "": 20})", RejectReason::kInvalidFieldName, "not a name"},
    {R"({"timestamp": "2024-01-21 10:00:00", "sensor_id": 1, "temperature": 20, "temperature": 21})", RejectReason::kDuplicateField, "appears twice"},
    {R"({"timestamp": "2024-01-21 10:00:00", "sensor_id": 1, "sensor_id": 2})", RejectReason::kDuplicateField, "'sensor_id' appears twice"},
    {R"({"timestamp": "2024-01-21 10:00:00", "sensor_id": 1, "ok": true})", RejectReason::kUnsupportedValue, "true/false"},
    {R"({"timestamp": "2024-01-21 10:00:00", "sensor_id": 1, "extra": {"a": 1}})", RejectReason::kUnsupportedValue, "an object"},
    {R"({"timestamp": "2024-01-21 10:00:00", "sensor_id": 1, "extra": [1, 2]})", RejectReason::kUnsupportedValue, "an array"},
    {"{\"timestamp\": \"2024-01-21 10:00:00\", \"sensor_id\": 1, \"status\": \"caf\xc3\x28\"}", RejectReason::kInvalidUtf8, "UTF-8"},
    {"{\"timestamp\": \"2024-01-21 10:00:00\", \"sensor_id\": 1, \"status\": \"\xff\xfe\"}", RejectReason::kInvalidUtf8, "UTF-8"},
    // simdjson tells a value's type from its first byte ('n' null, 't'/'f' a boolean): a word
    // that only starts like a literal is not JSON, wherever it stands.
    {R"({"timestamp": "2024-01-21 10:00:00", "sensor_id": 1, "temperature": nonsense})", RejectReason::kNotJson, "'temperature': nonsense is not a JSON value"},
    {R"({"timestamp": "2024-01-21 10:00:00", "sensor_id": 1, "status": nope})", RejectReason::kNotJson, "'status': nope is not a JSON value"},
    {R"({"timestamp": "2024-01-21 10:00:00", "sensor_id": 1, "temperature": nan5})", RejectReason::kNotJson, "nan5 is not a JSON value"},
    {R"({"timestamp": "2024-01-21 10:00:00", "sensor_id": 1, "temperature": nul})", RejectReason::kNotJson, "nul is not a JSON value"},
    {R"({"timestamp": "2024-01-21 10:00:00", "sensor_id": 1, "temperature": nullx})", RejectReason::kNotJson, "nullx is not a JSON value"},
    {R"({"timestamp": "2024-01-21 10:00:00", "sensor_id": 1, "temperature": nan})", RejectReason::kInvalidNumber, "'temperature': nan is not a finite number"},
    {R"({"timestamp": "2024-01-21 10:00:00", "sensor_id": 1, "temperature": null, "humidity": nope})", RejectReason::kNotJson, "'humidity': nope"},
    {R"({"timestamp": "2024-01-21 10:00:00", "sensor_id": 1, "ok": trueish})", RejectReason::kNotJson, "'ok': trueish is not a JSON value"},
    {R"({"timestamp": "2024-01-21 10:00:00", "sensor_id": 1, "ok": fals})", RejectReason::kNotJson, "'ok': fals is not a JSON value"},
    {R"({"timestamp": "2024-01-21 10:00:00", "sensor_id": 1, "ok": falsey})", RejectReason::kNotJson, "falsey is not a JSON value"},
    {R"({"timestamp": "2024-01-21 10:00:00", "sensor_id": 1, "ok": tru})", RejectReason::kNotJson, "tru is not a JSON value"},
    {R"({"timestamp": "2024-01-21 10:00:00", "sensor_id": 1, "ok": True})", RejectReason::kNotJson, "not JSON"},
    {R"({"timestamp": "2024-01-21 10:00:00", "sensor_id": 1, "ok": undefined})", RejectReason::kNotJson, "not JSON"},
    {R"({"timestamp": "2024-01-21 10:00:00", "sensor_id": 1, "ok": false})", RejectReason::kUnsupportedValue, "true/false"},
    {R"({"timestamp": "2024-01-21 10:00:00", "sensor_id": 1, "location": nope})", RejectReason::kNotJson, "'location': nope is not a JSON value"},
    {R"({"timestamp": "2024-01-21 10:00:00", "sensor_id": 1, "location": nan})", RejectReason::kNotJson, "'location': nan is not a JSON value"},
    {R"({"timestamp": "2024-01-21 10:00:00", "sensor_id": 1, "location": {"lat": nope, "lon": 3}})", RejectReason::kInvalidLocation, "got nope"},
    {R"({"timestamp": "2024-01-21 10:00:00", "sensor_id": nope})", RejectReason::kNotJson, "'sensor_id': nope is not a JSON value"},
    {R"({"timestamp": "2024-01-21 10:00:00", "sensor_id": truely})", RejectReason::kNotJson, "'sensor_id': truely is not a JSON value"},
    {R"({"timestamp": "2024-01-21 10:00:00", "sensor_id": null})", RejectReason::kInvalidSensorId, "integer"},
    {R"({"timestamp": nonsense, "sensor_id": 1})", RejectReason::kNotJson, "'timestamp': nonsense is not a JSON value"},
    {R"({"timestamp": falsehood, "sensor_id": 1})", RejectReason::kNotJson, "'timestamp': falsehood is not a JSON value"},
    {R"({"timestamp": null, "sensor_id": 1})", RejectReason::kInvalidTimestamp, "date-time string or epoch"},
    {R"(nope)", RejectReason::kNotJson, "not JSON"},
    {R"(nullnull)", RejectReason::kNotJson, "not JSON"},
};

TEST(Parser, RejectsEachInvalidReadingWithItsReason) {
  for (const Invalid& c : kInvalid) {
    Collected got = ParseAll(c.input);
    ASSERT_EQ(got.readings.size(), 0u) << c.input;
    ASSERT_EQ(got.rejects.size(), 1u) << c.input;
    EXPECT_EQ(ReasonName(got.rejects[0].first), std::string(ReasonName(c.reason))) << c.input << " -> " << got.rejects[0].second;
    EXPECT_NE(got.rejects[0].second.find(c.detail_contains), std::string::npos)
        << c.input << "\n  detail: " << got.rejects[0].second << "\n  expected to contain: " << c.detail_contains;
    EXPECT_EQ(got.reject_raw[0], c.input);
  }
}

TEST(Parser, LimitsAreConfigurable) {
  ParserOptions o;
  o.max_fields = 4;
  o.max_text_bytes = 5;
  o.max_reading_bytes = 100;
  Collected many = ParseAll(R"({"timestamp":1705831564,"sensor_id":1,"a":1,"b":2,"c":3})", o);
  ASSERT_EQ(many.rejects.size(), 1u);
  EXPECT_EQ(many.rejects[0].first, RejectReason::kTooManyFields);
  Collected text = ParseAll(R"({"timestamp":1705831564,"sensor_id":1,"status":"broken"})", o);
  ASSERT_EQ(text.rejects.size(), 1u);
  EXPECT_EQ(text.rejects[0].first, RejectReason::kTextTooLong);
  Collected big = ParseAll(std::string(R"({"timestamp":1705831564,"sensor_id":1,"status":")") + std::string(200, 'x') + "\"}", o);
  ASSERT_EQ(big.rejects.size(), 1u);
  EXPECT_EQ(big.rejects[0].first, RejectReason::kOversized);
  EXPECT_NE(big.rejects[0].second.find("max_reading_bytes 100"), std::string::npos);
}

TEST(Parser, FutureSkewIsConfigurable) {
  ParserOptions o;
  o.max_future_skew_us = 3 * 3600 * 1000000LL;
  Collected c = ParseAll(R"({"timestamp": "2024-01-21 12:00:00", "sensor_id": 1})", o);
  EXPECT_EQ(c.readings.size(), 1u);
}

TEST(Parser, BadReadingsNeverHarmTheirNeighbours) {
  std::string batch;
  batch += R"({"timestamp":1705831560,"sensor_id":1,"temperature":20.1})" "\n";
  batch += R"({"timestamp":1705831560,"sensor_id":2,"temperature":)" "\n";  // cut short
  batch += "\xff\xfe garbage\r\n";
  batch += "\n   \n";
  batch += R"({"timestamp":1705831561,"sensor_id":3,"temperature":NaN})" "\n";
  batch += R"({"timestamp":1705831562,"sensor_id":4,"temperature":20.4})" "\r\n";
  batch += R"([{"timestamp":1705831563,"sensor_id":5},{"sensor_id":6},17,{"timestamp":1705831563,"sensor_id":7,"t":1}])" "\n";
  batch += R"({"timestamp":1705831564,"sensor_id":8,"temperature":20.8})";  // no final newline
  Collected c = ParseAll(batch);
  std::vector<uint32_t> sensors;
  for (auto& r : c.readings) sensors.push_back(r.sensor);
  EXPECT_EQ(sensors, (std::vector<uint32_t>{1, 4, 5, 7, 8}));
  std::vector<RejectReason> reasons;
  for (auto& r : c.rejects) reasons.push_back(r.first);
  EXPECT_EQ(reasons, (std::vector<RejectReason>{RejectReason::kNotJson, RejectReason::kInvalidUtf8, RejectReason::kInvalidNumber,
                                                RejectReason::kMissingTimestamp, RejectReason::kNotObject}));
  // Each accepted reading's raw text is exactly its own JSON, without line ends.
  EXPECT_EQ(c.readings[1].raw, R"({"timestamp":1705831562,"sensor_id":4,"temperature":20.4})");
  EXPECT_EQ(c.readings[2].raw, R"({"timestamp":1705831563,"sensor_id":5})");
  EXPECT_EQ(c.reject_raw[3], R"({"sensor_id":6})");
}

// The defect reported in issue 13: a bare word in place of a value was taken for null and the
// reading, its invalid text included, went into the log. In an array line each element is
// still judged on its own.
TEST(Parser, BareWordsAreNotValuesInArraysEither) {
  Collected c = ParseAll(R"([{"timestamp":1705831563,"sensor_id":5,"temperature":nonsense},{"timestamp":1705831563,"sensor_id":6,"temperature":null},nope])");
  ASSERT_EQ(c.readings.size(), 1u);
  EXPECT_EQ(c.readings[0].sensor, 6u);
  EXPECT_EQ(c.readings[0].numbers.count("temperature"), 0u);
  ASSERT_EQ(c.rejects.size(), 2u);
  EXPECT_EQ(c.rejects[0].first, RejectReason::kNotJson);
  EXPECT_EQ(c.reject_raw[0], R"({"timestamp":1705831563,"sensor_id":5,"temperature":nonsense})");
  EXPECT_EQ(c.rejects[1].first, RejectReason::kNotJson);
  EXPECT_EQ(c.reject_raw[1], "nope");
}

TEST(Parser, ReusedAcrossManyBuffers) {
  ReadingParser parser;
  PaddedBuffer buf;
  Collected c;
  for (int i = 0; i < 1000; ++i) {
    buf.Assign(i % 7 == 0 ? std::string("{bad") : std::string(kObservatory));
    parser.Parse(buf.view(), kNow, c);
  }
  EXPECT_EQ(c.readings.size(), 857u);
  EXPECT_EQ(c.rejects.size(), 143u);
}

}  // namespace
}  // namespace mare
