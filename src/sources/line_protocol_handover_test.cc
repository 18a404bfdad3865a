// The line protocol's readings reach ingest without their JSON being parsed again only when the
// converter vouches for them: these tests hold it to that. For every line, what HandOver gives
// ingest (vouched readings as they are, the others parsed) must be exactly what ingest's
// ReadingParser makes of the converted JSON, field by field and bit by bit, with the same reject
// reasons and details; the common shapes must be vouched for; and through a real Ingest and log,
// the records (JSON and carried numbers) and counts must be those of the same JSON sent as NDJSON.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "common/scratch_dir.h"
#include "log/log_with_topics.h"
#include "sources/ingest.h"
#include "sources/line_protocol.h"
#include "sources/line_protocol_ingest.h"
#include "sources/line_protocol_pipeline.h"
#include "sources/source_metrics.h"

namespace mare {
// Named, not anonymous: the test target is a unity build with line_protocol_test.cc.
namespace line_protocol_handover_test {

constexpr int64_t kNow = 1'705'831'564'095'931;  // 2024-01-21 10:06:04.095931

// What a sink was handed, copied (the views die after each call).
struct Got {
  bool accepted = false;
  std::string raw;
  int64_t timestamp_us = 0;
  uint32_t sensor_id = 0;
  bool has_location = false;
  uint64_t lat_bits = 0, lon_bits = 0;
  std::vector<std::pair<std::string, uint64_t>> numbers;  // values as bits: -0.0 is not 0.0
  std::vector<std::pair<std::string, std::string>> texts;
  std::string reason, detail;
};

uint64_t Bits(double d) {
  uint64_t b;
  std::memcpy(&b, &d, sizeof b);
  return b;
}

struct Collect : ReadingSink {
  std::vector<Got> got;
  void OnReading(const Reading& r) override {
    Got g;
    g.accepted = true;
    g.raw = std::string(r.raw);
    g.timestamp_us = r.timestamp_us;
    g.sensor_id = r.sensor_id;
    g.has_location = r.has_location;
    if (r.has_location) {
      g.lat_bits = Bits(r.lat);
      g.lon_bits = Bits(r.lon);
    }
    for (const NumberField& f : r.numbers) g.numbers.emplace_back(std::string(f.name), Bits(f.value));
    for (const TextField& t : r.texts) g.texts.emplace_back(std::string(t.name), std::string(t.value));
    got.push_back(std::move(g));
  }
  void OnReject(const Reject& r) override {
    Got g;
    g.raw = std::string(r.raw);
    g.reason = ReasonName(r.reason);
    g.detail = r.detail;
    got.push_back(std::move(g));
  }
};

void ExpectSame(const Got& a, const Got& b, std::string_view line) {
  EXPECT_EQ(a.accepted, b.accepted) << line << ": " << a.reason << " / " << b.reason << " " << b.detail;
  EXPECT_EQ(a.raw, b.raw) << line;
  EXPECT_EQ(a.timestamp_us, b.timestamp_us) << line;
  EXPECT_EQ(a.sensor_id, b.sensor_id) << line;
  EXPECT_EQ(a.has_location, b.has_location) << line;
  EXPECT_EQ(a.lat_bits, b.lat_bits) << line;
  EXPECT_EQ(a.lon_bits, b.lon_bits) << line;
  EXPECT_EQ(a.numbers, b.numbers) << line;
  EXPECT_EQ(a.texts, b.texts) << line;
  EXPECT_EQ(a.reason, b.reason) << line;
  EXPECT_EQ(a.detail, b.detail) << line;
}

// Converts `body`, then checks HandOver against ReadingParser on the whole JSON; returns how
// many readings were vouched for.
size_t CheckHandOver(std::string_view body, const ParserOptions& rules = {}, LineProtocolOptions options = {}) {
  LineProtocolParser converter(options, rules);
  LineBatch batch;
  converter.Convert(body, Precision::kNanoseconds, kNow, &batch);
  ReadingParser parser(rules), reference(rules);
  Collect handed, parsed;
  Reading scratch;
  HandOver(batch, parser, kNow, handed, &scratch);
  reference.Parse(batch.json.view(), kNow, parsed);
  EXPECT_EQ(handed.got.size(), parsed.got.size()) << body;
  for (size_t i = 0; i < handed.got.size() && i < parsed.got.size(); ++i) ExpectSame(handed.got[i], parsed.got[i], body);
  size_t vouched = 0;
  for (const LineReading& r : batch.readings) vouched += r.vouched;
  return vouched;
}

bool Vouched(std::string_view line, const ParserOptions& rules = {}, LineProtocolOptions options = {}) {
  size_t n = CheckHandOver(line, rules, options);
  return n == 1;
}

TEST(LineProtocolHandOverTest, TheCommonShapesAreVouchedForAndReadAsIngestReadsThem) {
  EXPECT_TRUE(Vouched("weather,sensor_id=7 temperature=15.30,humidity=60.33,pressure=1000.20,lat=42.48,lon=3.18 "
                      "1704067200000000000"));
  EXPECT_TRUE(Vouched("weather,sensor_id=7,station=sola temperature=20.9,count=-3i,total=18446744073709551615u,ok=t,"
                      "bad=FALSE,note=\"calm sea\",lon=3.185785,lat=42.488629 1705831564095931000"));
  EXPECT_TRUE(Vouched("buoy sensor_id=12i,x=1 0"));                       // the sensor from a field
  EXPECT_TRUE(Vouched("m,sensor_id=1 x=1"));                              // no timestamp: now
  EXPECT_TRUE(Vouched("m,sensor_id=1 x=-1 -1"));                          // before 1970
  EXPECT_TRUE(Vouched("m,sensor_id=1 a=+5,b=.5,c=1.,d=007,e=-.25,f=0,g=0.0,h=-3 0"));  // normalised to JSON
  EXPECT_TRUE(Vouched("m,sensor_id=1 a=9007199254740993i,b=-9223372036854775808i,c=9223372036854775807i 0"));
  EXPECT_TRUE(Vouched("m,sensor_id=1 a=18446744073709551615u,b=123456789012345678901234567890,c=0.1 0"));
  EXPECT_TRUE(Vouched("m,sensor_id=1 lat=90,lon=-180 0"));
  EXPECT_TRUE(Vouched("m,sensor_id=1 lat=1i,lon=2u,s=\"\" 0"));
  EXPECT_TRUE(Vouched("m,sensor_id=1,sensor_id_b=x lat=5,lat=6,lon=7 0"));  // the last lat is the location
  LineProtocolOptions o;
  o.sensor_id_tag = "id";
  o.measurement_field = "";
  o.keep_tags = false;
  EXPECT_TRUE(Vouched("buoy,id=3,station=sola,id=4 x=1 0", {}, o));
}

TEST(LineProtocolHandOverTest, WhatIngestWouldRefuseOrReadOtherwiseIsLeftToItsParser) {
  const char* lines[] = {
      "m,sensor_id=1 x=1 1900000000000000000",          // future_timestamp
      R"(m,sensor_id=1 wind\ speed=1 0)",               // invalid_field_name
      "m,sensor_id=1 9lives=1 0",
      "m,sensor_id=1 x=1,x=2 0",                        // duplicate_field
      "m,sensor_id=1,station=a station=\"b\" 0",
      "m,sensor_id=1,sensor_id=2 x=1 0",
      "m,sensor_id=1 sensor_id=2,x=1 0",
      "m,sensor_id=1 timestamp=2 0",
      "m,sensor_id=1 measurement=\"again\" 0",
      "m,sensor_id=1,location=here x=1 0",             // invalid_location
      "m,sensor_id=1 location=1 0",
      "m,sensor_id=1 lat=91,lon=0 0",
      "m,sensor_id=1 lat=0,lon=-180.5 0",
      "m,sensor_id=1 temperature=\"hot\" 0",            // invalid_number
      "m,sensor_id=1,humidity=high x=1 0",
      "m,sensor_id=1 s=\"NaN\" 0",
      "m,sensor_id=1,s=-inf x=1 0",
      "m,sensor_id=1 a=1e5,b=-1.5e-3,c=1E10 0",         // exponents: accepted, parsed by ingest
      "m,sensor_id=1 a=1e-400 0",
      "m,sensor_id=1 a=-0,b=-0.0 0",                    // negative zero
      "m,sensor_id=1 a=-.0 0",
      "m,sensor_id=1 a=+4.9e-324 0",                    // subnormal
      "m,sensor_id=1 s=\"\xc3\xa9t\xc3\xa9\" 0",        // beyond ASCII: accepted, checked by ingest
      "m,sensor_id=1 s=\"\xff\" 0",                     // invalid_utf8
      "m,sensor_id=1,site=\xe9 x=1 0",
      R"(my\ weather,sensor_id=7,site=Banyuls\ Sola\,\=FR temperature=1 0)",  // escapes
      R"(m,sensor_id=1 s="say \"hi\"" 0)",
      "m,sensor_id=1 s=\"tab\there\" 0",
  };
  for (const char* line : lines) EXPECT_FALSE(Vouched(line)) << line;

