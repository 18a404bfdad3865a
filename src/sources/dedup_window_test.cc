// The dedup window's rules: a reading seen within the horizon is a duplicate (or a conflict if
// its values differ), a reading older than the horizon is late and accepted, the horizon is
// measured from each sensor's newest reading, and memory stays bounded.
#include "sources/dedup_window.h"

#include <gtest/gtest.h>

namespace mare {
namespace {

using Outcome = DedupWindow::Outcome;
constexpr int64_t kSecond = 1'000'000;
constexpr int64_t kT0 = 1'705'831'560 * kSecond;

TEST(DedupWindowTest, SecondCopyIsADuplicateAndOtherValuesAConflict) {
  DedupWindow w(600 * kSecond, 1000);
  EXPECT_EQ(w.Admit(7, kT0, 111), Outcome::kNew);
  EXPECT_EQ(w.Admit(7, kT0, 111), Outcome::kDuplicate);
  EXPECT_EQ(w.Admit(7, kT0, 222), Outcome::kConflict);
  EXPECT_EQ(w.Admit(8, kT0, 111), Outcome::kNew) << "another sensor at the same instant is another reading";
  EXPECT_EQ(w.Admit(7, kT0 + 1, 111), Outcome::kNew) << "one microsecond later is another reading";
  EXPECT_EQ(w.readings(), 3u);
  EXPECT_EQ(w.sensors(), 2u);
}

TEST(DedupWindowTest, OutOfOrderReadingsWithinTheHorizonAreKept) {
  DedupWindow w(600 * kSecond, 1000);
  for (int64_t s : {10, 5, 7, 1, 9}) EXPECT_EQ(w.Admit(1, kT0 + s * kSecond, s), Outcome::kNew);
  for (int64_t s : {1, 5, 7, 9, 10}) EXPECT_EQ(w.Admit(1, kT0 + s * kSecond, s), Outcome::kDuplicate) << s;
  EXPECT_EQ(w.readings(), 5u);
}

TEST(DedupWindowTest, ReadingsFallOutOfTheHorizonOfTheirSensorsNewest) {
  DedupWindow w(600 * kSecond, 100'000);
  // One reading per second for 20 minutes: the first 10 minutes leave the window.
  for (int64_t s = 0; s < 1200; ++s) ASSERT_EQ(w.Admit(1, kT0 + s * kSecond, 1), Outcome::kNew);
  EXPECT_EQ(w.readings(), 601u) << "the newest and the 600 seconds before it";
  EXPECT_EQ(w.Admit(1, kT0 + 599 * kSecond, 1), Outcome::kDuplicate) << "exactly the horizon before the newest";
  // Older than the horizon: late, accepted, not refused as a duplicate even though it was
  // accepted once; and not kept.
  EXPECT_EQ(w.Admit(1, kT0 + 10 * kSecond, 1), Outcome::kLate);
  EXPECT_EQ(w.Admit(1, kT0 + 10 * kSecond, 1), Outcome::kLate);
  EXPECT_EQ(w.Admit(1, kT0 - 3600 * kSecond, 1), Outcome::kLate) << "a new timestamp older than the horizon";
  EXPECT_EQ(w.readings(), 601u);
  // Another sensor's horizon is its own: its old reading is new to it.
  EXPECT_EQ(w.Admit(2, kT0, 1), Outcome::kNew);
}

TEST(DedupWindowTest, AReadingFarAheadMovesTheHorizon) {
  DedupWindow w(600 * kSecond, 1000);
  EXPECT_EQ(w.Admit(1, kT0, 1), Outcome::kNew);
  EXPECT_EQ(w.Admit(1, kT0 + 3600 * kSecond, 1), Outcome::kNew);
  EXPECT_EQ(w.readings(), 1u) << "the first is an hour behind the newest";
  EXPECT_EQ(w.Admit(1, kT0, 1), Outcome::kLate);
}

TEST(DedupWindowTest, ForgetLetsAResendIn) {
  DedupWindow w(600 * kSecond, 1000);
  EXPECT_EQ(w.Admit(1, kT0, 5), Outcome::kNew);
  EXPECT_EQ(w.Admit(1, kT0 + kSecond, 6), Outcome::kNew);
  w.Forget(1, kT0, 99);  // another value: not the reading kept
  EXPECT_EQ(w.Admit(1, kT0, 5), Outcome::kDuplicate);
  w.Forget(1, kT0, 5);
  EXPECT_EQ(w.readings(), 1u);
  EXPECT_EQ(w.Admit(1, kT0, 5), Outcome::kNew);
  w.Forget(1, kT0 + kSecond, 6);
  w.Forget(1, kT0, 5);
  EXPECT_EQ(w.readings(), 0u);
  EXPECT_EQ(w.Admit(1, kT0 + kSecond, 6), Outcome::kNew) << "a sensor emptied by Forget takes readings again";
}

TEST(DedupWindowTest, MemoryIsBoundedPerSensor) {
  // 1 Hz for a day through a 10-minute horizon: the window holds 601 readings, never the day.
  DedupWindow w(600 * kSecond, 100'000);
  size_t most = 0;
  for (int64_t s = 0; s < 86'400; ++s) {
    w.Admit(1, kT0 + s * kSecond, static_cast<uint64_t>(s));
    most = std::max(most, w.MemoryBytes());
  }
  EXPECT_EQ(w.readings(), 601u);
  EXPECT_LT(most, 601 * 16 * 8 / 3 + 1024) << "16 bytes a reading, with the vector's slack";

  // A sensor faster than max_per_sensor / horizon keeps only the newest max_per_sensor; the
  // older ones become late, so they are accepted rather than wrongly refused.
  DedupWindow capped(600 * kSecond, 100);
  for (int64_t i = 0; i < 1000; ++i) ASSERT_EQ(capped.Admit(1, kT0 + i * 1000, 1), Outcome::kNew);
  EXPECT_EQ(capped.readings(), 100u);
  EXPECT_LT(capped.MemoryBytes(), 100 * 16 * 8 / 3 + 1024);
  EXPECT_EQ(capped.Admit(1, kT0 + 999 * 1000, 1), Outcome::kDuplicate);
  EXPECT_EQ(capped.Admit(1, kT0 + 900 * 1000, 1), Outcome::kDuplicate);
  EXPECT_EQ(capped.Admit(1, kT0 + 899 * 1000, 1), Outcome::kLate);
  EXPECT_EQ(capped.Admit(1, kT0 + 899 * 1000 + 1, 1), Outcome::kLate) << "between two evicted readings";
}

TEST(DedupWindowTest, ValuesHashIgnoresOrderButNotValues) {
  Reading a, b;
  a.numbers = {{"temperature", 20.5}, {"humidity", 60}};
  a.texts = {{"status", "ok"}};
  b.numbers = {{"humidity", 60}, {"temperature", 20.5}};
  b.texts = {{"status", "ok"}};
  EXPECT_EQ(ValuesHash(a), ValuesHash(b));
  b.numbers[1].value = 20.6;
  EXPECT_NE(ValuesHash(a), ValuesHash(b));
  b.numbers[1].value = 20.5;
  b.texts[0].value = "fault";
  EXPECT_NE(ValuesHash(a), ValuesHash(b));
  b.texts[0].value = "ok";
  b.has_location = true;
  EXPECT_NE(ValuesHash(a), ValuesHash(b));
  // A name moved to another field with the same value is another reading.
  Reading c, d;
  c.numbers = {{"temperature", 1}, {"humidity", 2}};
  d.numbers = {{"temperature", 2}, {"humidity", 1}};
  EXPECT_NE(ValuesHash(c), ValuesHash(d));
}

}  // namespace
}  // namespace mare
