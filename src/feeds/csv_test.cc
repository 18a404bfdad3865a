// Replaying CSV archives: header detection, time forms, missing cells, --missing codes.
#include "archive/csv.h"

#include <gtest/gtest.h>

#include <bit>
#include <charconv>
#include <cmath>

#include "archive/csv_blocks.h"
#include "archive/csv_column_types.h"
#include "archive/open_archive.h"
#include "feeds/reading_json.h"
#include "reading/timestamp.h"
#include "feeds/test_util.h"

namespace mare::feeds {
namespace {

// The archive formats replay reads (src/archive/); their tests stay here beside the data paths.
using archive::ArchiveOptions;
using archive::ArchiveReader;
using archive::DetectArchiveFormat;
using archive::OpenArchive;
using archive::SplitCsvLine;
using testing::TempDir;
using testing::WriteFile;

struct Replayed {
  std::unique_ptr<ArchiveReader> reader;  // owns the field names the readings point to
  std::vector<Reading> readings;
  std::vector<size_t> skipped_lines;
  std::vector<std::string> reasons;
};

Replayed ReadCsv(const std::string& text, ArchiveOptions options = {}) {
  TempDir dir;
  std::string path = dir.File("data.csv");
  WriteFile(path, text);
  Replayed out;
  Result<std::string> format = DetectArchiveFormat(path);
  EXPECT_TRUE(format.ok() && *format == "csv");
  Result<std::unique_ptr<ArchiveReader>> opened = OpenArchive(path, options);
  EXPECT_TRUE(opened.ok()) << opened.status().ToString();
  if (!opened) return out;
  out.reader = std::move(*opened);
  Reading r;
  for (;;) {
    ArchiveReader::Row row = out.reader->Next(&r);
    if (row == ArchiveReader::Row::kEnd) break;
    if (row == ArchiveReader::Row::kSkipped) {
      out.skipped_lines.push_back(out.reader->line());
      out.reasons.push_back(out.reader->why());
      continue;
    }
    out.readings.push_back(r);
  }
  return out;
}

TEST(Csv, ReadsTheHeaderAndTypesColumns) {
  Replayed r = ReadCsv(
      "timestamp,sensor_id,Air Temp,humidity,status,lat,lon\r\n"
      "2024-01-21 10:06:04.095931,3,20.9,59.22,ok,42.488629,3.185785\r\n"
      "2024-01-21T10:07:04Z,4,21,,\"stuck, again\",,\r\n");
  ASSERT_EQ(r.readings.size(), 2u);
  const Reading& a = r.readings[0];
  EXPECT_EQ(FormatReadingTime(a.time_micros), "2024-01-21 10:06:04.095931");
  EXPECT_EQ(a.sensor_id, 3u);
  EXPECT_EQ(*a.Number("air_temp"), 20.9);
  EXPECT_EQ(*a.Number("humidity"), 59.22);
  EXPECT_EQ(*a.Text("status"), "ok");
  ASSERT_TRUE(a.location.has_value());
  EXPECT_EQ(a.location->lat, 42.488629);
  EXPECT_EQ(a.location->lon, 3.185785);
  EXPECT_EQ(a.Number("lat"), nullptr);  // position columns become the location, not fields

  const Reading& b = r.readings[1];
  EXPECT_EQ(FormatReadingTime(b.time_micros), "2024-01-21 10:07:04.000000");
  EXPECT_EQ(b.sensor_id, 4u);
  EXPECT_EQ(b.Number("humidity"), nullptr);  // empty cell
  EXPECT_EQ(*b.Text("status"), "stuck, again");
  EXPECT_FALSE(b.location.has_value());
}

TEST(Csv, MissingMarkersAndCodesAreAbsent) {
  const std::string text =
      "time;temp;pressure;note\n"
      "2024-01-21 10:00:00;NA;1013.2;x\n"
      "2024-01-21 11:00:00;nan;9999.0;null\n"
      "2024-01-21 12:00:00;NULL;999;N/A\n"
      "2024-01-21 13:00:00;  7.5 ;99.0;\n";
  Replayed plain = ReadCsv(text);
  ASSERT_EQ(plain.readings.size(), 4u);
  EXPECT_EQ(plain.readings[0].Number("temp"), nullptr);
  EXPECT_EQ(plain.readings[1].Number("temp"), nullptr);
  EXPECT_EQ(plain.readings[2].Number("temp"), nullptr);
  EXPECT_EQ(*plain.readings[3].Number("temp"), 7.5);
  EXPECT_EQ(*plain.readings[1].Number("pressure"), 9999.0);  // no code given: a number
  EXPECT_EQ(plain.readings[1].Text("note"), nullptr);
  EXPECT_EQ(*plain.readings[2].Text("note"), "N/A");  // not a missing marker: text as written
  EXPECT_EQ(plain.readings[3].Text("note"), nullptr);

  ArchiveOptions options;
  options.missing_codes = {9999.0, 999, 99};
  Replayed coded = ReadCsv(text, options);
  ASSERT_EQ(coded.readings.size(), 4u);
  EXPECT_EQ(*coded.readings[0].Number("pressure"), 1013.2);
  EXPECT_EQ(coded.readings[1].Number("pressure"), nullptr);
  EXPECT_EQ(coded.readings[2].Number("pressure"), nullptr);
  EXPECT_EQ(coded.readings[3].Number("pressure"), nullptr);  // 99.0 == 99
}

// --missing codes are values: a sensor_id equal to one is that sensor, not the default.
TEST(Csv, MissingCodesNeverApplyToTheSensorId) {
  ArchiveOptions options;
  options.sensor_id = 5;
  options.missing_codes = {99};
  Replayed r = ReadCsv("ts,sensor_id,v\n2024-01-21 10:00:00,99,99\n2024-01-21 10:00:01,NA,1\n", options);
  ASSERT_EQ(r.readings.size(), 1u);
  EXPECT_EQ(r.readings[0].sensor_id, 99u);
  EXPECT_EQ(r.readings[0].Number("v"), nullptr);  // the field's 99 is the code
  // A missing cell names no sensor: skipped, not given the default (5 could be a real sensor).
  EXPECT_EQ(r.skipped_lines, (std::vector<size_t>{3}));
  EXPECT_EQ(r.reasons[0], "the sensor_id cell is missing");
}

// A longitude without a latitude column has nowhere to go (a location needs both, and SQL's
// own lon column would hide a field of that name): a row with a value is skipped, saying so.
TEST(Csv, ALoneLongitudeColumnSkipsTheRowsWithAValue) {
  ArchiveOptions options;
  options.missing_codes = {999};
  Replayed r = ReadCsv("ts,Longitude,v\n2024-01-21 10:00:00,3.5,1\n2024-01-21 10:00:01,,2\n2024-01-21 10:00:02,999,3\n", options);
  ASSERT_EQ(r.readings.size(), 2u);
  EXPECT_EQ(r.skipped_lines, (std::vector<size_t>{2}));
  EXPECT_EQ(r.reasons[0], "longitude \"3.5\" without a latitude column: a location needs both");
  EXPECT_FALSE(r.readings[0].location.has_value());
}

// Eight digits that make a date are refused, not read as a 1970 epoch; a decimal point or a
// date's dashes say which.
TEST(Csv, AnEightDigitDateIsAmbiguous) {
  Replayed r = ReadCsv("ts,v\n20240121,1\n20240121.0,2\n2024-01-21,3\n99999999,4\n");
  EXPECT_EQ(r.skipped_lines, (std::vector<size_t>{2}));
  EXPECT_EQ(r.reasons[0], "time \"20240121\": '20240121' is ambiguous: a date (write 2024-01-21) or epoch seconds (write 20240121.0)");
  ASSERT_EQ(r.readings.size(), 3u);
  EXPECT_EQ(FormatReadingTime(r.readings[0].time_micros), "1970-08-23 06:15:21.000000");
  EXPECT_EQ(FormatReadingTime(r.readings[1].time_micros), "2024-01-21 00:00:00.000000");
  EXPECT_EQ(FormatReadingTime(r.readings[2].time_micros), "1973-03-03 09:46:39.000000");  // no date: an epoch
}

TEST(Csv, DefaultsForSensorAndLocation) {
  ArchiveOptions options;
  options.sensor_id = 44005;
  options.location = Location{43.2, -69.13};
  Replayed r = ReadCsv("Date,value\n2024-01-21,1\n2024-01-22,2\n", options);
  ASSERT_EQ(r.readings.size(), 2u);
  EXPECT_EQ(FormatReadingTime(r.readings[1].time_micros), "2024-01-22 00:00:00.000000");
  EXPECT_EQ(r.readings[0].sensor_id, 44005u);
  ASSERT_TRUE(r.readings[0].location.has_value());
  EXPECT_EQ(r.readings[0].location->lat, 43.2);
}

TEST(Csv, JoinsDateAndTimeColumnsAndTakesEpochs) {
  Replayed joined = ReadCsv("date,time,v\n2024-01-21,10:06:04,1\n");
  ASSERT_EQ(joined.readings.size(), 1u);
  EXPECT_EQ(FormatReadingTime(joined.readings[0].time_micros), "2024-01-21 10:06:04.000000");
  Replayed epoch = ReadCsv("ts,v\n1705831564,1\n1705831564500,2\n");
  ASSERT_EQ(epoch.readings.size(), 2u);
  EXPECT_EQ(FormatReadingTime(epoch.readings[0].time_micros), "2024-01-21 10:06:04.000000");
  EXPECT_EQ(FormatReadingTime(epoch.readings[1].time_micros), "2024-01-21 10:06:04.500000");
}

// The UCI Beijing data's form: no time column, the civil parts in year, month, day, hour; local
// time, so --utc-offset +08:00 makes 2010-01-01 08:00 there 00:00 UTC.
TEST(Csv, TimeFromCivilPartsInLocalTime) {
  const std::string text =
      "No,year,month,day,hour,pm2.5,TEMP\n"
      "1,2010,1,1,0,,-11\n"
      "2,2010,1,1,8,129,-7\n"
      "3,2010,2,30,8,1,1\n";
  Replayed utc = ReadCsv(text);
  ASSERT_EQ(utc.readings.size(), 2u);
  EXPECT_EQ(FormatReadingTime(utc.readings[1].time_micros), "2010-01-01 08:00:00.000000");
  EXPECT_EQ(utc.skipped_lines, (std::vector<size_t>{4}));  // February 30
  EXPECT_EQ(utc.readings[0].Number("year"), nullptr);     // the parts are the time, not fields
  EXPECT_EQ(utc.readings[0].Number("hour"), nullptr);
  EXPECT_EQ(*utc.readings[1].Number("temp"), -7);
  EXPECT_EQ(*utc.readings[1].Number("no"), 2);
  ArchiveOptions options;
  options.utc_offset_micros = *archive::ParseUtcOffset("+08:00");
  Replayed local = ReadCsv(text, options);
  ASSERT_EQ(local.readings.size(), 2u);
  EXPECT_EQ(FormatReadingTime(local.readings[0].time_micros), "2009-12-31 16:00:00.000000");
  EXPECT_EQ(FormatReadingTime(local.readings[1].time_micros), "2010-01-01 00:00:00.000000");
}

TEST(Csv, UtcOffsetAppliesOnlyToTimesWithoutAZone) {
  ArchiveOptions options;
  options.utc_offset_micros = *archive::ParseUtcOffset("-05:30");
  Replayed r = ReadCsv(
      "timestamp,v\n"
      "2024-01-21 10:00:00,1\n"
      "2024-01-21T10:00:00Z,2\n"
      "2024-01-21T10:00:00+01:00,3\n"
      "1705831200,4\n",
      options);
  ASSERT_EQ(r.readings.size(), 4u);
  EXPECT_EQ(FormatReadingTime(r.readings[0].time_micros), "2024-01-21 15:30:00.000000");
  EXPECT_EQ(FormatReadingTime(r.readings[1].time_micros), "2024-01-21 10:00:00.000000");
  EXPECT_EQ(FormatReadingTime(r.readings[2].time_micros), "2024-01-21 09:00:00.000000");
  EXPECT_EQ(FormatReadingTime(r.readings[3].time_micros), "2024-01-21 10:00:00.000000");
}

// The years readings keep (1900 to 9999) are checked on the UTC time, once --utc-offset or the
// time's own zone has moved it: 1900-01-01 00:00 at +08:00 is 1899-12-31 16:00 UTC, refused.
TEST(Csv, TheYearsAreCheckedOnTheUtcTime) {
  // A file read at an offset: its one reading's time is `kept`; the reasons of the rows skipped.
  auto read_at = [](const char* offset, const std::string& text, const std::string& kept) {
    ArchiveOptions options;
    options.utc_offset_micros = *archive::ParseUtcOffset(offset);
    Replayed r = ReadCsv(text, options);
    EXPECT_EQ(r.readings.size(), 1u) << text;
    if (!r.readings.empty()) {
      EXPECT_EQ(FormatReadingTime(r.readings[0].time_micros), kept) << text;
    }
    return r.reasons;
  };
  using Reasons = std::vector<std::string>;
  EXPECT_EQ(read_at("+08:00", "year,month,day,hour,v\n1900,1,1,0,1\n1900,1,1,8,2\n", "1900-01-01 00:00:00.000000"),
            (Reasons{"time from its parts: 1900-01-01 00:00 at UTC+08:00 is 1899-12-31 16:00:00 UTC, outside the years 1900 to 9999"}));
  EXPECT_EQ(read_at("+08:00", "timestamp,v\n1900-01-01 00:00,1\n1900-01-01 08:00,2\n1900-01-01T00:00:00+01:00,3\n",
                    "1900-01-01 00:00:00.000000"),
            (Reasons{"time \"1900-01-01 00:00\": '1900-01-01 00:00' is 1899-12-31 16:00:00 UTC, outside the years 1900 to 9999",
                     "time \"1900-01-01T00:00:00+01:00\": '1900-01-01T00:00:00+01:00' is 1899-12-31 23:00:00 UTC, outside the years "
                     "1900 to 9999"}));
  // And the other way: written in 1899, 1900 in UTC at -01:00, taken (a text cell as its parts).
  EXPECT_EQ(read_at("-01:00", "timestamp,v\n1899-12-31 23:00:00,1\n1899-12-31 22:59:59,2\n", "1900-01-01 00:00:00.000000"),
            (Reasons{"time \"1899-12-31 22:59:59\": '1899-12-31 22:59:59' is 1899-12-31 23:59:59 UTC, outside the years 1900 to 9999"}));
  EXPECT_EQ(read_at("-05:00", "year,month,day,hour,v\n9999,12,31,18,1\n9999,12,31,19,2\n", "9999-12-31 23:00:00.000000"),
            (Reasons{"time from its parts: 9999-12-31 19:00 at UTC-05:00 is 10000-01-01 00:00:00 UTC, outside the years 1900 to 9999"}));
}

TEST(Csv, ParsesUtcOffsets) {
  EXPECT_EQ(*archive::ParseUtcOffset("+08:00"), 8 * 3'600'000'000LL);
  EXPECT_EQ(*archive::ParseUtcOffset("+0800"), 8 * 3'600'000'000LL);
  EXPECT_EQ(*archive::ParseUtcOffset("8"), 8 * 3'600'000'000LL);
  EXPECT_EQ(*archive::ParseUtcOffset("-05:30"), -330 * 60'000'000LL);
  EXPECT_EQ(*archive::ParseUtcOffset("0"), 0);
  EXPECT_FALSE(archive::ParseUtcOffset("+15").ok());
  EXPECT_FALSE(archive::ParseUtcOffset("+08:60").ok());
  EXPECT_FALSE(archive::ParseUtcOffset("eight").ok());
  EXPECT_FALSE(archive::ParseUtcOffset("").ok());
}

TEST(Csv, ColumnWithAnyTextIsText) {
  Replayed r = ReadCsv("timestamp,code\n2024-01-21 10:00:00,12\n2024-01-21 11:00:00,A7\n");
  ASSERT_EQ(r.readings.size(), 2u);
  EXPECT_EQ(r.readings[0].Number("code"), nullptr);
  EXPECT_EQ(*r.readings[0].Text("code"), "12");
  EXPECT_EQ(*r.readings[1].Text("code"), "A7");
}

TEST(Csv, SkipsAndReportsBadRows) {
  Replayed r = ReadCsv(
      "timestamp,sensor_id,v\n"
      "2024-01-21 10:00:00,1,1\n"
      "not a date,1,2\n"
      "\n"
      "2024-01-21 11:00:00,1\n"
      "2024-01-21 12:00:00,-4,3\n"
      "2024-01-21 13:00:00,,4\n"
      "2024-01-21 14:00:00,4294967296,5\n");
  ASSERT_EQ(r.readings.size(), 1u);
  EXPECT_EQ(r.skipped_lines, (std::vector<size_t>{3, 5, 6, 7, 8}));
  // The bulk import's wording too: the reasons are worded once (archive/csv_format.h).
  EXPECT_EQ(r.reasons[0].rfind("time \"not a date\": 'not a date' is not a time", 0), 0u) << r.reasons[0];
  EXPECT_EQ(r.reasons[1], "2 cells, the header has 3");
  EXPECT_EQ(r.reasons[2], "sensor_id \"-4\" is not a number from 0 to 4294967295");
  EXPECT_EQ(r.reasons[3], "the sensor_id cell is missing");
  EXPECT_EQ(r.reasons[4], "sensor_id \"4294967296\" is not a number from 0 to 4294967295");
}

TEST(Csv, NamesThatClashGetASuffix) {
  Replayed r = ReadCsv("timestamp,Location,location,Temp\n2024-01-21 10:00:00,a,b,1\n");
  ASSERT_EQ(r.readings.size(), 1u);
  EXPECT_EQ(*r.readings[0].Text("location_2"), "a");
  EXPECT_EQ(*r.readings[0].Text("location_3"), "b");
  EXPECT_EQ(*r.readings[0].Number("temp"), 1);
}

// Suffixes are found in linear time: a header of a thousand empty names made the search cubic
// (fuzz/corpus/archive/many-empty-names, a libFuzzer timeout). A name that is itself taken as a
// suffix gets one of its own.
TEST(Csv, ManyClashingNamesAreSuffixedInOrder) {
  std::string header = "timestamp,v_2", row = "2024-01-21 10:00:00,-1";
  for (int i = 0; i < 2000; ++i) {
    header += ",v";
    row += "," + std::to_string(i);
  }
  Replayed r = ReadCsv(header + "\n" + row + "\n");
  ASSERT_EQ(r.readings.size(), 1u);
  EXPECT_EQ(*r.readings[0].Number("v_2"), -1);
  EXPECT_EQ(*r.readings[0].Number("v"), 0);
  EXPECT_EQ(*r.readings[0].Number("v_3"), 1);      // v_2 was the file's own
  EXPECT_EQ(*r.readings[0].Number("v_2001"), 1999);
}

TEST(Csv, RequiresATimeColumn) {
  TempDir dir;
  std::string path = dir.File("x.csv");
  WriteFile(path, "a,b\n1,2\n");
  Result<std::unique_ptr<ArchiveReader>> reader = OpenArchive(path, ArchiveOptions{});
  ASSERT_FALSE(reader.ok());
  EXPECT_NE(reader.status().message().find("no time column"), std::string::npos);
}

TEST(Csv, SplitsQuotedCells) {
  std::vector<std::string> cells;
  ASSERT_TRUE(SplitCsvLine("a,\"b,c\",\"say \"\"hi\"\"\",", ',', &cells));
  EXPECT_EQ(cells, (std::vector<std::string>{"a", "b,c", "say \"hi\"", ""}));
  EXPECT_FALSE(SplitCsvLine("a,\"open", ',', &cells));
}

TEST(Csv, LineAndCellSplittersAgree) {
  std::vector<std::string> lines;
  std::vector<std::string_view> views;
  std::string unquoted;
  for (std::string_view line : {"", ",", "a,,b,", "1;2;3", "\"x\"\"y\",z", "\"a;b\";c", "a\t\"\"\tb"}) {
    for (char delimiter : {',', ';', '\t'}) {
      ASSERT_TRUE(SplitCsvLine(line, delimiter, &lines)) << line;
      ASSERT_TRUE(archive::SplitCsvCells(line, delimiter, &views, &unquoted)) << line;
      EXPECT_EQ(lines, std::vector<std::string>(views.begin(), views.end())) << line << " split at " << delimiter;
    }
  }
  EXPECT_FALSE(archive::SplitCsvCells("a,\"open", ',', &views, &unquoted));
}

// The splitter reads eight bytes at a time: lines of every length around and past eight, with
// delimiters, quotes and bytes above 0x7f anywhere in them, split as the rules say byte by byte.
TEST(Csv, CellSplitterAgreesWithTheRulesOnLongLines) {
  auto reference = [](std::string_view line, char delimiter, std::vector<std::string>* cells) {
    cells->assign(1, "");
    bool quoted = false;
    for (size_t i = 0; i < line.size(); ++i) {
      char c = line[i];
      if (quoted) {
        if (c == '"' && i + 1 < line.size() && line[i + 1] == '"') {
          cells->back() += '"';
          ++i;
        } else if (c == '"') {
          quoted = false;
        } else {
          cells->back() += c;
        }
      } else if (c == '"') {
        quoted = true;
      } else if (c == delimiter) {
        cells->emplace_back();
      } else {
        cells->back() += c;
      }
    }
    return !quoted;
  };
  const std::string alphabet = std::string("ab,;\t\" 9") + "\x80\xac\xff" + std::string(1, '\0');
  uint64_t state = 7;
  std::vector<std::string> expected;
  std::vector<std::string_view> views;
  std::string unquoted;
  for (int n = 0; n < 20000; ++n) {
    state = state * 6364136223846793005ULL + 1442695040888963407ULL;
    size_t length = (state >> 33) % 40;
    std::string line;
    for (size_t i = 0; i < length; ++i) {
      state = state * 6364136223846793005ULL + 1442695040888963407ULL;
      // Mostly plain bytes, so that many lines hold no quote at all.
      size_t pick = (state >> 33) % 64;
      line += pick < alphabet.size() ? alphabet[pick] : static_cast<char>('c' + pick % 20);
    }
    for (char delimiter : {',', ';', '\t'}) {
      bool ok = reference(line, delimiter, &expected);
      ASSERT_EQ(archive::SplitCsvCells(line, delimiter, &views, &unquoted), ok) << line;
      if (ok) {
        ASSERT_EQ(expected, std::vector<std::string>(views.begin(), views.end())) << line;
      }
    }
  }
}


// Archive-like files, a few bytes of their plain lines changed at random (a space, a quote, a
// letter, a second point, a '\r' alone, a delimiter, a line end, an exponent): the columns'
// types read many lines at once (plain runs passed over in blocks) are those read line by line,
// to the first text cell and its line; a run the blocks call plain is one whose cells after the
// first are all plain decimals; lines are counted and skipped alike.
TEST(Csv, ColumnTypesOfManyLinesAgreeWithLineByLine) {
  uint64_t state = 11;
  auto next = [&](uint64_t n) {
    state = state * 6364136223846793005ULL + 1442695040888963407ULL;
    return (state >> 33) % n;
  };
  auto number = [&] {
    std::string cell = next(4) == 0 ? "-" : "";
    cell += std::to_string(next(2000));
    if (next(3) != 0) cell += "." + std::to_string(next(1000));
    return cell;
  };
  // Reference: every cell after a line's first is empty or [-]digits[.digits].
  auto plain_after_first = [](std::string_view text, char delimiter) {
    size_t at = 0;
    while (at < text.size()) {
      size_t e = text.find('\n', at);
      if (e == std::string_view::npos) e = text.size();
      std::string_view line = text.substr(at, e - at);
      if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
      at = e + 1;
      const size_t first = line.find(delimiter);
      if (first == std::string_view::npos) continue;
      std::vector<std::string_view> cells;
      for (size_t b = first + 1;;) {
        size_t d = line.find(delimiter, b);
        cells.push_back(line.substr(b, d == std::string_view::npos ? std::string_view::npos : d - b));
        if (d == std::string_view::npos) break;
        b = d + 1;
      }
      for (std::string_view c : cells) {
        size_t i = c.starts_with('-') ? 1 : 0;
        const size_t digits = i;
        while (i < c.size() && c[i] >= '0' && c[i] <= '9') ++i;
        if (c.empty()) continue;
        if (i == digits) return false;
        if (i < c.size() && c[i] == '.') {
          const size_t f = ++i;
          while (i < c.size() && c[i] >= '0' && c[i] <= '9') ++i;
          if (i == f) return false;
        }
        if (i != c.size()) return false;
      }
    }
    return true;
  };
  const std::string changes = " \"a.\r,\n-e\t";
  size_t passed_over = 0;
  for (int file = 0; file < 400; ++file) {
    const char delimiter = file % 3 == 2 ? ';' : ',';
    const std::string d(1, delimiter);
    // One file in five has its time in a column of its own after a field (no runs passed over).
    const bool time_first = file % 5 != 4;
    Result<archive::CsvColumns> columns = archive::MapCsvColumns(
        time_first ? std::vector<std::string>{"ts", "sensor_id", "temperature", "humidity", "lon", "lat"}
                   : std::vector<std::string>{"temperature", "ts", "sensor_id", "humidity"},
        "data.csv");
    ASSERT_TRUE(columns.ok());
    std::string text;
    const size_t lines = 1 + next(file % 7 == 0 ? 3000 : 300);
    for (size_t n = 0; n < lines; ++n) {
      const std::string time = "2024-01-01 00:" + std::to_string(10 + n % 50) + ":00";
      std::string line = time_first ? time + d + std::to_string(next(200)) + d + number() + d + (next(9) == 0 ? "" : number()) + d +
                                          number() + d + number()
                                    : number() + d + time + d + std::to_string(next(200)) + d + number();
      if (next(20) == 0) line += '\r';
      text += line + "\n";
    }
    if (next(2) == 0) text.pop_back();  // a last line without its line end
    const size_t edits = next(4);
    for (size_t e = 0; e < edits; ++e) {
      const size_t at = next(text.size());
      if (next(3) == 0) {
        text.erase(at, 1);
      } else {
        text.insert(at, 1, changes[next(changes.size())]);
      }
    }
    archive::CsvColumnTypes by_line(*columns, delimiter), at_once(*columns, delimiter);
    size_t line_no = 2, at = 0;
    while (at < text.size()) {
      size_t e = text.find('\n', at);
      if (e == std::string::npos) e = text.size();
      by_line.AddLine(std::string_view(text).substr(at, e - at), line_no++);
      at = e + 1;
    }
    // In two parts, as the import's threads read a file, the second's lines counted from 0.
    size_t mid = text.find('\n', text.size() / 2);
    mid = mid == std::string::npos ? text.size() : mid + 1;
    archive::CsvColumnTypes second(*columns, delimiter);
    const size_t first_lines = at_once.AddLines(std::string_view(text).substr(0, mid), 2);
    second.AddLines(std::string_view(text).substr(mid), 0);
    at_once.Merge(second, 2 + first_lines);
    for (size_t k = 0; k < columns->fields.size(); ++k) {
      ASSERT_EQ(at_once.text(k), by_line.text(k)) << "file " << file << " field " << k << "\n" << text;
      ASSERT_EQ(at_once.first_text(k), by_line.first_text(k)) << "file " << file;
      ASSERT_EQ(at_once.first_text_line(k), by_line.first_text_line(k)) << "file " << file;
    }
    size_t counted = 0;
    if (archive::PlainCellsAfterFirst(text.data(), text.data() + text.size(), delimiter, &counted)) {
      ++passed_over;
      ASSERT_TRUE(plain_after_first(text, delimiter)) << text;
      ASSERT_EQ(counted, static_cast<size_t>(std::count(text.begin(), text.end(), '\n')) + (text.empty() || text.back() == '\n' ? 0 : 1));
    }
    const size_t want = next(lines + 2);
    size_t skipped = 0, expect_skipped = 0;
    const char* got = archive::SkipCsvLines(text.data(), text.data() + text.size(), want, &skipped);
    size_t expect_at = 0;
    while (expect_skipped < want && expect_at < text.size()) {
      size_t e = text.find('\n', expect_at);
      expect_at = e == std::string::npos ? text.size() : e + 1;
      ++expect_skipped;
    }
    ASSERT_EQ(skipped, expect_skipped);
    ASSERT_EQ(static_cast<size_t>(got - text.data()), expect_at);
  }
#if defined(__AVX2__) && defined(__BMI2__) && defined(__PCLMUL__)
  EXPECT_GT(passed_over, 40u);  // (the blocks are used: a build without AVX2 reads line by line)
#endif
}

// Cells are numbers as std::from_chars reads them, correctly rounded to the bit: the plain
// decimals ParseNumber reads itself (sign, digits, fraction) and the forms it leaves to
// fast_float (exponents, more digits than an exact integer holds, "5.", ".5").
TEST(Csv, NumbersAreCorrectlyRounded) {
  std::vector<std::string> cells = {"0", "-0", "-0.00", "19.22", "1018.06", "3.130252", "-42.429875", "0.1", "0.3",
                                    "9007199254740992", "9007199254740993", "900719925474099.3", "1234567890123456789",
                                    "12345678901234567890", "0.0000000000000000001", "1e5", "-2.5E-3", "5.", ".5",
                                    "007.50", "179769313486231570000000000000000000000000000000000000000000000000000"};
  uint64_t state = 42;
  for (int i = 0; i < 200'000; ++i) {
    // Random decimals of 1 to 19 digits with the point anywhere, as an archive writes them.
    state = state * 6364136223846793005ULL + 1442695040888963407ULL;
    int digits = 1 + static_cast<int>((state >> 33) % 19);
    int point = static_cast<int>((state >> 40) % static_cast<uint64_t>(digits));
    std::string cell = (state >> 63) ? "-" : "";
    for (int d = 0; d < digits; ++d) {
      state = state * 6364136223846793005ULL + 1442695040888963407ULL;
      if (d == digits - point && point > 0) cell.push_back('.');
      cell.push_back(static_cast<char>('0' + (state >> 59) % 10));
    }
    cells.push_back(cell);
  }
  for (const std::string& cell : cells) {
    double want = 0, got = -1;
    auto [end, ec] = std::from_chars(cell.data(), cell.data() + cell.size(), want);
    bool whole = ec == std::errc() && end == cell.data() + cell.size() && std::isfinite(want);
    ASSERT_EQ(archive::ParseNumber(cell, &got), whole) << cell;
    if (whole) {
      ASSERT_EQ(std::bit_cast<uint64_t>(got), std::bit_cast<uint64_t>(want)) << cell << ": " << got << " vs " << want;
    }
  }
  double v = 0;
  EXPECT_TRUE(archive::ParseNumber("+1.5", &v));
  EXPECT_EQ(v, 1.5);
  for (std::string_view bad : {"", "-", "+", "1.2.3", "1,5", "--1", "1e", "nan", "inf", "1e400", "12a", "+-5", "++5", "+-"}) {
    EXPECT_FALSE(archive::ParseNumber(bad, &v)) << bad;
  }
}

}  // namespace
}  // namespace mare::feeds