  std::string long_text = "m,sensor_id=1 s=\"" + std::string(1025, 'a') + "\" 0";
  EXPECT_FALSE(Vouched(long_text));  // text_too_long
  std::string many = "m,sensor_id=1 f0=0";
  for (int i = 1; i < 70; ++i) many += ",f" + std::to_string(i) + "=" + std::to_string(i);
  EXPECT_FALSE(Vouched(many + " 0"));  // too_many_fields
  ParserOptions small;
  small.max_reading_bytes = 90;
  EXPECT_FALSE(Vouched("m,sensor_id=1 temperature=1,humidity=2,pressure=3,wave_height=4 0", small));  // oversized
  small.max_fields = 4;
  small.max_reading_bytes = 64 * 1024;
  EXPECT_TRUE(Vouched("m,sensor_id=1 x=1 0", small));          // timestamp, sensor_id, measurement, x
  EXPECT_FALSE(Vouched("m,sensor_id=1 x=1,y=2 0", small));
  small.numeric_fields = {"status"};
  EXPECT_FALSE(Vouched("m,sensor_id=1 status=\"ok\" 0", small));
  EXPECT_TRUE(Vouched("m,sensor_id=1 temperature=\"hot\" 0", small));  // a text field under these rules
  LineProtocolOptions o;
  o.measurement_field = "timestamp";
  EXPECT_FALSE(Vouched("m,sensor_id=1 x=1 0", {}, o));
  o.measurement_field = "bad name";
  EXPECT_FALSE(Vouched("m,sensor_id=1 x=1 0", {}, o));
}

TEST(LineProtocolHandOverTest, ABodyOfMixedLinesIsHandedOverInOrder) {
  std::string body =
      "weather,sensor_id=1 temperature=1 1704067200000000000\n"
      "weather,sensor_id=1 temperature=\"x\" 1704067201000000000\n"
      "broken\n"
      "weather,sensor_id=2 temperature=1e3 1704067202000000000\n"
      "weather,sensor_id=3,station=a\\ b temperature=2 1704067203000000000\n"
      "weather,sensor_id=4 temperature=3\n";
  EXPECT_EQ(CheckHandOver(body), 2u);
}

// Through the whole ingest path, into a real log: the line protocol's readings, handed over,
// against the same JSON readings added as NDJSON.
class LineProtocolIngestTest : public testing::Test {
 protected:
  void SetUp() override {
    auto l = log::OpenLogWithTopics({.dir = scratch_.path() + "/log", .metrics = &registry_},
                                    {{.name = "lines", .partitions = 3}, {.name = "json", .partitions = 3}});
    ASSERT_TRUE(l.ok()) << l.status().ToString();
    log_ = std::move(*l);
  }
  std::vector<std::string> ReadAll(const std::string& topic) {
    auto c = log_->Subscribe("test", topic);
    EXPECT_TRUE(c.ok());
    std::vector<std::string> all;
    std::vector<log::ConsumedRecord> batch;
    for (int i = 0; i < 20; ++i) {
      EXPECT_TRUE((*c)->Poll(&batch, 1000, std::chrono::milliseconds(10)).ok());
      if (batch.empty()) break;
      for (auto& r : batch) {
        std::string s = std::to_string(r.partition) + " " + std::to_string(r.timestamp_us) + " " + std::string(r.key) + " " +
                        std::string(r.value) + (r.has_numbers ? " |" : " -");
        for (const NumberField& f : r.numbers) s += " " + std::string(f.name) + "=" + std::to_string(Bits(f.value));
        all.push_back(s);
      }
    }
    return all;
  }
  uint64_t Count(const metrics::Metric& m, metrics::Labels labels) { return registry_.GetCounter(m, labels).value(); }

