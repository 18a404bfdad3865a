// RollupState: aggregates against a naive recomputation, lateness, watermark and closing,
// eviction, and parsing raw records.
#include "processors/rollup/rollup_state.h"

#include <gtest/gtest.h>
#include <simdjson.h>

#include <cmath>
#include <map>
#include <random>
#include <tuple>

#include "common/time.h"
#include "reading/timestamp.h"
#include "processors/rollup/test_util.h"

namespace mare::rollup {
namespace {

using testing::RawReading;


int64_t At(int h, int mi, int s = 0) { return *CivilToMicros(2024, 1, 21, h, mi, s); }

// Feeds one reading; numbers as NumberFields over the given names.
bool Feed(RollupState& state, int32_t partition, int64_t offset, const RawReading& r) {
  std::vector<NumberField> numbers;
  for (const auto& [name, v] : r.numbers) numbers.push_back({name, v});
  return state.Add(partition, offset, r.ts, r.sensor, numbers, "raw");
}

struct Parsed {
  uint64_t sensor_id;
  std::string field, resolution, window_start, window_end;
  int64_t count, revision;
  double min, max, mean, stddev, first, last;
  bool final;
};

Parsed Parse(const std::string& json) {
  simdjson::dom::parser parser;
  simdjson::dom::element e = parser.parse(json);
  Parsed p;
  p.sensor_id = e["sensor_id"].get_uint64();
  p.field = std::string(e["field"].get_string().value());
  p.resolution = std::string(e["resolution"].get_string().value());
  p.window_start = std::string(e["window_start"].get_string().value());
  p.window_end = std::string(e["window_end"].get_string().value());
  p.count = e["count"].get_int64();
  p.revision = e["revision"].get_int64();
  p.min = e["min"].get_double();
  p.max = e["max"].get_double();
  p.mean = e["mean"].get_double();
  p.stddev = e["stddev"].get_double();
  p.first = e["first"].get_double();
  p.last = e["last"].get_double();
  p.final = e["final"].get_bool();
  return p;
}

std::map<std::string, Parsed> EmitParsed(RollupState& state, size_t* n = nullptr) {
  std::vector<RollupMessage> out;
  size_t emitted = state.Emit(&out);
  if (n) *n = emitted;
  std::map<std::string, Parsed> m;
  for (const auto& msg : out) m[msg.key] = Parse(msg.value);
  return m;
}

TEST(RollupStateTest, AggregatesMatchANaiveRecomputationOnRandomData) {
  std::mt19937_64 rng(42);
  RollupStateOptions o;
  o.partitions = 2;
  RollupState state(o);
  std::vector<RawReading> readings;
  int64_t t = At(9, 0);
  const char* fields[] = {"temperature", "pressure", "wave_height"};
  for (int i = 0; i < 20'000; ++i) {
    t += static_cast<int64_t>(rng() % 2'000'000);  // up to 2 s apart: many readings per minute
    RawReading r{static_cast<uint32_t>(rng() % 5), t - static_cast<int64_t>(rng() % 300'000'000), {}};  // up to 5 min out of order
    if (rng() % 10 == 0) r.ts = readings.empty() ? t : readings.back().ts;  // ties in event time
    for (int f = 0; f < 3; ++f) {
      if (rng() % 4 == 0) continue;  // fields come and go
      double base = f == 1 ? 1013.25e3 : 20.0;  // a large offset tests numerical stability
      r.numbers.emplace_back(fields[f], base + std::uniform_real_distribution<double>(-5, 5)(rng));
    }
    readings.push_back(r);
  }
  std::vector<int64_t> offsets(2, 0);
  for (const auto& r : readings) {
    int32_t p = static_cast<int32_t>(r.sensor % 2);
    ASSERT_TRUE(Feed(state, p, offsets[static_cast<size_t>(p)]++, r));  // nothing beyond 10 min late
  }
  state.AdvanceWatermark();
  auto got = EmitParsed(state);

  // Naive: group values in feed order, then compute each statistic directly.
  struct Values {
    std::vector<std::pair<int64_t, double>> v;
  };
  std::map<std::string, Values> groups;
  for (const auto& r : readings) {
    for (const auto& res : o.resolutions) {
      int64_t start = WindowStart(r.ts, res.length_us);
      for (const auto& [name, v] : r.numbers) {
        groups[std::to_string(r.sensor) + "/" + name + "/" + res.name + "/" + std::to_string(start)].v.emplace_back(r.ts, v);
      }
    }
  }
  ASSERT_EQ(got.size(), groups.size());
  int64_t wm = state.watermark_us();
  for (const auto& [key, g] : groups) {
    ASSERT_TRUE(got.count(key)) << key;
    const Parsed& p = got[key];
    double sum = 0, mn = g.v[0].second, mx = g.v[0].second;
    auto first = g.v[0], last = g.v[0];
    for (const auto& x : g.v) {
      sum += x.second;
      mn = std::min(mn, x.second);
      mx = std::max(mx, x.second);
      if (x.first < first.first) first = x;
      if (x.first >= last.first) last = x;
    }
    double mean = sum / static_cast<double>(g.v.size());
    double ss = 0;
    for (const auto& x : g.v) ss += (x.second - mean) * (x.second - mean);
    double stddev = std::sqrt(ss / static_cast<double>(g.v.size()));
    EXPECT_EQ(p.count, static_cast<int64_t>(g.v.size())) << key;
    EXPECT_EQ(p.revision, p.count);
    EXPECT_EQ(p.min, mn) << key;
    EXPECT_EQ(p.max, mx) << key;
    EXPECT_EQ(p.first, first.second) << key;
    EXPECT_EQ(p.last, last.second) << key;
    EXPECT_NEAR(p.mean, mean, 1e-9 * std::abs(mean)) << key;
    // Relative to the values' magnitude: stddev of one reading is exactly 0.
    EXPECT_NEAR(p.stddev, stddev, 1e-9 * std::max(stddev, 1e-3 * std::abs(mean))) << key;
    if (g.v.size() == 1) {
      EXPECT_EQ(p.stddev, 0.0);
    }
    int64_t start = std::stoll(key.substr(key.rfind('/') + 1));
    int64_t length = *ParseDurationMicros(p.resolution);
    EXPECT_EQ(p.final, start + length <= wm) << key;
    EXPECT_EQ(p.window_start, FormatTimestamp(start));
    EXPECT_EQ(p.window_end, FormatTimestamp(start + length));
  }
}

TEST(RollupStateTest, OutOfOrderReadingsWithinLatenessAreCountedAndFirstIsByEventTime) {
  RollupState state({.resolutions = {MakeResolution(kMicrosPerHour)}, .lateness_us = 10 * kMicrosPerMinute});
  ASSERT_TRUE(Feed(state, 0, 0, {7, At(10, 5), {{"temperature", 15.0}}}));
  ASSERT_TRUE(Feed(state, 0, 1, {7, At(10, 20), {{"temperature", 17.0}}}));
  ASSERT_TRUE(Feed(state, 0, 2, {7, At(10, 11), {{"temperature", 13.0}}}));  // 9 min late: fine
  EXPECT_FALSE(Feed(state, 0, 3, {7, At(10, 1), {{"temperature", 11.0}}}));  // 19 min behind the newest...
  EXPECT_EQ(state.dropped_late(), 1u);                                        // ... so that one is dropped
  auto got = EmitParsed(state);
  const Parsed& p = got.at("7/temperature/1h/" + std::to_string(At(10, 0)));
  EXPECT_EQ(p.count, 3);
  EXPECT_EQ(p.first, 15.0);
  EXPECT_EQ(p.last, 17.0);
  EXPECT_EQ(p.min, 13.0);
  EXPECT_EQ(p.mean, 15.0);
  EXPECT_FALSE(p.final);
}

TEST(RollupStateTest, WindowClosesWhenTheWatermarkPassesItsEndAndIsEmittedOnceMoreAsFinal) {
  RollupState state({.resolutions = {MakeResolution(kMicrosPerHour)}, .lateness_us = 10 * kMicrosPerMinute});
  ASSERT_TRUE(Feed(state, 0, 0, {1, At(10, 0), {{"t", 1.0}}}));  // exactly 10:00 belongs to [10:00, 11:00)
  ASSERT_TRUE(Feed(state, 0, 1, {1, At(10, 59), {{"t", 2.0}}}));
  state.AdvanceWatermark();
  size_t n;
  auto first = EmitParsed(state, &n);
  EXPECT_EQ(n, 1u);
  EXPECT_FALSE(first.begin()->second.final);
  EXPECT_EQ(first.begin()->second.revision, 2);
  EXPECT_EQ(state.open_windows(), 1);

  EmitParsed(state, &n);
  EXPECT_EQ(n, 0u) << "nothing changed, nothing emitted";

  ASSERT_TRUE(Feed(state, 0, 2, {1, At(11, 9, 59), {{"t", 3.0}}}));  // watermark 10:59:59: still open
  state.AdvanceWatermark();
  auto still = EmitParsed(state);
  EXPECT_EQ(still.count("1/t/1h/" + std::to_string(At(10, 0))), 0u) << "unchanged and not closed: not re-emitted";
  EXPECT_EQ(still.size(), 1u);
  EXPECT_EQ(state.open_windows(), 2);
  ASSERT_TRUE(Feed(state, 0, 3, {1, At(11, 10), {{"t", 4.0}}}));  // watermark 11:00: closes [10:00, 11:00)
  state.AdvanceWatermark();
  auto closed = EmitParsed(state);
  ASSERT_TRUE(closed.count("1/t/1h/" + std::to_string(At(10, 0))));
  EXPECT_TRUE(closed.at("1/t/1h/" + std::to_string(At(10, 0))).final);
  EXPECT_EQ(closed.at("1/t/1h/" + std::to_string(At(10, 0))).revision, 2);
  EXPECT_EQ(state.open_windows(), 1);
}

TEST(RollupStateTest, CloseEmitsFinalWithTheSameRevisionAndThenEvicts) {
  RollupState state({.resolutions = {MakeResolution(kMicrosPerHour)}, .lateness_us = 10 * kMicrosPerMinute});
  std::string key = "1/t/1h/" + std::to_string(At(10, 0));
  ASSERT_TRUE(Feed(state, 0, 0, {1, At(10, 30), {{"t", 1.0}}}));
  EmitParsed(state);
  ASSERT_TRUE(Feed(state, 0, 1, {1, At(11, 10), {{"t", 2.0}}}));  // watermark reaches 11:00
  state.AdvanceWatermark();
  EXPECT_EQ(state.open_windows(), 1);  // 11:00 is open, 10:00 closed
  auto got = EmitParsed(state);
  ASSERT_TRUE(got.count(key));
  EXPECT_TRUE(got[key].final);
  EXPECT_EQ(got[key].revision, 1);
  EXPECT_EQ(state.held_windows(), 1) << "the closed window is evicted once emitted";
  // A reading for it now is beyond the lateness: dropped, never silently.
  std::vector<std::string> rejects;
  state.set_reject_handler([&](std::string_view reason, std::string_view detail, std::string_view) {
    rejects.push_back(std::string(reason) + ": " + std::string(detail));
  });
  EXPECT_FALSE(Feed(state, 0, 2, {1, At(10, 45), {{"t", 9.0}}}));
  ASSERT_EQ(rejects.size(), 1u);
  EXPECT_NE(rejects[0].find("late: "), std::string::npos);
  EXPECT_NE(rejects[0].find("is 15m older than the watermark"), std::string::npos) << rejects[0];
  EXPECT_EQ(state.dropped_late(), 1u);
  EXPECT_EQ(state.next_offset(0), 3);
}

TEST(RollupStateTest, LateReadingWithinItsPartitionsLatenessReopensAClosedWindowWithAHigherRevision) {
  // Partition 0 runs ahead and moves the processor's watermark past 11:00; partition 1 (sensor
  // 1) is behind, so its 10:40 reading is within lateness and updates the closed window.
  RollupState state({.resolutions = {MakeResolution(kMicrosPerHour)}, .lateness_us = 10 * kMicrosPerMinute, .partitions = 2});
  std::string key = "1/t/1h/" + std::to_string(At(10, 0));
  ASSERT_TRUE(Feed(state, 1, 0, {1, At(10, 30), {{"t", 1.0}}}));
  ASSERT_TRUE(Feed(state, 0, 0, {2, At(12, 0), {{"t", 5.0}}}));
  state.AdvanceWatermark();
  auto closed = EmitParsed(state);
  ASSERT_TRUE(closed.at(key).final);
  EXPECT_EQ(closed.at(key).revision, 1);
  ASSERT_TRUE(Feed(state, 1, 1, {1, At(10, 40), {{"t", 3.0}}}));
  state.AdvanceWatermark();
  auto reopened = EmitParsed(state);
  ASSERT_TRUE(reopened.count(key));
  EXPECT_EQ(reopened.at(key).revision, 2);
  EXPECT_TRUE(reopened.at(key).final);
  EXPECT_EQ(reopened.at(key).mean, 2.0);
  EXPECT_EQ(reopened.at(key).last, 3.0);
  EXPECT_EQ(state.dropped_late(), 0u);
}

// A sensor (here the whole stream) goes quiet at 10:58: no newer reading will move the
// watermark past 11:00. Silence carries it on instead (the processor passes the time since its
// last non-empty poll): 12 minutes of it close [10:00, 11:00), as a reading at 11:10 would have.
// Which readings count does not change: a 10:59 one arriving after is still counted (the window
// is re-emitted, final, with a higher revision); a 10:40 one is still late.
TEST(RollupStateTest, SilenceCarriesTheWatermarkOnAndClosesTheLastWindowOfAQuietStream) {
  RollupState state({.resolutions = {MakeResolution(kMicrosPerHour)}, .lateness_us = 10 * kMicrosPerMinute});
  std::string key = "1/t/1h/" + std::to_string(At(10, 0));
  state.AdvanceIdleWatermark(kMicrosPerHour);  // nothing read yet: nothing to carry on
  EXPECT_EQ(state.open_windows(), 0);
  ASSERT_TRUE(Feed(state, 0, 0, {1, At(10, 30), {{"t", 1.0}}}));
  ASSERT_TRUE(Feed(state, 0, 1, {1, At(10, 58), {{"t", 2.0}}}));
  state.AdvanceWatermark();
  EXPECT_FALSE(EmitParsed(state).at(key).final);
  state.AdvanceIdleWatermark(11 * kMicrosPerMinute + 59 * 1'000'000);  // 10:59:59: still open
  size_t n = 0;
  EmitParsed(state, &n);
  EXPECT_EQ(n, 0u);
  EXPECT_EQ(state.open_windows(), 1);
  state.AdvanceIdleWatermark(12 * kMicrosPerMinute);  // 11:00
  auto closed = EmitParsed(state);
  ASSERT_TRUE(closed.count(key));
  EXPECT_TRUE(closed.at(key).final);
  EXPECT_EQ(closed.at(key).revision, 2);
  EXPECT_EQ(state.open_windows(), 0);
  EXPECT_EQ(state.watermark_us(), At(10, 48)) << "the event-time watermark itself is unchanged";
  // Counting is still decided by the partition's newest event time (10:58 - 10m = 10:48).
  ASSERT_TRUE(Feed(state, 0, 2, {1, At(10, 59), {{"t", 3.0}}}));
  EXPECT_FALSE(Feed(state, 0, 3, {1, At(10, 40), {{"t", 9.0}}}));
  EXPECT_EQ(state.dropped_late(), 1u);
  state.AdvanceWatermark();
  auto again = EmitParsed(state);
  ASSERT_TRUE(again.count(key));
  EXPECT_TRUE(again.at(key).final);
  EXPECT_EQ(again.at(key).revision, 3);
  EXPECT_EQ(again.at(key).mean, 2.0);
  // The same readings without the silence: the window stays open (closing moved, counting not).
  RollupState live({.resolutions = {MakeResolution(kMicrosPerHour)}, .lateness_us = 10 * kMicrosPerMinute});
  ASSERT_TRUE(Feed(live, 0, 0, {1, At(10, 30), {{"t", 1.0}}}));
  ASSERT_TRUE(Feed(live, 0, 1, {1, At(10, 58), {{"t", 2.0}}}));
  ASSERT_TRUE(Feed(live, 0, 2, {1, At(10, 59), {{"t", 3.0}}}));
  EXPECT_FALSE(Feed(live, 0, 3, {1, At(10, 40), {{"t", 9.0}}}));
  live.AdvanceWatermark();
  auto open = EmitParsed(live);
  EXPECT_FALSE(open.at(key).final);
  EXPECT_EQ(open.at(key).revision, 3);
  EXPECT_EQ(open.at(key).mean, 2.0);
}

TEST(RollupStateTest, ParsesRawRecordsNumbersOnly) {
  RollupState state({.resolutions = {MakeResolution(kMicrosPerMinute)}});
  std::string value = testing::ReadingJson({3, At(10, 0, 30), {{"temperature", 20.5}, {"pressure", 1001.87}}});
  log::ConsumedRecord r{0, 0, At(10, 0, 30), 0, "3", value};
  ASSERT_TRUE(state.AddRecord(r));
  auto got = EmitParsed(state);
  ASSERT_EQ(got.size(), 2u);  // not timestamp, sensor_id, location or the text field
  EXPECT_EQ(got.at("3/temperature/1m/" + std::to_string(At(10, 0))).mean, 20.5);
  EXPECT_EQ(got.at("3/pressure/1m/" + std::to_string(At(10, 0))).max, 1001.87);

  std::vector<std::string> reasons;
  state.set_reject_handler([&](std::string_view reason, std::string_view, std::string_view) { reasons.emplace_back(reason); });
  EXPECT_FALSE(state.AddRecord({0, 1, At(10, 0, 31), 0, "x3", value}));
  EXPECT_FALSE(state.AddRecord({0, 2, At(10, 0, 31), 0, "3", "{\"temperature\": "}));
  EXPECT_EQ(reasons, (std::vector<std::string>{"invalid", "invalid"}));
  EXPECT_EQ(state.next_offset(0), 3);
}

// The parse buffer is reused: a record's fate must not depend on what a longer record before it
// left past its end (a '}' there once made simdjson judge a damaged value differently).
TEST(RollupStateTest, ARecordIsJudgedTheSameWhateverCameBefore) {
  std::string shorter = "{\"timestamp\":1705831230,\"temperature\":1}}";
  std::string longer = testing::ReadingJson({3, At(10, 0, 10), {{"temperature", 20.5}, {"pressure", 1001.87}}}) + "}}}}";
  for (const std::string& odd : {shorter, std::string("{\"timestamp\":1705831231,\"temperature\":2}")}) {
    RollupState fresh({.resolutions = {MakeResolution(kMicrosPerMinute)}});
    RollupState used({.resolutions = {MakeResolution(kMicrosPerMinute)}});
    used.AddRecord({0, 0, At(10, 0, 10), 0, "3", longer});
    bool alone = fresh.AddRecord({0, 0, At(10, 0, 30), 0, "3", odd});
    bool after = used.AddRecord({0, 1, At(10, 0, 30), 0, "3", odd});
    EXPECT_EQ(alone, after) << odd;
  }
}

TEST(RollupStateTest, MessageShapeFollowsTheFormatDoc) {
  RollupState state({.resolutions = {MakeResolution(kMicrosPerHour)}, .partitions = 4});
  ASSERT_TRUE(Feed(state, 3, 0, {7, At(10, 6, 4), {{"temperature", 12.5}}}));
  std::vector<RollupMessage> out;
  state.Emit(&out);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].partition, 3);
  EXPECT_EQ(out[0].timestamp_us, At(10, 0));
  EXPECT_EQ(out[0].key, "7/temperature/1h/1705831200000000");
  EXPECT_EQ(out[0].value,
            "{\"sensor_id\":7,\"field\":\"temperature\",\"resolution\":\"1h\",\"window_start\":\"2024-01-21T10:00:00.000000Z\","
            "\"window_end\":\"2024-01-21T11:00:00.000000Z\",\"count\":1,\"min\":12.5,\"max\":12.5,\"mean\":12.5,\"stddev\":0,"
            "\"first\":12.5,\"last\":12.5,\"revision\":1,\"final\":false}");
}


