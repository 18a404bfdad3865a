// The line protocol parser as a table of cases: each line, with the reading it becomes (the
// exact JSON ingest then validates) or the reason it is rejected for. The grammar is
// docs/formats/line-protocol.md.
#include "sources/line_protocol.h"

#include <fast_float/fast_float.h>
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <random>
#include <string>
#include <vector>

namespace mare {
namespace {

constexpr int64_t kNow = 1'705'831'564'095'931;  // 2024-01-21 10:06:04.095931
const std::string kNowText = "2024-01-21 10:06:04.095931";

struct Outcome {
  std::string json;          // the reading, without its newline, if accepted
  RejectReason reason{};     // else why not
  std::string detail;
  bool accepted = false;
};

Outcome Convert(std::string_view line, Precision precision = Precision::kNanoseconds, LineProtocolOptions options = {}) {
  LineProtocolParser parser(options);
  LineBatch batch;
  parser.Convert(line, precision, kNow, &batch);
  Outcome o;
  if (!batch.rejects.empty()) {
    o.reason = batch.rejects[0].reason;
    o.detail = batch.rejects[0].detail;
    return o;
  }
  EXPECT_EQ(batch.lines.size(), 1u) << line;
  std::string_view json = batch.json.view();
  if (!json.empty() && json.back() == '\n') json.remove_suffix(1);
  o.json = std::string(json);
  o.accepted = true;
  return o;
}

std::string Accepted(std::string_view line, Precision precision = Precision::kNanoseconds, LineProtocolOptions options = {}) {
  Outcome o = Convert(line, precision, options);
  EXPECT_TRUE(o.accepted) << line << ": " << ReasonName(o.reason) << ": " << o.detail;
  return o.json;
}

RejectReason Rejected(std::string_view line, Precision precision = Precision::kNanoseconds) {
  Outcome o = Convert(line, precision);
  EXPECT_FALSE(o.accepted) << line << " became " << o.json;
  return o.reason;
}

TEST(LineProtocolTest, EveryFieldTypeBecomesJson) {
  EXPECT_EQ(Accepted("weather,sensor_id=7 temperature=20.9,count=-3i,total=18446744073709551615u,ok=t,"
                     "bad=FALSE,note=\"calm sea\" 1705831564095931000"),
            R"({"timestamp":"2024-01-21 10:06:04.095931","sensor_id":7,"measurement":"weather",)"
            R"("temperature":20.9,"count":-3,"total":18446744073709551615,"ok":1,"bad":0,"note":"calm sea"})");
}

TEST(LineProtocolTest, BooleansInEverySpelling) {
  for (const char* t : {"t", "T", "true", "True", "TRUE"}) {
    EXPECT_NE(Accepted(std::string("m,sensor_id=1 b=") + t).find("\"b\":1}"), std::string::npos) << t;
  }
  for (const char* f : {"f", "F", "false", "False", "FALSE"}) {
    EXPECT_NE(Accepted(std::string("m,sensor_id=1 b=") + f).find("\"b\":0}"), std::string::npos) << f;
  }
  EXPECT_EQ(Rejected("m,sensor_id=1 b=tRUE"), RejectReason::kInvalidLineProtocol);
  EXPECT_EQ(Rejected("m,sensor_id=1 b=yes"), RejectReason::kInvalidLineProtocol);
}

TEST(LineProtocolTest, NumbersAreNormalisedToJson) {
  auto value = [](std::string v) {
    std::string json = Accepted("m,sensor_id=1 x=" + v);
    size_t at = json.find("\"x\":");
    return json.substr(at + 4, json.size() - at - 5);
  };
  EXPECT_EQ(value("1"), "1");
  EXPECT_EQ(value("-1.5e-3"), "-1.5e-3");
  EXPECT_EQ(value("1E10"), "1E10");
  EXPECT_EQ(value("+5"), "5");
  EXPECT_EQ(value(".5"), "0.5");
  EXPECT_EQ(value("1."), "1");
  EXPECT_EQ(value("007"), "7");
  EXPECT_EQ(value("007i"), "7");
  EXPECT_EQ(value("-0i"), "0");
  EXPECT_EQ(value("9223372036854775807i"), "9223372036854775807");
  EXPECT_EQ(value("-9223372036854775808i"), "-9223372036854775808");
  EXPECT_EQ(value("0u"), "0");
  EXPECT_EQ(Rejected("m,sensor_id=1 x=9223372036854775808i"), RejectReason::kInvalidNumber);
  EXPECT_EQ(Rejected("m,sensor_id=1 x=18446744073709551616u"), RejectReason::kInvalidNumber);
  EXPECT_EQ(Rejected("m,sensor_id=1 x=-1u"), RejectReason::kInvalidLineProtocol);
  EXPECT_EQ(Rejected("m,sensor_id=1 x=1.5i"), RejectReason::kInvalidLineProtocol);
  EXPECT_EQ(Rejected("m,sensor_id=1 x=1e999"), RejectReason::kInvalidNumber);
  EXPECT_EQ(Rejected("m,sensor_id=1 x=NaN"), RejectReason::kInvalidLineProtocol);
  EXPECT_EQ(Rejected("m,sensor_id=1 x=inf"), RejectReason::kInvalidLineProtocol);
  EXPECT_EQ(Rejected("m,sensor_id=1 x=-inf"), RejectReason::kInvalidLineProtocol);
  EXPECT_EQ(Rejected("m,sensor_id=1 x=1.2.3"), RejectReason::kInvalidLineProtocol);
  EXPECT_EQ(Rejected("m,sensor_id=1 x=12abc"), RejectReason::kInvalidLineProtocol);
  EXPECT_EQ(Rejected("m,sensor_id=1 x=-"), RejectReason::kInvalidLineProtocol);
}

TEST(LineProtocolTest, EscapesInMeasurementTagsKeysAndStrings) {
  EXPECT_EQ(Accepted(R"(my\ weather\,station,sensor_id=7,site=Banyuls\ Sola\,\=FR temperature=1 0)"),
            R"({"timestamp":"1970-01-01 00:00:00.000000","sensor_id":7,"measurement":"my weather,station",)"
            R"("site":"Banyuls Sola,=FR","temperature":1})");
  // A backslash before any other byte is itself; two backslashes are one.
  EXPECT_EQ(Accepted(R"(a\b\\c,sensor_id=1 f=1 0)"),
            R"({"timestamp":"1970-01-01 00:00:00.000000","sensor_id":1,"measurement":"a\\b\\c","f":1})");
  // Field keys may hold escaped spaces, commas and equals signs (ingest then refuses such names).
  EXPECT_NE(Accepted(R"(m,sensor_id=1 a\ b\=c\,d=1)").find(R"("a b=c,d":1)"), std::string::npos);
  // Strings: \" and \\ are escapes, other backslashes literal; commas, spaces and = are plain.
  EXPECT_NE(Accepted(R"(m,sensor_id=1 s="say \"hi\", a=b \\ \n")").find(R"("s":"say \"hi\", a=b \\ \\n")"),
            std::string::npos);
  EXPECT_NE(Accepted(R"(m,sensor_id=1 s="")").find(R"("s":"")"), std::string::npos);
  EXPECT_NE(Accepted("m,sensor_id=1 s=\"tab\there\"").find(R"("s":"tab\there")"), std::string::npos);
  EXPECT_NE(Accepted("m,sensor_id=1 s=\"été\"").find("\"s\":\"été\""), std::string::npos);
  EXPECT_EQ(Rejected(R"(m,sensor_id=1 s="open)"), RejectReason::kInvalidLineProtocol);
  EXPECT_EQ(Rejected(R"(m,sensor_id=1 s="a"b)"), RejectReason::kInvalidLineProtocol);
  EXPECT_EQ(Rejected(R"(m,sensor_id=1 s="ends with \")"), RejectReason::kInvalidLineProtocol);
}

TEST(LineProtocolTest, TimestampsAtEveryPrecision) {
  auto stamp = [](std::string_view line, Precision p) {
    std::string json = Accepted(line, p);
    return json.substr(14, 26);
  };
  EXPECT_EQ(stamp("m,sensor_id=1 x=1 1705831564095931999", Precision::kNanoseconds), "2024-01-21 10:06:04.095931");
  EXPECT_EQ(stamp("m,sensor_id=1 x=1 1705831564095931", Precision::kMicroseconds), "2024-01-21 10:06:04.095931");
  EXPECT_EQ(stamp("m,sensor_id=1 x=1 1705831564095", Precision::kMilliseconds), "2024-01-21 10:06:04.095000");
  EXPECT_EQ(stamp("m,sensor_id=1 x=1 1705831564", Precision::kSeconds), "2024-01-21 10:06:04.000000");
  EXPECT_EQ(stamp("m,sensor_id=1 x=1 28430526", Precision::kMinutes), "2024-01-21 10:06:00.000000");
  EXPECT_EQ(stamp("m,sensor_id=1 x=1 473842", Precision::kHours), "2024-01-21 10:00:00.000000");
  // Before 1970, nanoseconds round down, as the instant is before the microsecond's end.
  EXPECT_EQ(stamp("m,sensor_id=1 x=1 -1", Precision::kNanoseconds), "1969-12-31 23:59:59.999999");
  // Missing: the time it was received.
  EXPECT_EQ(stamp("m,sensor_id=1 x=1", Precision::kNanoseconds), kNowText);
  EXPECT_EQ(stamp("m,sensor_id=1 x=1   ", Precision::kNanoseconds), kNowText);
  EXPECT_EQ(Rejected("m,sensor_id=1 x=1 12:00"), RejectReason::kInvalidTimestamp);
  EXPECT_EQ(Rejected("m,sensor_id=1 x=1 1.5"), RejectReason::kInvalidTimestamp);
  EXPECT_EQ(Rejected("m,sensor_id=1 x=1 +15"), RejectReason::kInvalidTimestamp);
  EXPECT_EQ(Rejected("m,sensor_id=1 x=1 99999999999999999999"), RejectReason::kInvalidTimestamp);
  EXPECT_EQ(Rejected("m,sensor_id=1 x=1 9223372036854775807", Precision::kHours), RejectReason::kInvalidTimestamp);
  EXPECT_EQ(Rejected("m,sensor_id=1 x=1 -3000000000", Precision::kSeconds), RejectReason::kInvalidTimestamp);
  EXPECT_EQ(Rejected("m,sensor_id=1 x=1 1 2"), RejectReason::kInvalidLineProtocol);
}

// Integers are read by hand (line_protocol.cc's ReadDigits): at and one past int64's and
// uint64's bounds, with leading zeros, and with a byte that is no digit among the first eight
// (read eight at a time), each is taken or refused as std::from_chars would.
TEST(LineProtocolTest, IntegersAtTheirBounds) {
  auto detail = [](std::string_view line, Precision p = Precision::kNanoseconds) { return Convert(line, p).detail; };
  const std::string not_int64 = "is not an integer in int64's range";
  const std::string outside = "is outside the years 1900 to 9999";
  // Timestamps.
  EXPECT_NE(Accepted("m,sensor_id=1 x=1 9223372036854775807").find("2262-04-11 23:47:16.854775"), std::string::npos);
  EXPECT_NE(Accepted("m,sensor_id=1 x=1 0000000000001705831564095931999").find("2024-01-21 10:06:04.095931"),
            std::string::npos);
  EXPECT_NE(Accepted("m,sensor_id=1 x=1 -0").find("1970-01-01 00:00:00.000000"), std::string::npos);
  EXPECT_NE(detail("m,sensor_id=1 x=1 -9223372036854775808").find(outside), std::string::npos);
  EXPECT_NE(detail("m,sensor_id=1 x=1 9223372036854775807", Precision::kMicroseconds).find(outside), std::string::npos);
  for (const char* bad : {"9223372036854775808", "-9223372036854775809", "18446744073709551615", "18446744073709551616",
                          "99999999999999999999", "123456789012345678901234567890", "-", "--1", "-+1", "1705831564095931999x",
                          "17058x15640959319", "1705831564095931-99", "0x10", "1_000"}) {
    EXPECT_EQ(Rejected(std::string("m,sensor_id=1 x=1 ") + bad), RejectReason::kInvalidTimestamp) << bad;
    EXPECT_NE(detail(std::string("m,sensor_id=1 x=1 ") + bad).find(not_int64), std::string::npos) << bad;
  }
  // Integer fields: out of range is invalid_number, whatever follows the digits; other bytes
  // among them are invalid_line_protocol.
  auto value = [](std::string v) {
    std::string json = Accepted("m,sensor_id=1 x=" + v);
    size_t at = json.find("\"x\":");
    return json.substr(at + 4, json.size() - at - 5);
  };
  EXPECT_EQ(value("00000000000000000000009223372036854775807i"), "9223372036854775807");
  EXPECT_EQ(value("-00000000000000000000009223372036854775808i"), "-9223372036854775808");
  EXPECT_EQ(value("18446744073709551615u"), "18446744073709551615");
  EXPECT_EQ(value("000000000000000000000018446744073709551615u"), "18446744073709551615");
  EXPECT_EQ(value("12345678901234567i"), "12345678901234567");
  EXPECT_EQ(Rejected("m,sensor_id=1 x=-9223372036854775809i"), RejectReason::kInvalidNumber);
  EXPECT_EQ(Rejected("m,sensor_id=1 x=99999999999999999999i"), RejectReason::kInvalidNumber);
  EXPECT_EQ(Rejected("m,sensor_id=1 x=99999999999999999999x9i"), RejectReason::kInvalidNumber);
  EXPECT_EQ(Rejected("m,sensor_id=1 x=18446744073709551620u"), RejectReason::kInvalidNumber);
  EXPECT_EQ(Rejected("m,sensor_id=1 x=99999999999999999999u"), RejectReason::kInvalidNumber);
  EXPECT_EQ(Rejected("m,sensor_id=1 x=1234x678i"), RejectReason::kInvalidLineProtocol);
  EXPECT_EQ(Rejected("m,sensor_id=1 x=-i"), RejectReason::kInvalidLineProtocol);
  EXPECT_EQ(Rejected("m,sensor_id=1 x=--1i"), RejectReason::kInvalidLineProtocol);
  // Sensor ids in a tag: [0, 4294967295], leading zeros allowed.
  EXPECT_NE(Accepted("m,sensor_id=0004294967295 x=1").find("\"sensor_id\":4294967295,"), std::string::npos);
  EXPECT_NE(Accepted("m,sensor_id=0 x=1").find("\"sensor_id\":0,"), std::string::npos);
  for (const char* bad : {"4294967296", "18446744073709551615", "18446744073709551616", "99999999999999999999999", "+1", "1a",
                          "1\\ 2", "12345678x"}) {
    EXPECT_EQ(Rejected(std::string("m,sensor_id=") + bad + " x=1"), RejectReason::kInvalidSensorId) << bad;
  }
}

// Plain decimals are read as they are scanned (line_protocol.cc's ReadPlainDecimal), every
// other float by fast_float: either way, the number kept is fast_float's, bit for bit.
TEST(LineProtocolTest, FloatsAreReadExactly) {
  std::mt19937_64 random(17);
  std::vector<std::string> values = {"0", "-0", "0.0", "-0.0", "1", "0.1", "0.30000000000000004", "9007199254740992",
                                     "9007199254740993", "-9007199254740992", "900719925474099.3", "0.9007199254740993",
                                     "1234567890123456789", "12345678901234567890", "0.1234567890123456789",
                                     "1.7976931348623157", "42.488629", "3.185785", "1004.60", "15.20"};
  for (int i = 0; i < 20000; ++i) {
    const int digits = 1 + static_cast<int>(random() % 20);
    std::string v = random() % 4 == 0 ? "-" : "";
    std::string d;
    for (int k = 0; k < digits; ++k) d += static_cast<char>('0' + random() % 10);
    while (d.size() > 1 && d[0] == '0') d.erase(0, 1);  // JSON's grammar: no leading zeros
    const size_t point = random() % (d.size() + 1);
    if (point == 0 || point == d.size()) {
      v += d;
    } else {
      v += d.substr(0, point) + "." + d.substr(point);
    }
    values.push_back(v);
  }
  LineProtocolParser parser;
  LineBatch batch;
  for (const std::string& v : values) {
    batch.Clear();
    parser.Convert("m,sensor_id=1 x=" + v + " 0", Precision::kNanoseconds, kNow, &batch);
    ASSERT_EQ(batch.readings.size(), 1u) << v;
    double want = 0;
    fast_float::from_chars(v.data(), v.data() + v.size(), want);
    // The JSON keeps the value as written; what ingest is handed is the number read.
    EXPECT_NE(batch.JsonOf(0).find("\"x\":" + v + "}"), std::string::npos) << v;
    Reading r;
    if (batch.readings[0].vouched) {
      batch.ReadingAt(0, &r);
      ASSERT_EQ(r.numbers.size(), 1u) << v;
      EXPECT_EQ(std::bit_cast<uint64_t>(r.numbers[0].value), std::bit_cast<uint64_t>(want)) << v;
    } else {
      EXPECT_TRUE(want == 0 && std::signbit(want)) << v << ": only negative zero is left to ingest";
    }
  }
}

TEST(LineProtocolTest, SensorIdLocationMeasurementAndTagsFollowTheMapping) {
  EXPECT_EQ(Accepted("buoy,sensor_id=12,station=sola lat=42.488629,lon=3.185785,temperature=20.9 0"),
            R"({"timestamp":"1970-01-01 00:00:00.000000","sensor_id":12,"measurement":"buoy","station":"sola",)"
            R"("temperature":20.9,"location":{"lat":42.488629,"lon":3.185785}})");
  // The sensor id from an integer field when no tag carries it.
  EXPECT_EQ(Accepted("buoy sensor_id=12i,x=1 0"),
            R"({"timestamp":"1970-01-01 00:00:00.000000","sensor_id":12,"measurement":"buoy","x":1})");
  LineProtocolOptions o;
  o.sensor_id_tag = "id";
  o.lat_field = "latitude";
  o.lon_field = "longitude";
  o.measurement_field = "";
  o.keep_tags = false;
  EXPECT_EQ(Accepted("buoy,id=3,station=sola latitude=1i,longitude=-2,lat=5 0", Precision::kNanoseconds, o),
            R"({"timestamp":"1970-01-01 00:00:00.000000","sensor_id":3,"lat":5,"location":{"lat":1,"lon":-2}})");
  EXPECT_EQ(Rejected("buoy,station=sola x=1"), RejectReason::kMissingSensorId);
  EXPECT_EQ(Rejected("buoy,sensor_id=abc x=1"), RejectReason::kInvalidSensorId);
  EXPECT_EQ(Rejected("buoy,sensor_id=-1 x=1"), RejectReason::kInvalidSensorId);
  EXPECT_EQ(Rejected("buoy,sensor_id=4294967296 x=1"), RejectReason::kInvalidSensorId);
  EXPECT_EQ(Rejected("buoy sensor_id=1.5,x=1"), RejectReason::kInvalidSensorId);
  EXPECT_EQ(Rejected("buoy sensor_id=\"7\",x=1"), RejectReason::kInvalidSensorId);
  EXPECT_EQ(Rejected("buoy,sensor_id=1 lat=1,x=1"), RejectReason::kInvalidLocation);
  EXPECT_EQ(Rejected("buoy,sensor_id=1 lat=1,lon=\"2\""), RejectReason::kInvalidLocation);
  EXPECT_NE(Accepted("buoy,sensor_id=4294967295 x=1").find("\"sensor_id\":4294967295,"), std::string::npos);
}

TEST(LineProtocolTest, SyntaxErrorsSayWhatAndWhere) {
  EXPECT_EQ(Rejected("weather"), RejectReason::kInvalidLineProtocol);
  EXPECT_EQ(Rejected("weather,sensor_id=1"), RejectReason::kInvalidLineProtocol);
  EXPECT_EQ(Rejected("weather,sensor_id=1 "), RejectReason::kInvalidLineProtocol);
  EXPECT_EQ(Rejected(",sensor_id=1 x=1"), RejectReason::kInvalidLineProtocol);
  EXPECT_EQ(Rejected("weather,=1 x=1"), RejectReason::kInvalidLineProtocol);
  EXPECT_EQ(Rejected("weather,sensor_id x=1"), RejectReason::kInvalidLineProtocol);
  EXPECT_EQ(Rejected("weather,sensor_id= x=1"), RejectReason::kInvalidLineProtocol);
  EXPECT_EQ(Rejected("weather,sensor_id=1 =1"), RejectReason::kInvalidLineProtocol);
  EXPECT_EQ(Rejected("weather,sensor_id=1 x"), RejectReason::kInvalidLineProtocol);
  EXPECT_EQ(Rejected("weather,sensor_id=1 x="), RejectReason::kInvalidLineProtocol);
  EXPECT_EQ(Rejected("weather,sensor_id=1 x=1,"), RejectReason::kInvalidLineProtocol);
  EXPECT_EQ(Rejected("weather,sensor_id=1 x=1,,y=2"), RejectReason::kInvalidLineProtocol);
  Outcome o = Convert("weather,sensor_id=1 temperature=hot");
  EXPECT_EQ(o.detail, "invalid value 'hot' of field 'temperature': not a number, string or boolean (column 33)");
}

TEST(LineProtocolTest, BadLinesAreNumberedAndTheirNeighboursKept) {
  LineProtocolParser parser;
  LineBatch batch;
  std::string body =
      "# a comment\n"
      "m,sensor_id=1 x=1 1000\n"
      "\n"
      "m,sensor_id=1 x= 2000\r\n"
      "   \t\n"
      "  m,sensor_id=2 x=3 3000\r\n"
      "  # indented comment\n"
      "m,sensor_id=3 y=\"no end\n"
      "m,sensor_id=4 x=4";  // no final newline
  parser.Convert(body, Precision::kNanoseconds, kNow, &batch);
  ASSERT_EQ(batch.lines, (std::vector<uint32_t>{2, 6, 9}));
  ASSERT_EQ(batch.rejects.size(), 2u);
  EXPECT_EQ(batch.rejects[0].line, 4u);
  EXPECT_EQ(batch.rejects[0].raw, "m,sensor_id=1 x= 2000");
  EXPECT_EQ(batch.rejects[1].line, 8u);
  EXPECT_EQ(batch.LineAt(batch.json_starts[1] + 5), 6u);
  EXPECT_EQ(batch.LineAt(batch.json_starts[2]), 9u);
  // Converting again appends: the line numbers go on from first_line.
  parser.Convert("m,sensor_id=5 x=5 1\n", Precision::kNanoseconds, kNow, &batch, 10);
  EXPECT_EQ(batch.lines.back(), 10u);
}

TEST(LineProtocolTest, LinesAreBounded) {
  LineProtocolOptions o;
  o.max_line_bytes = 40;
  LineProtocolParser parser(o);
  LineBatch batch;
  parser.Convert("m,sensor_id=1 x=1 1\nm,sensor_id=1 x=1,padding=\"" + std::string(40, 'p') + "\" 2\nm,sensor_id=1 x=3 3\n",
                 Precision::kNanoseconds, kNow, &batch);
  EXPECT_EQ(batch.lines, (std::vector<uint32_t>{1, 3}));
  ASSERT_EQ(batch.rejects.size(), 1u);
  EXPECT_EQ(batch.rejects[0].reason, RejectReason::kOversized);
  EXPECT_EQ(batch.rejects[0].line, 2u);
}

TEST(LineProtocolTest, PrecisionNames) {
  Precision p;
  for (auto [name, want] : std::initializer_list<std::pair<const char*, Precision>>{
           {"n", Precision::kNanoseconds}, {"ns", Precision::kNanoseconds}, {"u", Precision::kMicroseconds},
           {"us", Precision::kMicroseconds}, {"ms", Precision::kMilliseconds}, {"s", Precision::kSeconds},
           {"m", Precision::kMinutes}, {"h", Precision::kHours}}) {
    ASSERT_TRUE(ParsePrecision(name, &p)) << name;
    EXPECT_EQ(p, want) << name;
  }
  EXPECT_FALSE(ParsePrecision("", &p));
  EXPECT_FALSE(ParsePrecision("d", &p));
  EXPECT_FALSE(ParsePrecision("rfc3339", &p));
}

}  // namespace
}  // namespace mare
