#include "common/time.h"

#include <gtest/gtest.h>

namespace mare {
namespace {

TEST(Time, FormatsUtcMicroseconds) {
  EXPECT_EQ(FormatTimestamp(0), "1970-01-01T00:00:00.000000Z");
  EXPECT_EQ(FormatTimestamp(1705831564095931), "2024-01-21T10:06:04.095931Z");
  EXPECT_EQ(FormatTimestamp(-1), "1969-12-31T23:59:59.999999Z");
  EXPECT_EQ(FormatTimestamp(951782400000000), "2000-02-29T00:00:00.000000Z");
  EXPECT_EQ(FormatTimestamp(253402300800000000), "10000-01-01T00:00:00.000000Z");  // past 9999: the slow path
  std::string out = "at ";
  AppendTimestamp(&out, 1705831564095931);
  EXPECT_EQ(out, "at 2024-01-21T10:06:04.095931Z");
}

TEST(Time, ParsesDurations) {
  EXPECT_EQ(*ParseDurationMicros("7d"), 7 * kMicrosPerDay);
  EXPECT_EQ(*ParseDurationMicros("500ms"), 500'000);
  EXPECT_EQ(*ParseDurationMicros("1.5h"), 5400 * kMicrosPerSecond);
  EXPECT_EQ(*ParseDurationMicros("30"), 30 * kMicrosPerSecond);
  EXPECT_FALSE(ParseDurationMicros("fast").ok());
  EXPECT_FALSE(ParseDurationMicros("5 parsecs").ok());
  EXPECT_FALSE(ParseDurationMicros("-1s").ok());
  EXPECT_EQ(FormatDuration(7 * kMicrosPerDay), "1w");
  EXPECT_EQ(FormatDuration(90 * kMicrosPerSecond), "90s");
}

TEST(Time, ParsesByteSizes) {
  EXPECT_EQ(*ParseByteSize("64KiB"), 65536);
  EXPECT_EQ(*ParseByteSize("1GiB"), 1073741824);
  EXPECT_EQ(*ParseByteSize("1000"), 1000);
  EXPECT_FALSE(ParseByteSize("lots").ok());
}

// Values past int64 were read as negative ("1e300s": a simulate --duration that sent nothing,
// a lateness "must be at least 0s").
TEST(Time, RefusesDurationsAndSizesPastInt64) {
  Result<int64_t> huge = ParseDurationMicros("1e300s");
  ASSERT_FALSE(huge.ok());
  EXPECT_EQ(huge.status().message(), "duration '1e300s' is too large");
  // Durations stop at 100 years, which a wait can still add to a clock's now in nanoseconds.
  EXPECT_EQ(*ParseDurationMicros("36500d"), 36500 * kMicrosPerDay);
  Result<int64_t> long_wait = ParseDurationMicros("36501d");
  ASSERT_FALSE(long_wait.ok());
  EXPECT_EQ(long_wait.status().message(), "duration '36501d' is too large: at most 36500d");
  EXPECT_FALSE(ParseByteSize("1e7TB").ok());
  EXPECT_EQ(*ParseByteSize("1000000TB"), 1'000'000'000'000'000'000);
}

}  // namespace
}  // namespace mare
