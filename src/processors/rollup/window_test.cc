// Window assignment: epoch-aligned, UTC, [start, end), across month, leap-day and year ends.
#include "processors/rollup/window.h"

#include <gtest/gtest.h>

#include <limits>

#include "common/time.h"
#include "reading/timestamp.h"

namespace mare::rollup {
namespace {


int64_t At(int y, int mo, int d, int h, int mi, int s, int64_t us = 0) { return *CivilToMicros(y, mo, d, h, mi, s) + us; }

std::string Start(int64_t ts, int64_t length) { return FormatTimestamp(WindowStart(ts, length)); }

TEST(WindowTest, AReadingExactlyOnTheHourOpensThatHour) {
  EXPECT_EQ(Start(At(2024, 1, 21, 10, 0, 0), kMicrosPerHour), "2024-01-21T10:00:00.000000Z");
  EXPECT_EQ(Start(At(2024, 1, 21, 10, 59, 59, 999'999), kMicrosPerHour), "2024-01-21T10:00:00.000000Z");
  EXPECT_EQ(Start(At(2024, 1, 21, 9, 59, 59, 999'999), kMicrosPerHour), "2024-01-21T09:00:00.000000Z");
  EXPECT_EQ(Start(At(2024, 1, 21, 10, 6, 4, 95'931), kMicrosPerMinute), "2024-01-21T10:06:00.000000Z");
  EXPECT_EQ(Start(At(2024, 1, 21, 10, 6, 4, 95'931), kMicrosPerDay), "2024-01-21T00:00:00.000000Z");
}

TEST(WindowTest, DaysStartAtMidnightUtcAcrossMonthLeapDayAndYearEnds) {
  EXPECT_EQ(Start(At(2024, 1, 31, 23, 59, 59, 999'999), kMicrosPerDay), "2024-01-31T00:00:00.000000Z");
  EXPECT_EQ(Start(At(2024, 2, 1, 0, 0, 0), kMicrosPerDay), "2024-02-01T00:00:00.000000Z");
  EXPECT_EQ(Start(At(2024, 2, 29, 12, 0, 0), kMicrosPerDay), "2024-02-29T00:00:00.000000Z");
  EXPECT_EQ(FormatTimestamp(WindowStart(At(2024, 2, 29, 23, 59, 59, 999'999), kMicrosPerDay) + kMicrosPerDay), "2024-03-01T00:00:00.000000Z");
  EXPECT_EQ(Start(At(2024, 3, 1, 0, 0, 0), kMicrosPerDay), "2024-03-01T00:00:00.000000Z");
  EXPECT_EQ(Start(At(2023, 12, 31, 23, 59, 59, 999'999), kMicrosPerHour), "2023-12-31T23:00:00.000000Z");
  EXPECT_EQ(Start(At(2023, 12, 31, 23, 59, 59, 999'999), kMicrosPerDay), "2023-12-31T00:00:00.000000Z");
  EXPECT_EQ(Start(At(2024, 1, 1, 0, 0, 0), kMicrosPerMinute), "2024-01-01T00:00:00.000000Z");
  EXPECT_EQ(Start(At(2024, 1, 1, 0, 0, 0), kMicrosPerDay), "2024-01-01T00:00:00.000000Z");
}

TEST(WindowTest, ConsecutiveWindowsTileTime) {
  for (int64_t length : {kMicrosPerMinute, kMicrosPerHour, kMicrosPerDay, int64_t{7} * kMicrosPerMinute}) {
    int64_t t = At(2024, 2, 28, 22, 13, 7, 123);
    int64_t s = WindowStart(t, length);
    EXPECT_LE(s, t);
    EXPECT_LT(t, s + length);
    EXPECT_EQ(s % length, 0);
    EXPECT_EQ(WindowStart(s + length, length), s + length);
    EXPECT_EQ(WindowStart(s + length - 1, length), s);
  }
  EXPECT_EQ(WindowStart(-1, kMicrosPerMinute), -kMicrosPerMinute);  // floor, not truncation
}

// Found by fuzz_rollup_checkpoint: a start near the smallest int64 wrapped (signed overflow).
TEST(WindowTest, AStartBelowTheSmallestInt64IsTheSmallestInt64) {
  constexpr int64_t kMin = std::numeric_limits<int64_t>::min();
  EXPECT_EQ(WindowStart(kMin, kMicrosPerMinute), kMin);
  EXPECT_EQ(WindowStart(kMin + 1, kMicrosPerMinute), kMin);
  EXPECT_EQ(WindowStart(std::numeric_limits<int64_t>::max(), kMicrosPerMinute),
            std::numeric_limits<int64_t>::max() - std::numeric_limits<int64_t>::max() % kMicrosPerMinute);
}

TEST(WindowTest, ParsesResolutionListsAndRejectsBadOnes) {
  auto r = ParseResolutions("1m,1h,1d");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->size(), 3u);
  EXPECT_EQ((*r)[0].length_us, kMicrosPerMinute);
  EXPECT_EQ((*r)[0].name, "1m");
  EXPECT_EQ((*r)[1].name, "1h");
  EXPECT_EQ((*r)[2].name, "1d");
  auto odd = ParseResolutions("90s, 15m");
  ASSERT_TRUE(odd.ok());
  EXPECT_EQ((*odd)[0].length_us, 90'000'000);
  EXPECT_EQ((*odd)[1].name, "15m");
  EXPECT_FALSE(ParseResolutions("").ok());
  EXPECT_FALSE(ParseResolutions("1m,,1h").ok());
  EXPECT_FALSE(ParseResolutions("0s").ok());
  EXPECT_FALSE(ParseResolutions("1h,60m").ok());
  EXPECT_FALSE(ParseResolutions("hourly").ok());
}

}  // namespace
}  // namespace mare::rollup
