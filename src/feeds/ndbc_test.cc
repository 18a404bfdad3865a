// Replaying NDBC archives: the real 44005 file of 2012, and the format's variants.
#include "archive/ndbc.h"

#include <gtest/gtest.h>

#include <sstream>

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
using archive::StationFromFileName;
using testing::TempDir;
using testing::WriteFile;

const std::string kArchive = std::string(MARE_TEST_DATA_DIR) + "/ndbc_44005_2012.txt";

// Field names point into the reader: it stays alive as long as the readings do.
std::vector<std::unique_ptr<ArchiveReader>> open_readers;

std::vector<Reading> ReadAll(const std::string& path, ArchiveOptions options, std::vector<size_t>* skipped_lines = nullptr) {
  Result<std::unique_ptr<ArchiveReader>> opened = OpenArchive(path, options);
  EXPECT_TRUE(opened.ok()) << opened.status().ToString();
  std::vector<Reading> out;
  if (!opened) return out;
  std::unique_ptr<ArchiveReader>* reader = &open_readers.emplace_back(std::move(*opened));
  Reading r;
  for (;;) {
    ArchiveReader::Row row = (*reader)->Next(&r);
    if (row == ArchiveReader::Row::kEnd) break;
    if (row == ArchiveReader::Row::kSkipped) {
      if (skipped_lines) skipped_lines->push_back((*reader)->line());
      continue;
    }
    out.push_back(r);
  }
  EXPECT_TRUE((*reader)->status().ok());
  return out;
}

// An independent count straight from the file's text: how many data rows hold `code` in
// the column headed `column`.
size_t CountCodeInColumn(const std::string& column, const std::string& code) {
  std::istringstream in(testing::ReadFile(kArchive));
  std::string line;
  std::getline(in, line);
  std::istringstream header(line);
  std::string name;
  int index = -1;
  for (int i = 0; header >> name; ++i) {
    if (name == column || name == "#" + column) index = i;
  }
  EXPECT_GE(index, 0) << column;
  size_t n = 0;
  while (std::getline(in, line)) {
    std::istringstream row(line);
    std::string token;
    for (int i = 0; i <= index; ++i) row >> token;
    if (token == code) ++n;
  }
  return n;
}

class Ndbc44005 : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    ArchiveOptions options;
    options.sensor_id = 44005;
    readings_ = new std::vector<Reading>(ReadAll(kArchive, options));
  }
  static void TearDownTestSuite() { delete readings_; }
  static size_t CountWithout(std::string_view field) {
    size_t n = 0;
    for (const Reading& r : *readings_) n += r.Number(field) == nullptr;
    return n;
  }
  static std::vector<Reading>* readings_;
};
std::vector<Reading>* Ndbc44005::readings_ = nullptr;

TEST_F(Ndbc44005, DetectsTheFormat) { EXPECT_EQ(*DetectArchiveFormat(kArchive), "ndbc"); }

TEST_F(Ndbc44005, YieldsEveryRow) { EXPECT_EQ(readings_->size(), 8347u); }

TEST_F(Ndbc44005, FirstReadingIsTheFirstRow) {
  ASSERT_FALSE(readings_->empty());
  const Reading& r = readings_->front();
  // 2011 12 31 23 50 316  4.8  6.0  0.92  5.56  4.88 999 1008.1   6.8   8.1   6.8 99.0 99.00
  EXPECT_EQ(FormatReadingTime(r.time_micros), "2011-12-31 23:50:00.000000");
  EXPECT_EQ(r.sensor_id, 44005u);
  EXPECT_FALSE(r.location.has_value());
  EXPECT_EQ(*r.Number("wind_direction"), 316);
  EXPECT_EQ(*r.Number("wind_speed"), 4.8);
  EXPECT_EQ(*r.Number("wind_gust"), 6.0);
  EXPECT_EQ(*r.Number("wave_height"), 0.92);
  EXPECT_EQ(*r.Number("dominant_wave_period"), 5.56);
  EXPECT_EQ(*r.Number("average_wave_period"), 4.88);
  EXPECT_EQ(*r.Number("pressure"), 1008.1);
  EXPECT_EQ(*r.Number("temperature"), 6.8);
  EXPECT_EQ(*r.Number("water_temperature"), 8.1);
  EXPECT_EQ(*r.Number("dew_point"), 6.8);
  EXPECT_EQ(r.numbers.size(), 10u);  // MWD, VIS and TIDE are missing
  std::string json;
  AppendReadingJson(r, &json);
  EXPECT_EQ(json,
            "{\"timestamp\": \"2011-12-31 23:50:00.000000\", \"wind_direction\": 316, \"wind_speed\": 4.8, "
            "\"wind_gust\": 6, \"wave_height\": 0.92, \"dominant_wave_period\": 5.56, \"average_wave_period\": "
            "4.88, \"pressure\": 1008.1, \"temperature\": 6.8, \"water_temperature\": 8.1, \"dew_point\": 6.8, "
            "\"sensor_id\": 44005}\n");
}

