#include "reading/timestamp.h"

#include <gtest/gtest.h>

namespace mare {
namespace {

constexpr int64_t k20240121 = 1705831564095931;  // 2024-01-21T10:06:04.095931Z

int64_t Text(std::string_view s) {
  int64_t us = -1;
  std::string why;
  EXPECT_TRUE(ParseTimestampText(s, &us, &why)) << s << ": " << why;
  return us;
}

std::string TextError(std::string_view s) {
  int64_t us = 0;
  std::string why;
  EXPECT_FALSE(ParseTimestampText(s, &us, &why)) << s << " parsed as " << us;
  return why;
}

TEST(Timestamp, ObservatoryFormIsUtc) {
  EXPECT_EQ(Text("2024-01-21 10:06:04.095931"), k20240121);
  EXPECT_EQ(Text("2024-01-21 10:06:04"), k20240121 - 95931);
  EXPECT_EQ(Text("2024-01-21 10:06"), k20240121 - 4095931);
  EXPECT_EQ(Text("2024-01-21 10:06:04.1"), k20240121 - 95931 + 100000);
}

TEST(Timestamp, Iso8601WithZoneOrOffset) {
  EXPECT_EQ(Text("2024-01-21T10:06:04.095931Z"), k20240121);
  EXPECT_EQ(Text("2024-01-21t10:06:04.095931z"), k20240121);
  EXPECT_EQ(Text("2024-01-21T12:06:04.095931+02:00"), k20240121);
  EXPECT_EQ(Text("2024-01-21T12:06:04.095931+0200"), k20240121);
  EXPECT_EQ(Text("2024-01-21T12:06:04.095931+02"), k20240121);
  EXPECT_EQ(Text("2024-01-21T05:36:04.095931-04:30"), k20240121);
  // Nanoseconds are truncated to microseconds.
  EXPECT_EQ(Text("2024-01-21T10:06:04.095931999Z"), k20240121);
}

TEST(Timestamp, CalendarEdges) {
  EXPECT_EQ(Text("2024-02-29 00:00:00"), 1709164800000000);   // leap year
  EXPECT_EQ(Text("2000-02-29 00:00:00"), 951782400000000);    // divisible by 400
  EXPECT_EQ(Text("1970-01-01 00:00:00"), 0);
  EXPECT_EQ(Text("1969-12-31 23:59:59"), -1000000);
  EXPECT_EQ(Text("2024-12-31T23:59:59.999999Z"), 1735689599999999);
}

TEST(Timestamp, RejectsWithReason) {
  EXPECT_NE(TextError("2023-02-29 00:00:00").find("day 29 out of range"), std::string::npos);
}

}  // namespace
}  // namespace mare