// A group of processors hands partitions over as per-partition snapshots: restored one by one
// into an empty state, in any order and with field ids in another order, they go on exactly
// as the state that wrote them.
TEST(RollupStateTest, PartitionSnapshotsRestoreIntoOneStateThatGoesOnIdentically) {
  RollupStateOptions o{.partitions = 3};
  RollupState original(o);
  std::mt19937_64 rnd(7);
  std::uniform_real_distribution<double> value(-5, 30);
  std::vector<int64_t> offset(3, 0);
  auto feed = [&](RollupState& s, std::vector<int64_t>& off, int from, int to) {
    for (int i = from; i < to; ++i) {
      uint32_t sensor = 1 + static_cast<uint32_t>(i % 7);
      int32_t p = static_cast<int32_t>(sensor % 3);
      RawReading r{sensor, At(10, 0) + i * 7'000'000LL, {}};
      if (sensor % 2) r.numbers.push_back({"wave_height", value(rnd)});
      r.numbers.push_back({"temperature", value(rnd)});
      Feed(s, p, off[static_cast<size_t>(p)]++, r);
    }
    s.AdvanceWatermark();
  };
  feed(original, offset, 0, 600);
  EmitParsed(original);
  feed(original, offset, 600, 700);  // some aggregates dirty at the snapshot

  RollupState restored(o);
  for (int32_t p : {2, 0, 1}) {
    std::string bytes;
    original.EncodePartition(p, &bytes);
    ASSERT_TRUE(restored.DecodePartition(p, bytes).ok()) << p;
    EXPECT_EQ(restored.next_offset(p), original.next_offset(p));
    EXPECT_EQ(restored.partition_watermark_us(p), original.partition_watermark_us(p));
  }
  EXPECT_EQ(restored.held_windows(), original.held_windows());
  EXPECT_EQ(restored.open_windows(), original.open_windows());
  EXPECT_EQ(restored.watermark_us(), original.watermark_us());

  std::vector<int64_t> offset2 = offset;
  std::mt19937_64 keep = rnd;
  feed(original, offset, 700, 1500);
  rnd = keep;
  feed(restored, offset2, 700, 1500);
  std::vector<RollupMessage> a, b;
  original.Emit(&a);
  restored.Emit(&b);
  std::map<std::string, std::string> ma, mb;
  for (const auto& m : a) ma[m.key] = m.value;
  for (const auto& m : b) mb[m.key] = m.value;
  EXPECT_EQ(ma, mb);
  EXPECT_FALSE(ma.empty());

  // A snapshot holds one partition only: another's window in it is refused.
  std::string whole;
  original.Encode(&whole);
  RollupState other(o);
  EXPECT_FALSE(other.DecodePartition(0, whole).ok());
}


