#include "sinks/clickhouse/tables.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace mare::sinks::clickhouse {
namespace {

// The bytes docs/formats/clickhouse.md says a reading becomes, written out by hand.
TEST(ReadingsTable, ARowIsTheDocumentedBytes) {
  ReadingsTable table({"temperature", "humidity"});
  EXPECT_EQ(table.ColumnList(),
            "(`sensor_id`, `ts`, `ts_us`, `lat`, `lon`, `temperature`, `humidity`, `number_names`, `number_values`, "
            "`text_names`, `text_values`)");
  Reading r;
  r.sensor_id = 7;
  r.timestamp_us = 1'700'000'000'123'456;
  r.has_location = true;
  r.lat = 42.5;
  r.lon = -3.25;
  r.numbers = {{"humidity", 80.0}, {"wave", 1.5}};
  r.texts = {{"status", "ok"}};
  std::string out;
  ASSERT_TRUE(table.Append(r, &out).ok());
  std::string want;
  auto fixed = [&](auto v) { want.append(reinterpret_cast<const char*>(&v), sizeof(v)); };
  fixed(uint32_t{7});
  fixed(uint32_t{1'700'000'000});
  fixed(int64_t{1'700'000'000'123'456});
  want.push_back(0), fixed(42.5);
  want.push_back(0), fixed(-3.25);
  want.push_back(1);                 // temperature NULL
  want.push_back(0), fixed(80.0);    // humidity
  want += std::string("\x01\x04wave", 6);
  want += "\x01", fixed(1.5);
  want += std::string("\x01\x06status", 8);
  want += std::string("\x01\x02ok", 4);
  EXPECT_EQ(out, want);
}

// The table remembers which column each place's field went to in the previous reading: readings
// of other shapes in a row must still each be the row a fresh table makes of them.
TEST(ReadingsTable, ReadingsOfChangingShapesAreEachTheirOwnRow) {
  ReadingsTable table({"temperature", "humidity"});
  std::vector<std::vector<NumberField>> shapes = {
      {{"humidity", 80.0}, {"wave", 1.5}},
      {{"humidity", 81.0}, {"wave", 1.6}},
      {{"wave", 1.7}, {"humidity", 82.0}},
      {{"humidity", 83.0}},
      {{"temperature", 12.5}, {"humidity", 84.0}, {"wave", 1.8}, {"wind", 3.0}},
      {},
      {{"temperature", 13.5}, {"humid", 1.0}, {"wave", 1.9}},
  };
  for (size_t i = 0; i < shapes.size(); ++i) {
    Reading r;
    r.sensor_id = 7;
    r.timestamp_us = 1'700'000'000'000'000 + static_cast<int64_t>(i);
    r.numbers = shapes[i];
    std::string row, fresh_row;
    ASSERT_TRUE(table.Append(r, &row).ok());
    ReadingsTable fresh({"temperature", "humidity"});
    ASSERT_TRUE(fresh.Append(r, &fresh_row).ok());
    EXPECT_EQ(row, fresh_row) << "reading " << i;
  }
}

// Append counts a row's bytes before it writes them: lengths of more than one LEB128 byte, a
// field given twice (its last value) and rows after others must come out as written by hand.
TEST(ReadingsTable, LongNamesRepeatedFieldsAndRowsAfterOthersAreTheDocumentedBytes) {
  ReadingsTable table({"temperature"});
  std::string long_name(200, 'n'), long_text(20'000, 't');
  Reading r;
  r.sensor_id = 9;
  r.timestamp_us = 3'000'000;
  r.numbers = {{"temperature", 1.0}, {long_name, 2.0}, {"temperature", 3.0}};
  r.texts = {{"note", long_text}};
  std::string out = "previous";
  ASSERT_TRUE(table.Append(r, &out).ok());
  std::string want = "previous";
  auto fixed = [&](auto v) { want.append(reinterpret_cast<const char*>(&v), sizeof(v)); };
  fixed(uint32_t{9});
  fixed(uint32_t{3});
  fixed(int64_t{3'000'000});
  want += std::string("\x01\x01", 2);  // no location
  want.push_back(0), fixed(3.0);          // temperature: the last one given
  want += "\x01", want += std::string("\xc8\x01", 2) + long_name;  // 200 = 0xc8 0x01
  want += "\x01", fixed(2.0);
  want += std::string("\x01\x04note", 6);
  want += "\x01", want += std::string("\xa0\x9c\x01", 3) + long_text;  // 20,000
  EXPECT_EQ(out, want);
}

TEST(ReadingsTable, AReadingWithoutLocationHasNullCoordinates) {
  ReadingsTable table({});
  Reading r;
  r.sensor_id = 1;
  r.timestamp_us = 5'000'000;
  std::string out;
  ASSERT_TRUE(table.Append(r, &out).ok());
  // sensor, seconds, micros, two NULLs, four empty arrays.
  EXPECT_EQ(out.size(), 4u + 4 + 8 + 1 + 1 + 4);
  EXPECT_EQ(out.substr(16, 2), std::string("\x01\x01", 2));
}

TEST(ReadingsTable, AFieldNamedLikeAFixedColumnStaysInTheArrays) {
  ReadingsTable table({"lat", "temperature", "temperature"});
  EXPECT_EQ(table.columns().size(), 5u + 1 + 4);
}

TEST(ReadingsTable, TimestampsOutsideDateTimeAreRefusedWithTheReason) {
  ReadingsTable table({});
  Reading r;
  r.timestamp_us = -1;
  std::string out;
  Status s = table.Append(r, &out);
  EXPECT_EQ(s.code(), Status::Code::kInvalidArgument);
  EXPECT_NE(s.message().find("DateTime"), std::string::npos);
  EXPECT_TRUE(out.empty());
  r.timestamp_us = (int64_t{1} << 32) * 1'000'000;  // 2106-02-07T06:28:16Z
  EXPECT_FALSE(table.Append(r, &out).ok());
  r.timestamp_us = (int64_t{1} << 32) * 1'000'000 - 1;
  EXPECT_TRUE(table.Append(r, &out).ok());
}

TEST(RollupsTable, ARowIsTheDocumentedBytes) {
  RollupMessage m;
  m.sensor_id = 3;
  m.field = "temperature";
  m.resolution = "1h";
  m.window_start_us = 3'600'000'000;
  m.count = 60;
  m.min = 1, m.max = 2, m.mean = 1.5, m.stddev = 0.25, m.first = 1.25, m.last = 1.75;
  m.revision = 9;
  m.final = true;
  std::string out;
  ASSERT_TRUE(RollupsTable().Append(m, &out).ok());
  std::string want;
  auto fixed = [&](auto v) { want.append(reinterpret_cast<const char*>(&v), sizeof(v)); };
  fixed(uint32_t{3});
  want += std::string("\x0btemperature", 12);
  want += std::string("\x02" "1h", 3);
  fixed(uint32_t{3600});
  fixed(int64_t{3'600'000'000});
  fixed(uint64_t{60});
  for (double v : {1.0, 2.0, 1.5, 0.25, 1.25, 1.75}) fixed(v);
  fixed(uint64_t{9});
  want.push_back(1);
  want += std::string("\x06stream", 7);
  EXPECT_EQ(out, want);
}

TEST(Quoting, NamesAndTextAreEscaped) {
  EXPECT_EQ(QuoteName("a`b"), "`a\\`b`");
  EXPECT_EQ(QuoteText("it's"), "'it\\'s'");
}

}  // namespace
}  // namespace mare::sinks::clickhouse