TEST_F(Ndbc44005, TimesAreHourlyAtMinute50AndIncreasing) {
  for (size_t i = 1; i < readings_->size(); ++i) {
    ASSERT_GT((*readings_)[i].time_micros, (*readings_)[i - 1].time_micros) << i;
    ASSERT_EQ(FormatReadingTime((*readings_)[i].time_micros).substr(14), "50:00.000000");
  }
  EXPECT_EQ(FormatReadingTime(readings_->back().time_micros), "2012-12-14 05:50:00.000000");
}

TEST_F(Ndbc44005, AllMissingColumnsAreAbsentEverywhere) {
  EXPECT_EQ(CountWithout("mean_wave_direction"), 8347u);
  EXPECT_EQ(CountWithout("visibility"), 8347u);
  EXPECT_EQ(CountWithout("tide"), 8347u);
}

TEST_F(Ndbc44005, MissingCountsMatchTheFile) {
  // Counted independently from the text. (The data README says pressure is missing in 22
  // rows; the file itself has 3 PRES of 9999.0.)
  struct Case {
    const char* column;
    const char* code;
    const char* field;
  };
  for (const Case& c : {Case{"WDIR", "999", "wind_direction"}, Case{"WSPD", "99.0", "wind_speed"},
                        Case{"GST", "99.0", "wind_gust"}, Case{"WVHT", "99.00", "wave_height"},
                        Case{"DPD", "99.00", "dominant_wave_period"}, Case{"APD", "99.00", "average_wave_period"},
                        Case{"PRES", "9999.0", "pressure"}, Case{"ATMP", "999.0", "temperature"},
                        Case{"WTMP", "999.0", "water_temperature"}, Case{"DEWP", "999.0", "dew_point"}}) {
    EXPECT_EQ(CountWithout(c.field), CountCodeInColumn(c.column, c.code)) << c.column;
  }
  EXPECT_EQ(CountWithout("wind_speed"), 377u);
  EXPECT_EQ(CountWithout("wave_height"), 29u);
  EXPECT_EQ(CountWithout("pressure"), 3u);
  EXPECT_EQ(CountWithout("dew_point"), 4u);
}

TEST_F(Ndbc44005, NoMissingCodeLeaksIntoAValue) {
  size_t real_wdir_99 = 0;
  for (const Reading& r : *readings_) {
    for (const NumericField& f : r.numbers) {
      if (f.name == "wind_direction") {
        ASSERT_LE(f.value, 360) << FormatReadingTime(r.time_micros);
        real_wdir_99 += f.value == 99;
      } else if (f.name == "pressure") {
        ASSERT_LT(f.value, 1100);
        ASSERT_GT(f.value, 900);
      } else if (f.name == "temperature" || f.name == "water_temperature" || f.name == "dew_point") {
        ASSERT_LT(f.value, 60) << f.name;
      } else {
        ASSERT_LT(f.value, 99) << f.name << " " << FormatReadingTime(r.time_micros);
      }
    }
  }
  // 99 degrees is a real wind direction (the code is 999): those rows keep it.
  EXPECT_EQ(real_wdir_99, CountCodeInColumn("WDIR", "99"));
  EXPECT_GT(real_wdir_99, 0u);
}

