// RollupProcessor against the embedded log: the rollups it appends, upserted, equal a
// from-scratch computation over the same readings, also across kill -9 and restart.
#include "processors/rollup/rollup_processor.h"
#include "processors/rollup/record_parser.h"

#include <gtest/gtest.h>

#include "common/scratch_dir.h"
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <fstream>
#include <random>
#include <thread>

#include "common/time.h"
#include "log/log_with_topics.h"
#include "processors/rollup/checkpoint.h"
#include "processors/rollup/rollup_metrics.h"
#include "processors/rollup/test_util.h"

namespace mare::rollup {
namespace {

using testing::RawReading;
using testing::Upserted;
using Table = std::map<std::string, Upserted>;

constexpr int32_t kPartitions = 4;

class RollupProcessorTest : public ::testing::Test {
 protected:
  std::unique_ptr<log::Log> OpenLog(metrics::Registry* registry) {
    auto l = log::OpenLogWithTopics({.dir = dir_ + "/log", .metrics = registry}, {{.name = "raw", .partitions = kPartitions}});
    EXPECT_TRUE(l.ok()) << l.status().ToString();
    return l.ok() ? std::move(*l) : nullptr;
  }

  RollupOptions Options() {
    RollupOptions o;
    o.checkpoint_dir = dir_ + "/rollup";
    o.emit_interval_us = 5'000;
    o.checkpoint_interval_us = 20'000;
    o.poll_records = 64;
    return o;
  }

