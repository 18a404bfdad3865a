// Reading forecasts records (docs/formats/forecasts.md) into forecast_hour rows.
#include "reading/forecast_row.h"

#include <gtest/gtest.h>

namespace mare {
namespace {

TEST(ForecastRowsTest, OneRowPerTargetHourWithNullsKept) {
  std::vector<ForecastRow> rows;
  ASSERT_TRUE(ReadForecastRows(
                  R"({"sensor_id":7,"field":"temperature","issued_at":"2024-01-21T00:00:00.000000Z","day_ahead":true,)"
                  R"("model":"ensemble","hours":[{"target_hour":"2024-01-21T00:00:00.000000Z","value":13.52,"lower":12.9,)"
                  R"("upper":14.1},{"target_hour":"2024-01-21T01:00:00.000000Z","value":13.7,"lower":null,"upper":null}]})",
                  &rows)
                  .ok());
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0].sensor_id, 7u);
  EXPECT_EQ(rows[0].field, "temperature");
  EXPECT_EQ(rows[0].model, "ensemble");
  EXPECT_TRUE(rows[0].day_ahead);
  EXPECT_EQ(rows[0].issued_at_us, 1705795200000000);
  EXPECT_EQ(rows[0].target_hour_us, 1705795200000000);
  EXPECT_EQ(rows[1].target_hour_us, 1705795200000000 + 3600000000);
  EXPECT_EQ(rows[0].value, 13.52);
  EXPECT_TRUE(rows[0].has_lower && rows[0].has_upper);
  EXPECT_EQ(rows[0].upper, 14.1);
  EXPECT_TRUE(rows[1].has_value);
  EXPECT_FALSE(rows[1].has_lower || rows[1].has_upper);
}

TEST(ForecastRowsTest, RefusesWhatIsNotAForecast) {
  std::vector<ForecastRow> rows;
  EXPECT_FALSE(ReadForecastRows("{}", &rows).ok());
  EXPECT_FALSE(ReadForecastRows("not json", &rows).ok());
  EXPECT_FALSE(ReadForecastRows(R"({"sensor_id":7,"field":"t","issued_at":"yesterday","hours":[]})", &rows).ok());
  EXPECT_FALSE(ReadForecastRows(R"({"sensor_id":-1,"field":"t","issued_at":"2024-01-21T00:00:00Z","hours":[]})", &rows).ok());
}

}  // namespace
}  // namespace mare