// ---- nested resolutions: coarser windows derived from finer ones vs updated per reading ----

// A stream with ties, readings out of order (some beyond the lateness: dropped in both),
// fields that come and go, values with a large offset, and jumps of up to 3 hours, so that
// minutes, hours and days close and are evicted across day, month, leap-day and year ends.
std::vector<std::pair<int32_t, RawReading>> NestingStream(std::mt19937_64& rng, int64_t t, int n, int32_t partitions) {
  std::vector<std::pair<int32_t, RawReading>> out;
  const char* fields[] = {"temperature", "pressure", "wave_height", "humidity"};
  for (int i = 0; i < n; ++i) {
    t += static_cast<int64_t>(rng() % 3'000'000);
    if (rng() % 150 == 0) t += static_cast<int64_t>(rng() % (3 * kMicrosPerHour));
    uint32_t sensor = static_cast<uint32_t>(rng() % 7);
    int64_t ts = t - static_cast<int64_t>(rng() % (rng() % 20 == 0 ? 15 * kMicrosPerMinute : 2 * kMicrosPerMinute));
    if (rng() % 10 == 0 && !out.empty()) ts = out.back().second.ts;  // ties in event time
    RawReading r{sensor, ts, {}};
    for (int f = 0; f < 4; ++f) {
      if (rng() % 4 == 0) continue;
      double base = f == 1 ? 1013.25e3 : 20.0;
      double v = base + std::uniform_real_distribution<double>(-5, 5)(rng);
      if (f == 3) v = std::round(v);  // many equal values: stddev exactly 0 in many windows
      r.numbers.emplace_back(fields[f], v);
    }
    out.push_back({static_cast<int32_t>(sensor % static_cast<uint32_t>(partitions)), r});
  }
  return out;
}