  ScratchDir scratch_{"mare-line-protocol-ingest-test"};
  metrics::Registry registry_;
  std::unique_ptr<log::Log> log_;
};

TEST_F(LineProtocolIngestTest, RecordsAndCountsAreThoseOfTheSameJsonSentAsNdjson) {
  std::string body =
      "weather,sensor_id=1,station=sola temperature=20.5,humidity=60,ok=t,note=\"calm\",lat=42.48,lon=3.18 "
      "1704067200000000000\n"
      "weather,sensor_id=2 temperature=19i,wave_height=1e0 1704067200000000000\n"   // exponent: parsed by ingest
      "weather,sensor_id=1 temperature=21 1704067201000000000\n"
      "weather,sensor_id=1 temperature=21 1704067201000000000\n"                    // a duplicate
      "weather,sensor_id=1 temperature=22 1704067201000000000\n"                    // a conflicting one
      "weather,sensor_id=3 temperature=\"warm\" 1704067202000000000\n"              // invalid_number
      "weather,sensor_id=3 x\n"                                                     // invalid_line_protocol
      "weather,sensor_id=4,site=caf\xc3\xa9 temperature=1 1704067203000000000\n";  // beyond ASCII
  IngestOptions lines_options, json_options;
  lines_options.topic = "lines";
  json_options.topic = "json";
  Ingest lines_ingest(log_.get(), lines_options, nullptr, &registry_);
  Ingest json_ingest(log_.get(), json_options, nullptr, &registry_);

  LineProtocolWorker lines(&lines_ingest, {}, "lines");
  LineProtocolReport report;
  lines.Add(body, Precision::kNanoseconds, &report);
  ASSERT_TRUE(lines.Flush(&report).ok());
  EXPECT_EQ(report.lines, 8u);
  EXPECT_EQ(report.accepted, 4u);
  EXPECT_EQ(report.duplicates, 2u);
  EXPECT_EQ(report.rejected, 4u);
  ASSERT_EQ(report.errors.size(), 4u);
  EXPECT_EQ(report.errors[0].line, 4u);
  EXPECT_STREQ(report.errors[0].reason, "duplicate");
  EXPECT_EQ(report.errors[2].line, 6u);
  EXPECT_STREQ(report.errors[2].reason, "invalid_number");
  EXPECT_EQ(report.errors[3].line, 7u);

  LineProtocolParser converter;
  LineBatch batch;
  converter.Convert(body, Precision::kNanoseconds, kNow, &batch);
  auto json = json_ingest.NewWorker("json");
  json->Add(batch.json.view());
  ASSERT_TRUE(json->Flush().ok());

  std::vector<std::string> from_lines = ReadAll("lines"), from_json = ReadAll("json");
  EXPECT_EQ(from_lines.size(), 4u);
  EXPECT_EQ(from_lines, from_json);
  for (const char* reason : {"duplicate", "invalid_number"}) {
    EXPECT_EQ(Count(source_metrics::kReadingsRejected, {{"source", "lines"}, {"reason", reason}}),
              Count(source_metrics::kReadingsRejected, {{"source", "json"}, {"reason", reason}}))
        << reason;
  }
  EXPECT_EQ(Count(source_metrics::kReadingsAccepted, {{"source", "lines"}}), 4u);
  EXPECT_EQ(Count(source_metrics::kReadingsAccepted, {{"source", "json"}}), 4u);
  // Every line counted once as received: the JSON path saw the seven that converted.
  EXPECT_EQ(Count(source_metrics::kReadingsReceived, {{"source", "lines"}}), 8u);
  EXPECT_EQ(Count(source_metrics::kReadingsReceived, {{"source", "json"}}), 7u);
}

// The TCP source's pipeline (converted on the caller's thread, ingested on its own, the tails
// of large buffers converted there too) leaves in the log exactly what the one-thread worker
// does, in the same order, with the same counts, however the lines are cut into buffers and
// flushes, and with the ingest thread behind (depth 1).
TEST_F(LineProtocolIngestTest, ThePipelineAppendsWhatTheWorkerDoesInOrder) {
  std::string body;
  for (int i = 0; i < 3000; ++i) {
    body += fmt::format("weather,sensor_id={} temperature={}.5,humidity=60 {}\n", i % 7, i % 40, 1704067200000000000 + i * 1'000'000'000LL);
    if (i % 97 == 0) body += "weather,sensor_id=1 temperature=\"warm\" 1704067200000000000\n";  // invalid_number, by ingest
    if (i % 101 == 0) body += "broken line\n";                                                     // invalid_line_protocol
    if (i % 211 == 0) body += fmt::format("weather,sensor_id={} temperature=1e1 {}\n", i % 7, 1704067200000000000 + i * 1'000'000'000LL);  // duplicate
  }
  IngestOptions lines_options, json_options;
  lines_options.topic = "lines";
  json_options.topic = "json";
  Ingest piped_ingest(log_.get(), lines_options, nullptr, &registry_);
  Ingest worker_ingest(log_.get(), json_options, nullptr, &registry_);
  {
    LineProtocolPipeline pipeline(&piped_ingest, {}, "piped", 1, 512);  // buffers from 512 bytes split
    std::string buffer;  // changed after each Add, as the TCP source's is
    size_t at = 0;
    for (size_t cut = 1; at < body.size(); cut = cut * 3 % 4093 + 1) {
      size_t nl = body.find('\n', std::min(body.size() - 1, at + cut));
      buffer.assign(body, at, nl + 1 - at);
      pipeline.Add(buffer, Precision::kNanoseconds);
      buffer.assign(buffer.size(), 'x');
      at = nl + 1;
      if (cut % 2) pipeline.Flush();
    }
    pipeline.Reject("weather,sensor_id=1 temperature=", RejectReason::kOversized, "line longer than max_line_bytes");
    pipeline.Close();
  }
  LineProtocolWorker worker(&worker_ingest, {}, "worker");
  worker.Add(body, Precision::kNanoseconds);
  worker.Reject("weather,sensor_id=1 temperature=", RejectReason::kOversized, "line longer than max_line_bytes");
  ASSERT_TRUE(worker.Flush().ok());

  std::vector<std::string> piped = ReadAll("lines"), direct = ReadAll("json");
  EXPECT_EQ(piped.size(), 3000u);
  EXPECT_EQ(piped, direct);
  for (const char* reason : {"duplicate", "invalid_number", "invalid_line_protocol", "oversized"}) {
    EXPECT_EQ(Count(source_metrics::kReadingsRejected, {{"source", "piped"}, {"reason", reason}}),
              Count(source_metrics::kReadingsRejected, {{"source", "worker"}, {"reason", reason}}))
        << reason;
    EXPECT_GT(Count(source_metrics::kReadingsRejected, {{"source", "piped"}, {"reason", reason}}), 0u) << reason;
  }
  EXPECT_EQ(Count(source_metrics::kReadingsAccepted, {{"source", "piped"}}), 3000u);
  EXPECT_EQ(Count(source_metrics::kReadingsReceived, {{"source", "piped"}}),
            Count(source_metrics::kReadingsReceived, {{"source", "worker"}}));
}

}  // namespace line_protocol_handover_test
}  // namespace mare