TEST(Ndbc, SensorIdFromTheFileName) {
  EXPECT_EQ(StationFromFileName("/x/ndbc_44005_2012.txt"), 44005u);
  EXPECT_EQ(StationFromFileName("44013h2019.txt"), 44013u);
  EXPECT_EQ(StationFromFileName("buoy.txt"), std::nullopt);
  EXPECT_EQ(StationFromFileName("ndbc_.txt"), std::nullopt);
}

TEST(Ndbc, TwoHeaderLinesOldColumnsAndBadDates) {
  TempDir dir;
  std::string path = dir.File("station.txt");
  WriteFile(path,
            "#YY  MM DD hh mm WDIR WSPD GST  WVHT   DPD   APD MWD   PRES  ATMP  WTMP  DEWP  VIS  TIDE\n"
            "#yr  mo dy hr mn degT m/s  m/s     m   sec   sec degT   hPa  degC  degC  degC   mi    ft\n"
            "2024 01 21 10 00  99 99.0 99.0 99.00 99.00 99.00 999 9999.0 999.0 999.0 999.0 99.0 99.00\n"
            "2024 02 30 10 00 180  5.0  6.0  1.00  5.00  4.00 200 1010.0  10.0  12.0   5.0  9.0  1.50\n"
            "2024 01 21 11 00 180  5.0  6.0 MM  5.00  4.00 200 1010.0  10.0  12.0   5.0  9.0  1.50\n"
            "2024 01 21 12 00 180  5.0\n"
            "1899 12 31 23 00 180  5.0  6.0  1.00  5.00  4.00 200 1010.0  10.0  12.0   5.0  9.0  1.50\n");
  std::vector<size_t> skipped;
  std::vector<Reading> readings = ReadAll(path, ArchiveOptions{}, &skipped);
  ASSERT_EQ(readings.size(), 2u);
  // February 30th; a short row; a year before the years readings keep (1900 to 9999, UTC)
  EXPECT_EQ(skipped, (std::vector<size_t>{4, 6, 7}));
  // Every code missing, but WDIR 99 is a direction.
  ASSERT_EQ(readings[0].numbers.size(), 1u);
  EXPECT_EQ(*readings[0].Number("wind_direction"), 99);
  EXPECT_EQ(readings[1].Number("wave_height"), nullptr);  // "MM"
  EXPECT_EQ(*readings[1].Number("tide"), 1.5);
  EXPECT_EQ(*readings[1].Number("visibility"), 9.0);
  EXPECT_EQ(readings[1].sensor_id, 1u);
}

TEST(Ndbc, OldFormatWithoutMinutesAndUnknownColumns) {
  TempDir dir;
  std::string path = dir.File("old.txt");
  WriteFile(path,
            "YYYY MM DD hh WD   WSPD GST  WVHT  DPD   APD  MWD  BAR    ATMP  WTMP  DEWP  VIS  XTRA\r\n"
            "1998 03 01 05 270  8.0  9.5  1.20  7.00  5.10 999  1021.3 4.2   6.1   1.0   99.0 99.00\r\n"
            "98 03 01 06 270  8.0  9.5  1.20  7.00  5.10 999  1021.3 4.2   6.1   1.0   99.0 12.5\r\n");
  ArchiveOptions options;
  options.location = Location{43.2, -69.13};
  std::vector<Reading> readings = ReadAll(path, options);
  ASSERT_EQ(readings.size(), 2u);
  EXPECT_EQ(FormatReadingTime(readings[0].time_micros), "1998-03-01 05:00:00.000000");
  EXPECT_EQ(FormatReadingTime(readings[1].time_micros), "1998-03-01 06:00:00.000000");
  EXPECT_EQ(*readings[0].Number("wind_direction"), 270);
  EXPECT_EQ(*readings[0].Number("pressure"), 1021.3);
  EXPECT_EQ(readings[0].Number("xtra"), nullptr);  // 99.00 in a column without a known code
  EXPECT_EQ(*readings[1].Number("xtra"), 12.5);
  ASSERT_TRUE(readings[0].location.has_value());
  EXPECT_EQ(readings[0].location->lon, -69.13);
}

}  // namespace
}  // namespace mare::feeds
