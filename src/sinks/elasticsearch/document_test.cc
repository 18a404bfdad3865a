#include "sinks/elasticsearch/document.h"

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <simdjson.h>

#include <vector>

namespace mare::sinks {
namespace {

// A record of the log holding `json`, without numbers.
log::ConsumedRecord Json(std::string_view json) {
  log::ConsumedRecord r;
  r.value = json;
  return r;
}

// The one document of a reading or a rollup.
Status MakeOne(DocumentMaker& maker, const log::ConsumedRecord& record, Document* out) {
  std::vector<Document> docs;
  size_t made = 0;
  Status s = maker.Make(record, &docs, &made);
  if (s.ok() && made != 1) return Status::InvalidArgument(fmt::format("{} documents made of one record", made));
  if (s.ok()) *out = docs[0];
  return s;
}

TEST(DailyIndex, NamesTheUtcDay) {
  EXPECT_EQ(DailyIndex("mare-readings", 1705831200'000000), "mare-readings-2024.01.21");
  EXPECT_EQ(DailyIndex("mare-readings", 1705881599'999999), "mare-readings-2024.01.21");  // 23:59:59.999999
  EXPECT_EQ(DailyIndex("mare-readings", 1705881600'000000), "mare-readings-2024.01.22");
}

TEST(ReadingDocuments, ReadingBecomesDocumentWithDeterministicId) {
  auto maker = MakeReadingDocuments("mare", 1 << 20);
  Document d;
  ASSERT_TRUE(MakeOne(*maker, Json(R"({"timestamp":"2024-01-21 10:06:04.095931","sensor_id":7,"temperature":20.9,)"
                               R"("pressure":1001,"location":{"lon":3.185785,"lat":42.488629},"status":"ok \"x\""})"),
                          &d)
                  .ok());
  EXPECT_EQ(d.index, "mare-readings-2024.01.21");
  EXPECT_EQ(d.id, "7-1705831564095931");
  EXPECT_EQ(d.version, -1);
  EXPECT_EQ(d.source,
            R"({"@timestamp":"2024-01-21T10:06:04.095931Z","sensor_id":"7","location":{"lat":42.488629,"lon":3.185785},)"
            R"("temperature":20.9,"pressure":1001,"status":"ok \"x\""})");
  // The same reading in another timestamp form is the same document.
  Document again;
  ASSERT_TRUE(MakeOne(*maker, Json(R"({"timestamp":"2024-01-21T12:06:04.095931+02:00","sensor_id":7,"temperature":20.9})"), &again).ok());
  EXPECT_EQ(again.id, d.id);
  EXPECT_EQ(again.index, d.index);
}

// The maker keeps the last day's index name: readings crossing midnight, back and forth, and
// before 1970, each go to their own day.
TEST(ReadingDocuments, EachReadingGoesToTheIndexOfItsDay) {
  auto maker = MakeReadingDocuments("mare", 1 << 20);
  auto index_of = [&](std::string_view ts) {
    Document d;
    std::string json = fmt::format(R"({{"timestamp":"{}","sensor_id":1,"temperature":1}})", ts);
    EXPECT_TRUE(MakeOne(*maker, Json(json), &d).ok()) << ts;
    return d.index;
  };
  EXPECT_EQ(index_of("2024-01-21T23:59:59.999999Z"), "mare-readings-2024.01.21");
  EXPECT_EQ(index_of("2024-01-22T00:00:00Z"), "mare-readings-2024.01.22");
  EXPECT_EQ(index_of("2024-01-21T00:00:00Z"), "mare-readings-2024.01.21");
  EXPECT_EQ(index_of("2024-01-22T23:59:59Z"), "mare-readings-2024.01.22");
  EXPECT_EQ(index_of("1969-12-31T23:00:00Z"), "mare-readings-1969.12.31");
  EXPECT_EQ(index_of("1970-01-01T00:00:00Z"), "mare-readings-1970.01.01");
}

// A record carrying its numbers (as ingest appends them to the embedded log) is the same
// document as its JSON parsed: the numbers are taken from the log, the rest from the JSON.
TEST(ReadingDocuments, ARecordWithItsNumbersIsTheSameDocument) {
  auto maker = MakeReadingDocuments("mare", 1 << 20);
  const std::string json =
      R"({"timestamp":"2024-01-21 10:06:04.095931","sensor_id":7,"temperature":20.9,"humidity":null,)"
      R"("pressure":1001,"location":{"lon":3.185785,"lat":42.488629},"status":"ok","station":"Banyuls"})";
  const std::vector<NumberField> numbers = {{"temperature", 20.9}, {"pressure", 1001}};
  log::ConsumedRecord r = Json(json);
  r.timestamp_us = 1705831564095931;  // the reading's event time, as ingest sets it
  r.key = "7";
  r.has_numbers = true;
  r.numbers = numbers;
  Document carried, parsed;
  ASSERT_TRUE(MakeOne(*maker, r, &carried).ok());
  ASSERT_TRUE(MakeOne(*maker, Json(json), &parsed).ok());
  EXPECT_EQ(carried.index, parsed.index);
  EXPECT_EQ(carried.id, parsed.id);
  EXPECT_EQ(carried.source, parsed.source);
  EXPECT_EQ(carried.source,
            R"({"@timestamp":"2024-01-21T10:06:04.095931Z","sensor_id":"7","location":{"lat":42.488629,"lon":3.185785},)"
            R"("temperature":20.9,"pressure":1001,"status":"ok","station":"Banyuls"})");
}

TEST(ReadingDocuments, UnreadableRecordIsCorruptionWithReason) {
  auto maker = MakeReadingDocuments("mare", 1 << 20);
  Document d;
  Status s = MakeOne(*maker, Json(R"({"sensor_id":7,"temperature":20.9})"), &d);
  EXPECT_TRUE(s.IsCorruption());
  EXPECT_NE(s.message().find("missing_timestamp"), std::string::npos) << s.message();
  EXPECT_TRUE(MakeOne(*maker, Json("[{}]"), &d).IsCorruption());
  EXPECT_TRUE(MakeOne(*maker, Json(""), &d).IsCorruption());
}

TEST(RollupDocuments, RollupKeepsItsFieldsAndVersionsByRevision) {
  auto maker = MakeRollupDocuments("mare");
  Document d;
  const char* json =
      R"({"sensor_id":7,"field":"temperature","resolution":"1h","window_start":"2024-01-21T10:00:00.000000Z",)"
      R"("window_end":"2024-01-21T11:00:00.000000Z","count":3600,"min":12.1,"max":14.9,"mean":13.52,"stddev":0.61,)"
      R"("first":12.4,"last":14.2,"revision":3600,"final":false})";
  ASSERT_TRUE(MakeOne(*maker, Json(json), &d).ok());
  EXPECT_EQ(d.index, "mare-rollups-2024.01.21");
  EXPECT_EQ(d.id, "7/temperature/1h/1705831200000000");
  EXPECT_EQ(d.version, 3600);
  EXPECT_EQ(d.source, std::string(R"({"@timestamp":"2024-01-21T10:00:00.000000Z",)") + (json + 1));
  EXPECT_TRUE(MakeOne(*maker, Json(R"({"sensor_id":7,"field":"t"})"), &d).IsCorruption());
}

// In data-stream mode a reading goes to the one data stream, as a `create`, under the same id.
TEST(ReadingDocuments, InDataStreamModeGoToTheStreamAsCreates) {
  auto maker = MakeReadingDocuments("mare", 1 << 20, /*data_stream=*/true);
  EXPECT_EQ(maker->name(), "mare-readings-stream");
  Document d;
  ASSERT_TRUE(MakeOne(*maker, Json(R"({"timestamp":"2024-01-21 10:06:04.095931","sensor_id":7,"temperature":20.9})"), &d).ok());
  EXPECT_EQ(d.index, "mare-readings-stream");
  EXPECT_EQ(d.id, "7-1705831564095931");
  EXPECT_TRUE(d.create);
  ASSERT_TRUE(MakeOne(*MakeReadingDocuments("mare", 1 << 20), Json(R"({"timestamp":"2024-01-21 10:06:04","sensor_id":7})"), &d).ok());
  EXPECT_FALSE(d.create);

  std::string t = maker->Template(0);
  simdjson::dom::parser parser;
  simdjson::dom::element root, stream;
  ASSERT_FALSE(parser.parse(t).get(root)) << t;
  std::string_view pattern;
  ASSERT_FALSE(root["index_patterns"].at(0).get(pattern));
  EXPECT_EQ(pattern, "mare-readings-stream");
  ASSERT_FALSE(root["data_stream"].get(stream)) << t;
  int64_t priority = 0;
  ASSERT_FALSE(root["priority"].get(priority));
  EXPECT_GT(priority, 200);  // above the daily template's, whose pattern mare-readings-* covers the stream
}

// A forecast issue is one document per target hour, each in the index of its hour's day, under
// sensor/field/issued_at/target_hour; a null value, lower or upper is left out.
TEST(ForecastDocuments, AnIssueIsOneDocumentPerTargetHour) {
  auto maker = MakeForecastDocuments("mare");
  const char* json =
      R"({"sensor_id":7,"field":"temperature","issued_at":"2024-01-21T23:00:00.000000Z","day_ahead":false,)"
      R"("model":"ensemble","hours":[{"target_hour":"2024-01-21T23:00:00.000000Z","value":13.52,"lower":12.9,"upper":14.1},)"
      R"({"target_hour":"2024-01-22T00:00:00.000000Z","value":13.7,"lower":null,"upper":null}]})";
  std::vector<Document> docs(1);
  docs[0].source = "kept";  // documents before *made are left alone
  size_t made = 1;
  ASSERT_TRUE(maker->Make(Json(json), &docs, &made).ok());
  ASSERT_EQ(made, 3u);
  EXPECT_EQ(docs[0].source, "kept");
  EXPECT_EQ(docs[1].index, "mare-forecasts-2024.01.21");
  EXPECT_EQ(docs[1].id, "7/temperature/1705878000000000/1705878000000000");
  EXPECT_EQ(docs[1].source,
            R"({"@timestamp":"2024-01-21T23:00:00.000000Z","sensor_id":"7","field":"temperature",)"
            R"("issued_at":"2024-01-21T23:00:00.000000Z","target_hour":"2024-01-21T23:00:00.000000Z","lead_hours":0,)"
            R"("value":13.52,"lower":12.9,"upper":14.1,"model":"ensemble","day_ahead":false})");
  EXPECT_EQ(docs[2].index, "mare-forecasts-2024.01.22");
  EXPECT_EQ(docs[2].id, "7/temperature/1705878000000000/1705881600000000");
  EXPECT_EQ(docs[2].source,
            R"({"@timestamp":"2024-01-22T00:00:00.000000Z","sensor_id":"7","field":"temperature",)"
            R"("issued_at":"2024-01-21T23:00:00.000000Z","target_hour":"2024-01-22T00:00:00.000000Z","lead_hours":1,)"
            R"("value":13.7,"model":"ensemble","day_ahead":false})");
  for (size_t k = 1; k < 3; ++k) {
    EXPECT_EQ(docs[k].version, -1);
    EXPECT_FALSE(docs[k].create);
  }
  // Not an issue: Corruption, nothing made.
  EXPECT_TRUE(maker->Make(Json(R"({"sensor_id":7,"field":"t"})"), &docs, &made).IsCorruption());
  EXPECT_EQ(made, 3u);
}

TEST(Templates, AreJsonWithTheMappingsKibanaNeeds) {
  for (auto& maker : {MakeReadingDocuments("obs", 1 << 20), MakeRollupDocuments("obs"), MakeForecastDocuments("obs")}) {
    std::string t = maker->Template(0);
    simdjson::dom::parser parser;
    simdjson::dom::element root;
    ASSERT_FALSE(parser.parse(t).get(root)) << t;
    std::string_view pattern, ts, sensor;
    ASSERT_FALSE(root["index_patterns"].at(0).get(pattern));
    EXPECT_EQ(pattern, maker->name() + "-*");
    ASSERT_FALSE(root.at_pointer("/template/mappings/properties/@timestamp/type").get(ts));
    EXPECT_EQ(ts, "date");
    ASSERT_FALSE(root.at_pointer("/template/mappings/properties/sensor_id/type").get(sensor));
    EXPECT_EQ(sensor, "keyword");
    int64_t replicas = -1;
    ASSERT_FALSE(root.at_pointer("/template/settings/number_of_replicas").get(replicas));
    EXPECT_EQ(replicas, 0);
  }
  std::string_view location;
  simdjson::dom::parser parser;
  simdjson::dom::element root;
  std::string t = MakeReadingDocuments("obs", 1 << 20)->Template(1);
  ASSERT_FALSE(parser.parse(t).get(root));
  ASSERT_FALSE(root.at_pointer("/template/mappings/properties/location/type").get(location));
  EXPECT_EQ(location, "geo_point");
}

TEST(RecordsPerBulk, AForecastRecordCountsAsItsMostDocuments) {
  EXPECT_EQ(RecordsPerBulk("raw", 5000), 5000u);
  EXPECT_EQ(RecordsPerBulk("rollups", 5000), 5000u);
  EXPECT_EQ(RecordsPerBulk("forecasts", 5000), 29u);  // 29 x 168 = 4,872 documents at most
  EXPECT_EQ(RecordsPerBulk("forecasts", 100), 1u);    // never none
}

}  // namespace
}  // namespace mare::sinks