// The same messages in the same order: keys, revisions, final, count, min, max, first, last
// exactly; mean and stddev within 1e-9 relative.
void ExpectSameMessages(const std::vector<RollupMessage>& nested, const std::vector<RollupMessage>& direct,
                        const std::string& where) {
  ASSERT_EQ(nested.size(), direct.size()) << where;
  for (size_t i = 0; i < nested.size(); ++i) {
    ASSERT_EQ(nested[i].key, direct[i].key) << where;
    EXPECT_EQ(nested[i].partition, direct[i].partition);
    EXPECT_EQ(nested[i].timestamp_us, direct[i].timestamp_us);
    Parsed a = Parse(nested[i].value), b = Parse(direct[i].value);
    std::string k = where + " " + nested[i].key;
    EXPECT_EQ(a.count, b.count) << k;
    EXPECT_EQ(a.revision, b.revision) << k;
    EXPECT_EQ(a.final, b.final) << k;
    EXPECT_EQ(a.min, b.min) << k;
    EXPECT_EQ(a.max, b.max) << k;
    EXPECT_EQ(a.first, b.first) << k;
    EXPECT_EQ(a.last, b.last) << k;
    EXPECT_EQ(a.window_start, b.window_start) << k;
    EXPECT_NEAR(a.mean, b.mean, 1e-9 * std::abs(b.mean)) << k;
    EXPECT_NEAR(a.stddev, b.stddev, 1e-9 * std::max(b.stddev, 1e-6 * std::abs(b.mean))) << k;
    if (b.stddev == 0) {
      EXPECT_EQ(a.stddev, 0.0) << k;
    }
    if (a.count == 1) {
      EXPECT_EQ(nested[i].value, direct[i].value) << k;
    }
  }
}

