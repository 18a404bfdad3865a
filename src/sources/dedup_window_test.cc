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

TEST(DedupWindowTest, ManySensorsEachKeepTheirOwnReadings) {
  // Past the sensors' table's first sizes (it grows as sensors come): every sensor, including
  // 0 and the largest id, is found again with its own readings.
  DedupWindow w(600 * kSecond, 1000);
  std::vector<uint32_t> ids = {0, 4'294'967'295u};
  for (uint32_t i = 1; i <= 5000; ++i) ids.push_back(i * 2'654'435'761u);
  for (uint32_t id : ids) ASSERT_EQ(w.Admit(id, kT0, id), Outcome::kNew) << id;
  EXPECT_EQ(w.sensors(), ids.size());
  for (uint32_t id : ids) {
    ASSERT_EQ(w.Admit(id, kT0, id), Outcome::kDuplicate) << id;
    ASSERT_EQ(w.Admit(id, kT0, id + 1), Outcome::kConflict) << id;
  }
  w.Forget(ids[7], kT0, ids[7]);
  EXPECT_EQ(w.Admit(ids[7], kT0, ids[7]), Outcome::kNew) << "forgotten, so taken again";
  EXPECT_EQ(w.Admit(ids[8], kT0, ids[8]), Outcome::kDuplicate) << "its neighbour is not forgotten";
  w.Forget(12345, kT0, 1);  // a sensor never seen: nothing to forget
  EXPECT_EQ(w.sensors(), ids.size());
  EXPECT_EQ(w.readings(), ids.size());
  EXPECT_LT(w.MemoryBytes(), ids.size() * 200) << "about 100 bytes a sensor with one reading each";
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
  // -0.0 is 0.0; latitude and longitude swapped are another place; a long name or text counts
  // every byte.
  c.numbers = {{"temperature", 0.0}};
  d.numbers = {{"temperature", -0.0}};
  EXPECT_EQ(ValuesHash(c), ValuesHash(d));
  c.has_location = d.has_location = true;
  c.lat = d.lon = 42.5;
  c.lon = d.lat = 3.25;
  EXPECT_NE(ValuesHash(c), ValuesHash(d));
  d.lat = 42.5;
  d.lon = 3.25;
  EXPECT_EQ(ValuesHash(c), ValuesHash(d));
  c.texts = {{"status", "a rather long status text, past sixteen bytes: 1"}};
  d.texts = {{"status", "a rather long status text, past sixteen bytes: 2"}};
  EXPECT_NE(ValuesHash(c), ValuesHash(d));
  d.texts = {{"status", "A rather long status text, past sixteen bytes: 1"}};
  EXPECT_NE(ValuesHash(c), ValuesHash(d));
}

}  // namespace
}  // namespace mare