namespace mare {
namespace {

TEST(Timestamp, RejectsMalformedText) {
  EXPECT_NE(TextError("2024-13-01 00:00:00").find("month 13"), std::string::npos);
  EXPECT_NE(TextError("1900-02-29 00:00:00").find("day 29"), std::string::npos);  // not a leap year
  EXPECT_NE(TextError("2024-01-21 24:00:00").find("out of range"), std::string::npos);
  EXPECT_NE(TextError("2024-01-21 10:60:00").find("out of range"), std::string::npos);
  EXPECT_NE(TextError("2024-01-21 10:00:60").find("out of range"), std::string::npos);
  EXPECT_NE(TextError("2024-01-21").find("no time of day"), std::string::npos);
  EXPECT_NE(TextError("21/01/2024 10:00").find("not a date-time"), std::string::npos);
  EXPECT_NE(TextError("yesterday").find("not a date-time"), std::string::npos);
  EXPECT_NE(TextError("2024-01-21 10:00:00.").find("fraction"), std::string::npos);
  EXPECT_NE(TextError("2024-01-21 10:00:00 UTC").find("unexpected text"), std::string::npos);
  EXPECT_NE(TextError("2024-01-21 10:00:00+25:00").find("offset out of range"), std::string::npos);
  EXPECT_NE(TextError("1850-01-01 00:00:00").find("before 1900"), std::string::npos);
}

// The years are on the UTC time (InReadingYears): an offset that moves a time out of 1900 to 9999
// refuses it, in one wording for every path (ingest, archives, tables, SQL literals).
TEST(Timestamp, TheYearsAreCheckedOnTheUtcTime) {
  EXPECT_EQ(TextError("1900-01-01T00:00:00+08:00"),
            "'1900-01-01T00:00:00+08:00' is 1899-12-31 16:00:00 UTC, outside the years 1900 to 9999");
  EXPECT_EQ(TextError("9999-12-31T23:00:00-05:00"),
            "'9999-12-31T23:00:00-05:00' is 10000-01-01 04:00:00 UTC, outside the years 1900 to 9999");
  EXPECT_EQ(Text("1900-01-01T08:00:00+08:00"), kFirstReadingMicros);
  EXPECT_EQ(Text("1900-01-01T00:00:00-01:00"), kFirstReadingMicros + 3'600'000'000);
  EXPECT_EQ(Text("9999-12-31T23:59:59.999999Z"), kAfterLastReadingMicros - 1);
  EXPECT_EQ(ParseTimestampLoose("1900-01-01 00:00:00+00:01").status().message(),
            "'1900-01-01 00:00:00+00:01' is 1899-12-31 23:59:00 UTC, outside the years 1900 to 9999");
  // West of UTC, a time written in 1899 may be 1900 in UTC: taken, by its zone or a local offset.
  EXPECT_EQ(Text("1899-12-31T23:00:00-01:00"), kFirstReadingMicros);
  EXPECT_EQ(TextError("1899-12-31T23:00:00Z"), "'1899-12-31T23:00:00Z' is 1899-12-31 23:00:00 UTC, outside the years 1900 to 9999");
  int64_t us = 0;
  std::string why;
  ASSERT_TRUE(ParseTimestampText("1899-12-31 23:30:00", &us, &why, -3'600'000'000)) << why;
  EXPECT_EQ(us, kFirstReadingMicros + 1'800'000'000);
  ASSERT_TRUE(ParseTimestampText("1900-01-01 00:00:00Z", &us, &why, -3'600'000'000)) << why;  // its own zone wins
  EXPECT_EQ(us, kFirstReadingMicros);
  EXPECT_EQ(*ParseTimestampLoose("1899-12-31 23:00:00", -3'600'000'000), kFirstReadingMicros);
  EXPECT_EQ(*ParseTimestampLoose("1900-01-01 01:00:00 UTC", 3'600'000'000), kFirstReadingMicros + 3'600'000'000);
  EXPECT_EQ(ParseTimestampLoose("1899-12-31 23:00:00").status().message(),
            "'1899-12-31 23:00:00' is 1899-12-31 23:00:00 UTC, outside the years 1900 to 9999");
}

TEST(Timestamp, EpochSecondsAndMilliseconds) {
  int64_t us = 0;
  std::string why;
  ASSERT_TRUE(ParseTimestampEpoch(1705831564.0, &us, &why));
  EXPECT_EQ(us, 1705831564000000);
  ASSERT_TRUE(ParseTimestampEpoch(1705831564095.0, &us, &why));
  EXPECT_EQ(us, 1705831564095000);
  ASSERT_TRUE(ParseTimestampEpoch(1705831564.5, &us, &why));
  EXPECT_EQ(us, 1705831564500000);
  EXPECT_FALSE(ParseTimestampEpoch(-5, &us, &why));
  EXPECT_FALSE(ParseTimestampEpoch(1e15, &us, &why));
  EXPECT_NE(why.find("too large"), std::string::npos);
}

TEST(Timestamp, TimeArguments) {
  EXPECT_EQ(*ParseTimeArgument("now", 1000000000), 1000000000);
  EXPECT_EQ(*ParseTimeArgument("now-1h", 7200000000), 3600000000);
  EXPECT_EQ(*ParseTimeArgument("2024-01-21T10:06:04.095931Z", 0), k20240121);
  EXPECT_FALSE(ParseTimeArgument("now*2", 0).ok());
}

}  // namespace
}  // namespace mare

namespace mare {
namespace {

constexpr int64_t kObservatoryExample = k20240121;

TEST(ReadingTime, FormatsTheObservatoryForm) {
  EXPECT_EQ(FormatReadingTime(kObservatoryExample), "2024-01-21 10:06:04.095931");
  EXPECT_EQ(FormatReadingTime(0), "1970-01-01 00:00:00.000000");
  EXPECT_EQ(FormatReadingTime(-1), "1969-12-31 23:59:59.999999");
}

TEST(ReadingTime, LooseFormsForArchivesAndCommandLines) {
  const int64_t base = 1705831560'000000;  // 2024-01-21 10:06:00
  EXPECT_EQ(*ParseTimestampLoose("2024-01-21 10:06:04.095931"), kObservatoryExample);
  EXPECT_EQ(*ParseTimestampLoose("2024-01-21T10:06:04.095931Z"), kObservatoryExample);
  EXPECT_EQ(*ParseTimestampLoose("2024-01-21T10:06:04.0959319Z"), kObservatoryExample);  // truncated
  EXPECT_EQ(*ParseTimestampLoose("2024-01-21T11:06:04.095931+01:00"), kObservatoryExample);
  EXPECT_EQ(*ParseTimestampLoose("2024-01-21T09:36:04.095931-0030"), kObservatoryExample);
  EXPECT_EQ(*ParseTimestampLoose("2024-01-21 10:06"), base);
  EXPECT_EQ(*ParseTimestampLoose("2024-01-21 10:06:00 UTC"), base);
  EXPECT_EQ(*ParseTimestampLoose("  2024-01-21 10:06:00.5 "), base + 500000);
  EXPECT_EQ(*ParseTimestampLoose("2024-01-21"), base - (10 * 3600 + 6 * 60) * 1000000LL);
  EXPECT_EQ(*ParseTimestampLoose("1705831564.5"), 1705831564500000);
  EXPECT_EQ(*ParseTimestampLoose("1705831564095"), kObservatoryExample / 1000 * 1000);  // milliseconds
}

TEST(ReadingTime, RejectsImpossibleTimes) {
  for (const char* bad : {"", "yesterday", "2024-13-01 00:00:00", "2024-02-30", "2024-01-21 24:00:00",
                          "2024-01-21 10:60:00", "2024-01-21X10:00:00", "2024-01-21 10:00:00 CET", "2024-1-21"}) {
    EXPECT_FALSE(ParseTimestampLoose(bad).ok()) << bad;
  }
}

}  // namespace
}  // namespace mare