void CheckNestedMatchesDirect(const char* resolutions, int64_t start, uint64_t seed) {
  SCOPED_TRACE(std::string(resolutions) + " from " + FormatTimestamp(start) + " seed " + std::to_string(seed));
  constexpr int32_t kPartitions = 3;
  RollupStateOptions o{.resolutions = *ParseResolutions(resolutions), .partitions = kPartitions};
  RollupState nested(o);
  o.nest = false;
  RollupState direct(o);
  std::mt19937_64 rng(seed);
  auto stream = NestingStream(rng, start, 30'000, kPartitions);
  std::vector<int64_t> offsets(kPartitions, 0);
  size_t emitted = 0, finals = 0;
  for (size_t i = 0; i < stream.size(); ++i) {
    auto& [p, r] = stream[i];
    int64_t offset = offsets[static_cast<size_t>(p)]++;
    ASSERT_EQ(Feed(nested, p, offset, r), Feed(direct, p, offset, r));
    if (rng() % 50 == 0) {  // emission at random points: sometimes several times in a minute, sometimes not for hours
      if (rng() % 4 != 0) {  // and sometimes without closing first
        nested.AdvanceWatermark();
        direct.AdvanceWatermark();
      }
      std::vector<RollupMessage> a, b;
      nested.Emit(&a);
      direct.Emit(&b);
      ExpectSameMessages(a, b, "after reading " + std::to_string(i));
      if (::testing::Test::HasFailure()) return;
      emitted += a.size();
      for (const auto& m : a) finals += testing::FinalOf(m.value);
      EXPECT_EQ(nested.open_windows(), direct.open_windows());
      EXPECT_EQ(nested.held_windows(), direct.held_windows());
    }
  }
  nested.AdvanceWatermark();
  direct.AdvanceWatermark();
  std::vector<RollupMessage> a, b;
  nested.Emit(&a);
  direct.Emit(&b);
  ExpectSameMessages(a, b, "at the end");
  EXPECT_EQ(nested.readings(), direct.readings());
  EXPECT_EQ(nested.dropped_late(), direct.dropped_late());
  EXPECT_GT(nested.dropped_late(), 0u);
  EXPECT_GT(emitted, 10'000u);
  EXPECT_GT(finals, 1'000u);
}

TEST(RollupStateTest, NestedResolutionsMatchPerReadingUpdatesOverDayMonthLeapDayAndYearEnds) {
  int64_t leap = *CivilToMicros(2024, 2, 27, 22, 0, 0);  // through Feb 29 into March
  int64_t year_end = *CivilToMicros(2023, 12, 30, 23, 40, 0);
  CheckNestedMatchesDirect("1m,1h,1d", leap, 1);
  CheckNestedMatchesDirect("1m,1h,1d", year_end, 2);
  // Several chains, a resolution derived by two others, lists out of order, and ones that
  // do not nest at all.
  CheckNestedMatchesDirect("1d,1h,1m,5m,2h", leap, 3);
  CheckNestedMatchesDirect("1m,1h,90m", year_end, 4);
  CheckNestedMatchesDirect("5m,7m,35m", leap, 5);
  CheckNestedMatchesDirect("1h", year_end, 6);
}

// Sensors whose ids share a slot of the state's sensor cache (ids equal mod 4096) keep their
// own windows, also when one is evicted and comes back.
TEST(RollupStateTest, SensorsWithIdsEqualModuloTheCacheSizeStayApart) {
  RollupState state({.resolutions = *ParseResolutions("1m"), .lateness_us = 0, .partitions = 1});
  const uint32_t ids[] = {5, 4101, 8197, 5 + (1u << 31)};
  int64_t offset = 0;
  for (int round = 0; round < 3; ++round) {
    int64_t t = At(10 + round, 0);
    for (int i = 0; i < 40; ++i) {
      uint32_t id = ids[(i * 7 + round) % 4];
      if (round == 1 && id == 4101) continue;  // evicted in round 0, back in round 2
      ASSERT_TRUE(Feed(state, 0, offset++, {id, t + i * 1000, {{"v", static_cast<double>(id)}}}));
    }
    state.AdvanceWatermark();
    auto got = EmitParsed(state);
    for (const auto& [key, p] : got) {
      EXPECT_EQ(p.min, static_cast<double>(p.sensor_id)) << key;
      EXPECT_EQ(p.max, static_cast<double>(p.sensor_id)) << key;
      EXPECT_EQ(p.count, 10) << key;
    }
    // This round's windows, and the last round's, closed now (final) and then evicted.
    EXPECT_EQ(got.size(), round == 0 ? 4u : 7u);
    EXPECT_EQ(state.held_windows(), round == 1 ? 3 : 4);
  }
}

// A derived window's result is the fold of its finer windows in window order whatever the
// moment each was merged (evicted), so a state emitting often and one emitting rarely give
// the same bits for the same revision.
TEST(RollupStateTest, DerivedWindowsDoNotDependOnWhenFinerOnesWereEvicted) {
  RollupStateOptions o{.partitions = 2};
  RollupState often(o), rarely(o);
  std::mt19937_64 rng(11);
  auto stream = NestingStream(rng, At(0, 0), 20'000, 2);
  std::vector<int64_t> offsets(2, 0);
  std::map<std::string, std::map<int64_t, std::string>> seen;  // key -> revision -> value without final
  auto collect = [&](RollupState& s, bool check) {
    s.AdvanceWatermark();
    std::vector<RollupMessage> out;
    s.Emit(&out);
    for (const auto& m : out) {
      std::string v = m.value.substr(0, m.value.rfind(",\"final\""));
      auto [it, inserted] = seen[m.key].try_emplace(testing::RevisionOf(m.value), v);
      if (check && !inserted) {
        EXPECT_EQ(it->second, v) << m.key;
      }
    }
  };
  for (size_t i = 0; i < stream.size(); ++i) {
    auto& [p, r] = stream[i];
    int64_t offset = offsets[static_cast<size_t>(p)]++;
    Feed(often, p, offset, r);
    Feed(rarely, p, offset, r);
    if (i % 40 == 0) collect(often, false);
    if (i % 4000 == 0) collect(rarely, true);
  }
  collect(often, true);
  collect(rarely, true);
}

}  // namespace
}  // namespace mare::rollup
