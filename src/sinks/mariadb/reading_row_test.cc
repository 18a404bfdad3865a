#include "sinks/mariadb/reading_row.h"

#include <gtest/gtest.h>

#include "sinks/mariadb/readings_writer.h"

namespace mare::sinks {
namespace {

TEST(ReadingRow, FixedColumnsAndTheOtherFieldsAsJson) {
  ReadingRowReader reader(1 << 20);
  ReadingRow row;
  Status s = reader.Read(
      R"({"timestamp": "2024-01-21 10:06:04.095931", "sensor_id": 1, "temperature": 20.9, "humidity": 59.22,)"
      R"( "pressure": 1001.87, "location": {"lon": 3.185785, "lat": 42.488629}, "status": "ok"})",
      &row);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(row.sensor_id, 1u);
  EXPECT_EQ(row.timestamp_us, 1705831564095931);
  EXPECT_TRUE(row.has_location);
  EXPECT_EQ(row.lat, 42.488629);
  EXPECT_EQ(row.lon, 3.185785);
  EXPECT_EQ(row.fields, R"({"temperature":20.9,"humidity":59.22,"pressure":1001.87,"status":"ok"})");
}

TEST(ReadingRow, NumbersReadBackExactlyAndTextIsEscaped) {
  ReadingRowReader reader(1 << 20);
  ReadingRow row;
  ASSERT_TRUE(reader.Read(R"({"sensor_id": 4294967295, "timestamp": 1705831564, "a": 0.1, "b": -1e-300, "c": 1e300,)"
                          R"( "d": 12345678901234567890, "note": "say \"hi\"\n\u00e9\t\\"})",
                          &row)
                  .ok());
  EXPECT_EQ(row.sensor_id, 4294967295u);
  EXPECT_EQ(row.timestamp_us, 1705831564000000);
  EXPECT_EQ(row.fields, "{\"a\":0.1,\"b\":-1e-300,\"c\":1e+300,\"d\":1.2345678901234567e+19,"
                        "\"note\":\"say \\\"hi\\\"\\n\xc3\xa9\\t\\\\\"}");
}

TEST(ReadingRow, MissingValuesAndNoLocation) {
  ReadingRowReader reader(1 << 20);
  ReadingRow row;
  row.has_location = true;  // a previous row's values must not leak into this one
  row.lat = 1;
  ASSERT_TRUE(reader.Read(R"({"timestamp": "2024-01-21T10:06:04Z", "sensor_id": 9, "temperature": null, "location": null})", &row).ok());
  EXPECT_FALSE(row.has_location);
  EXPECT_EQ(row.lat, 0);
  EXPECT_EQ(row.fields, "{}");
}

TEST(ReadingRow, NoClockAndNoLimitsBeyondWhatIngestChecked) {
  ReadingRowReader reader(1 << 20);
  ReadingRow row;
  // Far in the future, a string in a field ingest may have called numeric, long text: ingest
  // decided about those when the reading arrived.
  std::string text(5000, 'x');
  ASSERT_TRUE(reader.Read(R"({"timestamp": "2999-01-01 00:00:00", "sensor_id": 1, "temperature": "warm", "t": ")" + text + "\"}", &row).ok());
  EXPECT_EQ(row.fields, R"({"temperature":"warm","t":")" + text + "\"}");
}

TEST(ReadingRow, RejectsWhatIsNotOneValidReading) {
  ReadingRowReader reader(1 << 20);
  ReadingRow row;
  EXPECT_TRUE(reader.Read("", &row).IsCorruption());
  EXPECT_TRUE(reader.Read("not json", &row).IsCorruption());
  EXPECT_TRUE(reader.Read(R"({"sensor_id": 1})", &row).IsCorruption());  // no timestamp
  EXPECT_TRUE(reader.Read(R"({"timestamp": 1705831564, "sensor_id": -1})", &row).IsCorruption());
  EXPECT_TRUE(reader.Read(R"([{"timestamp": 1705831564, "sensor_id": 1}])", &row).IsCorruption());
  EXPECT_TRUE(reader.Read("{\"timestamp\": 1705831564, \"sensor_id\": 1}\n{\"timestamp\": 1705831564, \"sensor_id\": 2}", &row)
                  .IsCorruption());
  Status s = reader.Read(R"({"timestamp": 1705831564, "sensor_id": 1, "x": true})", &row);
  EXPECT_TRUE(s.IsCorruption());
  EXPECT_NE(s.message().find("unsupported_value"), std::string::npos) << s.message();
  // And the reader is still good afterwards.
  EXPECT_TRUE(reader.Read(R"({"timestamp": 1705831564, "sensor_id": 1, "x": 1})", &row).ok());
  EXPECT_EQ(row.fields, R"({"x":1})");
}

TEST(ReadingRow, LongerThanItsLimitIsRejected) {
  ReadingRowReader reader(100);
  ReadingRow row;
  std::string text(200, 'x');
  EXPECT_TRUE(reader.Read(R"({"timestamp": 1705831564, "sensor_id": 1, "t": ")" + text + "\"}", &row).IsCorruption());
}

TEST(ReadingsTable, FixedColumnsThenAVirtualColumnPerNumericField) {
  auto columns = ReadingsColumns({"temperature", "wave_height", "ts", "LAT", "bad-name", "9lives", "temperature", ""});
  std::vector<std::string> names;
  for (const auto& [name, def] : columns) names.push_back(name);
  EXPECT_EQ(names, (std::vector<std::string>{"sensor_id", "ts", "lat", "lon", "fields", "log_partition", "log_offset",
                                             "temperature", "wave_height"}));
  EXPECT_EQ(columns[7].second, "DOUBLE AS (JSON_VALUE(`fields`, '$.temperature')) VIRTUAL");
  EXPECT_EQ(columns[1].second, "DATETIME(6) NOT NULL");
  EXPECT_EQ(columns[4].second, "JSON NOT NULL");
}

TEST(ReadingsTable, InsertLeavesARowThatIsThereAlone) {
  EXPECT_EQ(ReadingsInsertSql(),
            "INSERT INTO `readings` (`sensor_id`,`ts`,`lat`,`lon`,`fields`,`log_partition`,`log_offset`) "
            "VALUES (?,?,?,?,?,?,?) ON DUPLICATE KEY UPDATE `log_offset` = `log_offset`");
}

}  // namespace
}  // namespace mare::sinks