  ScratchDir scratch_{"mare-rollup-proc"};
  const std::string dir_ = scratch_.path();
};

// Readings of `sensors` sensors from t, about 1 s apart, a few minutes out of order, and 1% more
// than the lateness behind (to be dropped).
std::vector<RawReading> MakeReadings(uint64_t seed, int n, int64_t* t, int sensors) {
  std::mt19937_64 rng(seed);
  std::vector<RawReading> out;
  for (int i = 0; i < n; ++i) {
    *t += static_cast<int64_t>(rng() % 2'000'000);
    int64_t ts = *t - static_cast<int64_t>(rng() % 240'000'000);
    if (rng() % 100 == 0) ts -= 30 * 60'000'000LL;
    RawReading r{static_cast<uint32_t>(rng() % static_cast<uint64_t>(sensors)), ts, {}};
    r.numbers.emplace_back("temperature", std::uniform_real_distribution<double>(10, 20)(rng));
    if (rng() % 3) r.numbers.emplace_back("wave_height", std::uniform_real_distribution<double>(0, 4)(rng));
    out.push_back(std::move(r));
  }
  return out;
}

void AppendReadings(log::Log* log, const std::vector<RawReading>& readings) {
  // Batches of up to 50 readings per partition, keeping each sensor's order.
  for (size_t at = 0; at < readings.size(); at += 50) {
    size_t end = std::min(readings.size(), at + 50);
    std::vector<std::string> keys, values;
    keys.reserve(end - at);
    values.reserve(end - at);
    std::vector<std::vector<log::Record>> records(kPartitions);
    for (size_t i = at; i < end; ++i) {
      keys.push_back(std::to_string(readings[i].sensor));
      values.push_back(testing::ReadingJson(readings[i]));
      size_t p = static_cast<size_t>(log::PartitionFor(log->TopicPartitioner("raw"), readings[i].sensor, kPartitions));
      records[p].push_back({readings[i].ts, keys.back(), values.back()});
    }
    for (size_t p = 0; p < kPartitions; ++p) {
      if (records[p].empty()) continue;
      ASSERT_TRUE(log->Append("raw", static_cast<int32_t>(p), records[p]).ok());
    }
  }
}

// Everything in a topic, from the beginning, through a fresh group.
template <typename F>
void ReadAll(log::Log* log, const std::string& topic, const std::string& group, F&& f) {
  auto c = log->Subscribe(group, topic);
  ASSERT_TRUE(c.ok());
  for (int32_t p = 0; p < log->Partitions(topic); ++p) ASSERT_TRUE((*c)->Seek(p, 0).ok());
  std::vector<log::ConsumedRecord> batch;
  for (;;) {
    ASSERT_TRUE((*c)->Poll(&batch, 10'000, std::chrono::milliseconds(0)).ok());
    if (batch.empty()) break;
    for (const auto& r : batch) f(r);
  }
}

// The reference: a fresh RollupState over all of raw, then one Emit.
Table FromScratch(log::Log* log, const RollupOptions& o, uint64_t* dropped = nullptr) {
  RollupState state({.resolutions = o.resolutions, .lateness_us = o.lateness_us, .partitions = kPartitions});
  ReadAll(log, "raw", "verify-raw", [&](const log::ConsumedRecord& r) { state.AddRecord(r); });
  state.AdvanceWatermark();
  std::vector<RollupMessage> out;
  state.Emit(&out);
  Table t;
  testing::UpsertAll(&t, out);
  if (dropped) *dropped = state.dropped_late();
  return t;
}

Table Upserted(log::Log* log, size_t* messages = nullptr) {
  Table t;
  size_t n = 0;
  ReadAll(log, "rollups", "verify-rollups", [&](const log::ConsumedRecord& r) {
    testing::Upsert(&t, r.key, r.value);
    ++n;
  });
  if (messages) *messages = n;
  return t;
}

void WaitConsumed(RollupProcessor* p, int64_t n) {
  for (int i = 0; i < 3000 && p->consumed() < n; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  ASSERT_EQ(p->consumed(), n);
}

void ExpectSameTables(const Table& got, const Table& want) {
  ASSERT_EQ(got.size(), want.size());
  size_t differ = 0;
  for (const auto& [key, w] : want) {
    auto it = got.find(key);
    if (it == got.end()) {
      ADD_FAILURE() << "missing " << key;
      if (++differ > 5) return;
      continue;
    }
    if (it->second.value != w.value) {
      ADD_FAILURE() << key << "\n got  " << it->second.value << "\n want " << w.value;
      if (++differ > 5) return;
    }
  }
}

TEST_F(RollupProcessorTest, RollupsInTheTopicEqualAFromScratchComputationAndLateOnesAreDeadLettered) {
  metrics::Registry registry;
  auto log = OpenLog(&registry);
  ASSERT_TRUE(log);
  int64_t t = 1'705'831'200'000'000;
  auto readings = MakeReadings(1, 6000, &t, 6);
  AppendReadings(log.get(), std::vector<RawReading>(readings.begin(), readings.begin() + 3000));
  auto dead = DeadLetter::Open({.path = dir_ + "/dead-letter.log", .max_entries = 1000}, &registry);
  ASSERT_TRUE(dead.ok());
  auto p = RollupProcessor::Start(Options(), log.get(), dead->get(), &registry);
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ(log->Partitions("rollups"), kPartitions);
  WaitConsumed(p->get(), 3000);
  std::this_thread::sleep_for(std::chrono::milliseconds(20));  // an emission or two
  AppendReadings(log.get(), std::vector<RawReading>(readings.begin() + 3000, readings.end()));
  WaitConsumed(p->get(), 6000);
  ASSERT_TRUE((*p)->Stop().ok());

  uint64_t dropped = 0;
  Table want = FromScratch(log.get(), Options(), &dropped);
  size_t messages = 0;
  Table got = Upserted(log.get(), &messages);
  ExpectSameTables(got, want);
  EXPECT_GT(messages, want.size()) << "open windows were re-emitted as they grew";
  EXPECT_GT(dropped, 20u);
  EXPECT_EQ(registry.GetCounter(rollup_metrics::kLateReadingsDropped).value(), dropped);
  EXPECT_EQ(registry.GetCounter(rollup_metrics::kReadingsCounted).value(), 6000 - dropped);
  EXPECT_EQ(registry.GetCounter(rollup_metrics::kMessagesEmitted).value(), messages);
  EXPECT_EQ((*dead)->kept(), dropped);
  std::ifstream in(dir_ + "/dead-letter.log");
  std::string line;
  ASSERT_TRUE(std::getline(in, line));
  EXPECT_NE(line.find(" rollup late "), std::string::npos) << line;
  EXPECT_NE(line.find("older than the watermark"), std::string::npos) << line;
  size_t finals = 0;
  for (const auto& [k, u] : got) finals += u.final;
  EXPECT_GT(finals, 0u);
  EXPECT_LT(finals, got.size());

  // The group's position is committed for `mare log groups`.
  auto c = log->Subscribe("rollup", "raw");
  ASSERT_TRUE(c.ok());
  int64_t committed = 0;
  for (int32_t q = 0; q < kPartitions; ++q) committed += (*c)->Committed(q);
  EXPECT_EQ(committed, 6000);

  // A restart with nothing new appends nothing.
  auto again = RollupProcessor::Start(Options(), log.get(), nullptr, &registry);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ((*again)->consumed(), 6000);
  ASSERT_TRUE((*again)->Stop().ok());
  size_t after = 0;
  Upserted(log.get(), &after);
  EXPECT_EQ(after, messages);
}

TEST_F(RollupProcessorTest, KilledAtRandomPointsAndRestartedFromTheCheckpointTheRollupsAreExact) {
  std::mt19937_64 rng(2024);
  int64_t t = 1'705'831'200'000'000;
  int64_t total = 0;
  int kills = 0, mid_stream = 0;
  for (int round = 0; round < 6; ++round) {
    {
      metrics::Registry registry;
      auto log = OpenLog(&registry);
      ASSERT_TRUE(log);
      auto readings = MakeReadings(100 + static_cast<uint64_t>(round), 3000, &t, 8);
      AppendReadings(log.get(), readings);
      total += static_cast<int64_t>(readings.size());
    }  // closed: the child takes the log's lock
    fflush(nullptr);
    pid_t child = fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
      // Lowest priority: on a loaded machine the parent, which must see the target reached and
      // kill at once, would otherwise lose the CPU long enough for the child to finish.
      errno = 0;
      if (nice(19) == -1 && errno != 0) _exit(5);
      metrics::Registry registry;
      auto log = OpenLog(&registry);
      if (!log) _exit(3);
      RollupOptions o = Options();
      o.poll_records = 8;  // many small steps, each emitting and checkpointing: many crash points
      o.emit_interval_us = 500;
      o.checkpoint_interval_us = 1;  // every step: progress in small, visible increments
      auto p = RollupProcessor::Start(o, log.get(), nullptr, &registry);
      if (!p.ok()) _exit(4);
      for (;;) pause();  // until SIGKILL
    }
    // Kill at a random point of this round's readings, chosen by the child's progress (its
    // checkpoint, replaced atomically) rather than by a clock: machines differ in speed.
    const int64_t before = total - 3000;
    const int64_t target = before + 300 + static_cast<int64_t>(rng() % 2100);
    for (int waited = 0; waited < 5000; ++waited) {
      RollupState progress({.partitions = kPartitions});
      if (ReadCheckpoint(Options().checkpoint_dir + "/checkpoint", &progress).ok()) {
        int64_t read = 0;
        for (int32_t q = 0; q < kPartitions; ++q) read += progress.next_offset(q);
        if (read >= target) break;
      }
      std::this_thread::sleep_for(std::chrono::microseconds(500));
    }
    ASSERT_EQ(kill(child, SIGKILL), 0);
    int status = 0;
    ASSERT_EQ(waitpid(child, &status, 0), child);
    ASSERT_TRUE(WIFSIGNALED(status)) << "the child exited on its own with " << WEXITSTATUS(status);
    ++kills;
    RollupState at_kill({.partitions = kPartitions});
    if (ReadCheckpoint(Options().checkpoint_dir + "/checkpoint", &at_kill).ok()) {
      int64_t read = 0;
      for (int32_t q = 0; q < kPartitions; ++q) read += at_kill.next_offset(q);
      mid_stream += read < total;
    }
  }
  EXPECT_EQ(kills, 6);
  EXPECT_GE(mid_stream, 3) << "most kills should land before the child caught up";

  metrics::Registry registry;
  auto log = OpenLog(&registry);
  ASSERT_TRUE(log);
  auto p = RollupProcessor::Start(Options(), log.get(), nullptr, &registry);
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  WaitConsumed(p->get(), total);
  ASSERT_TRUE((*p)->Stop().ok());
  Table want = FromScratch(log.get(), Options());
  Table got = Upserted(log.get());
  EXPECT_GT(want.size(), 100u);
  ExpectSameTables(got, want);
}

// A stream that goes quiet 0.1 s (event time) before its hour's end: nothing newer will come to
// move the watermark past the hour. With idle_watermark the silence does, once the rest of the
// hour and the lateness (0.3 s here) have passed on the clock: the hour's rollup turns final (and
// the forecast processor issues). Without it, the window stays open.
TEST_F(RollupProcessorTest, SilenceClosesTheLastWindowsOfAQuietStream) {
  metrics::Registry registry;
  auto log = OpenLog(&registry);
  ASSERT_TRUE(log);
  const int64_t hour = *CivilToMicros(2024, 1, 21, 10, 0, 0);
  AppendReadings(log.get(), {{3, hour + 30 * kMicrosPerMinute, {{"temperature", 11.0}}},
                             {3, hour + kMicrosPerHour - 100'000, {{"temperature", 13.0}}}});
  const std::string key = "3/temperature/1h/" + std::to_string(hour);
  auto final_in = [&](const std::string& topic) {
    bool final = false;
    ReadAll(log.get(), topic, "verify-" + topic + std::to_string(MonotonicMicros()), [&](const log::ConsumedRecord& r) {
      if (r.key == key && testing::FinalOf(r.value)) final = true;
    });
    return final;
  };
  RollupOptions off = Options();
  off.lateness_us = 300'000;
  off.idle_watermark = false;
  off.group = "rollup-off";
  off.output_topic = "rollups-off";
  off.checkpoint_dir = dir_ + "/rollup-off";
  RollupOptions on = off;
  on.idle_watermark = true;
  on.group = "rollup-on";
  on.output_topic = "rollups-on";
  on.checkpoint_dir = dir_ + "/rollup-on";
  auto quiet = RollupProcessor::Start(off, log.get(), nullptr, &registry);
  ASSERT_TRUE(quiet.ok()) << quiet.status().ToString();
  auto idle = RollupProcessor::Start(on, log.get(), nullptr, &registry);
  ASSERT_TRUE(idle.ok()) << idle.status().ToString();
  WaitConsumed(quiet->get(), 2);
  WaitConsumed(idle->get(), 2);
  const int64_t read_at = MonotonicMicros();
  bool closed = false;
  for (int i = 0; i < 1000 && !closed; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    closed = final_in("rollups-on");
  }
  EXPECT_TRUE(closed) << "the quiet stream's last hour never closed";
  EXPECT_GE(MonotonicMicros() - read_at, 300'000) << "closed before the rest of the hour and the lateness had passed";
  std::this_thread::sleep_for(std::chrono::milliseconds(600));  // past the close, and an emission
  EXPECT_FALSE(final_in("rollups-off"));
  ASSERT_TRUE((*quiet)->Stop().ok());
  ASSERT_TRUE((*idle)->Stop().ok());
}

// A record without carried numbers (another Kafka producer's) is parsed here: a number of more
// than 19 digits is correctly rounded (Debian's simdjson 3.0.1 read 0.95000000000000000000 as
// 0.0277; reading/json_number.h).
TEST(RecordParserTest, LongNumbersAreCorrectlyRounded) {
  RecordParser parser;
  std::vector<NumberField> numbers;
  ASSERT_TRUE(parser.Numbers(R"({"timestamp":1705831564,"sensor_id":3,"temperature":0.95000000000000000000,"pressure":1013.25})",
                             &numbers));
  ASSERT_EQ(numbers.size(), 2u);
  EXPECT_EQ(numbers[0].name, "temperature");
  EXPECT_EQ(numbers[0].value, 0.95);
  EXPECT_EQ(numbers[1].value, 1013.25);
}

// log.dedup: copies of readings appended again (as two `mare ingest` processes on Kafka would)
// are not counted, also by a processor restarted from its checkpoint between the two copies.
TEST_F(RollupProcessorTest, CopiesInRawAreCountedOnceAcrossARestart) {
  metrics::Registry registry;
  auto log = OpenLog(&registry);
  ASSERT_TRUE(log);
  int64_t t = 1'705'831'200'000'000;
  auto readings = MakeReadings(19, 3000, &t, 6);
  RollupOptions o = Options();
  o.dedup = {.enabled = true, .horizon_us = 600'000'000};
  AppendReadings(log.get(), std::vector<RawReading>(readings.begin(), readings.begin() + 1500));
  {
    auto p = RollupProcessor::Start(o, log.get(), nullptr, &registry);
    ASSERT_TRUE(p.ok()) << p.status().ToString();
    WaitConsumed(p->get(), 1500);
    ASSERT_TRUE((*p)->Stop().ok());
  }
  // 100 copies (a few minutes old: within the lateness, so counted twice without the filter),
  // then the rest.
  AppendReadings(log.get(), std::vector<RawReading>(readings.begin() + 1400, readings.begin() + 1500));
  AppendReadings(log.get(), std::vector<RawReading>(readings.begin() + 1500, readings.end()));
  {
    auto p = RollupProcessor::Start(o, log.get(), nullptr, &registry);
    ASSERT_TRUE(p.ok()) << p.status().ToString();
    WaitConsumed(p->get(), 3100);
    ASSERT_TRUE((*p)->Stop().ok());
  }
  // The reference: the readings once, in a log of their own.
  ScratchDir ref_dir("mare-rollup-proc-ref");
  auto ref = log::OpenLogWithTopics({.dir = ref_dir.path(), .metrics = &registry}, {{.name = "raw", .partitions = kPartitions}});
  ASSERT_TRUE(ref.ok()) << ref.status().ToString();
  AppendReadings(ref->get(), readings);
  uint64_t late = 0;
  Table want = FromScratch(ref->get(), o, &late);
  ExpectSameTables(Upserted(log.get()), want);
  EXPECT_EQ(registry.GetCounter(rollup_metrics::kDuplicatesDropped).value(), 100u);
  EXPECT_EQ(registry.GetCounter(rollup_metrics::kReadingsCounted).value(), 3000 - late);
  // Without the filter the copies count: the test would see them.
  Table with_copies = FromScratch(log.get(), o);
  bool differs = with_copies.size() != want.size();
  for (const auto& [key, w] : want) {
    auto it = with_copies.find(key);
    differs |= it == with_copies.end() || it->second.value != w.value;
  }
  EXPECT_TRUE(differs);
}

}  // namespace
}  // namespace mare::rollup
