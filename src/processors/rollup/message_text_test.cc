// The text of the rollups topic's messages: whole messages byte for byte as before they were
// written at a pointer (the numbers in them: common/json_writer_test.cc).
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <simdjson.h>

#include <algorithm>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "common/time.h"
#include "processors/rollup/rollup_state.h"
#include "reading/timestamp.h"

namespace mare::rollup {
namespace {

// The rollups topic's text as the processor wrote it before messages were written at a
// pointer (docs/formats/rollups.md): a reference to compare the emitted bytes with, given the
// numbers the message holds.
std::string ReferenceValue(std::string_view value) {
  simdjson::dom::parser parser;
  simdjson::dom::element e = parser.parse(std::string(value));
  auto number = [](double d) { return fmt::format("{}", d); };
  std::string s = "{\"sensor_id\":" + std::to_string(e["sensor_id"].get_uint64().value());
  s += ",\"field\":\"" + std::string(e["field"].get_string().value()) + "\"";
  s += ",\"resolution\":\"" + std::string(e["resolution"].get_string().value()) + "\"";
  s += ",\"window_start\":\"" + std::string(e["window_start"].get_string().value()) + "\"";
  s += ",\"window_end\":\"" + std::string(e["window_end"].get_string().value()) + "\"";
  s += ",\"count\":" + std::to_string(e["count"].get_int64().value());
  for (const char* k : {"min", "max", "mean", "stddev", "first", "last"}) {
    s += ",\"" + std::string(k) + "\":" + number(e[k].get_double().value());
  }
  s += ",\"revision\":" + std::to_string(e["revision"].get_int64().value());
  s += e["final"].get_bool().value() ? ",\"final\":true}" : ",\"final\":false}";
  return s;
}

// FNV-1a, 64 bits: a fingerprint of every byte emitted.
void Fingerprint(uint64_t* h, std::string_view s) {
  for (unsigned char c : s) *h = (*h ^ c) * 0x100000001b3ULL;
  *h = (*h ^ 0xff) * 0x100000001b3ULL;  // a separator: "ab","c" differs from "a","bc"
}

// Readings whose values take every shape above, for 40 sensors over 3 hours: two decimals
// (most), long expansions, negatives, zeros, huge and tiny magnitudes; emitted now and then.
// Returns every message emitted, in order. Only rng() bits are used, so the stream is the same
// on every platform.
std::vector<RollupMessage> EmitShapes() {
  std::mt19937_64 rng(17);
  RollupState state({.partitions = 3, .partitioner = log::Partitioner::kModulo});  // placed sensor % 3 below
  const char* names[] = {"temperature", "pressure", "wave_height", "water_temperature", "x"};
  int64_t t = *CivilToMicros(2024, 2, 28, 22, 30, 0);
  std::vector<int64_t> offsets(3, 0);
  std::vector<RollupMessage> out;
  for (int i = 0; i < 60'000; ++i) {
    auto sensor = static_cast<uint32_t>(rng() % 40);
    t += static_cast<int64_t>(rng() % 400'000);
    std::vector<NumberField> numbers;
    for (int f = 0; f < 5; ++f) {
      if (rng() % 5 == 0) continue;
      double v;
      switch (f) {
        case 0: v = static_cast<double>(rng() % 4001) / 100 - 20; break;          // 2 decimals, negatives
        case 1: v = 1013.25 + static_cast<double>(rng() % 1001) / 100; break;   // 2 decimals, large
        case 2: v = static_cast<double>(rng() % 3); break;                         // whole numbers, zeros
        case 3: v = static_cast<double>(rng() % 1'000'000) / 7; break;             // long expansions
        default: v = (rng() % 2 ? 1e-7 : 3e17) * static_cast<double>(rng() % 1000 + 1); break;  // tiny and huge
      }
      numbers.push_back({names[f], v});
    }
    auto p = static_cast<int32_t>(sensor % 3);
    int64_t ts = t - static_cast<int64_t>(rng() % 60'000'000);
    state.Add(p, offsets[static_cast<size_t>(p)]++, ts, sensor, numbers);
    if (rng() % 3000 == 0) {
      state.AdvanceWatermark();
      state.Emit(&out);
    }
  }
  state.AdvanceWatermark();
  state.Emit(&out);
  return out;
}

TEST(MessageTextTest, MessagesAreWrittenByteForByteAsBefore) {
  std::vector<RollupMessage> messages = EmitShapes();
  ASSERT_GT(messages.size(), 50'000u);
  // Each as the reference writes it, from the numbers it holds.
  for (const auto& m : messages) {
    ASSERT_EQ(ReferenceValue(m.value), m.value);
  }
  // The very bytes, in an order that does not depend on the sensors' hash table, against those
  // the processor emitted for this stream before (commit 66e5d18).
  std::vector<const RollupMessage*> sorted;
  for (const auto& m : messages) sorted.push_back(&m);
  std::stable_sort(sorted.begin(), sorted.end(), [](const RollupMessage* a, const RollupMessage* b) {
    return std::tie(a->key, a->value) < std::tie(b->key, b->value);
  });
  uint64_t h = 0xcbf29ce484222325ULL;
  for (const RollupMessage* m : sorted) {
    Fingerprint(&h, std::to_string(m->partition) + " " + std::to_string(m->timestamp_us));
    Fingerprint(&h, m->key);
    Fingerprint(&h, m->value);
  }
  EXPECT_EQ(fmt::format("{:016x} {}", h, messages.size()), "4c5d38d3b15c659f 77175");
}

// RollupMessages kept from one emission to the next (as the processor keeps them) hold the
// same messages as fresh vectors, through a burst (after which Clear frees blocks) and the
// small emissions that follow; and so do those flushed in parts during an emission.
TEST(MessageTextTest, ReusedAndFlushedMessagesAreTheSameAsFreshOnes) {
  RollupState a({.partitions = 2}), b({.partitions = 2}), c({.partitions = 2});
  RollupMessages reused, flushing;
  std::vector<RollupMessage> flushed;  // of one emission
  size_t flushes = 0;
  auto take = [&](RollupMessages& m) {
    for (size_t i = 0; i < m.size(); ++i) {
      flushed.push_back({m.partition(i), m.timestamp_us(i), std::string(m.key(i)), std::string(m.value(i))});
    }
  };
  flushing.set_flush(2 << 20, [&](RollupMessages& m) {
    ++flushes;
    take(m);
  });
  int64_t t = *CivilToMicros(2024, 1, 1, 0, 0, 0);
  int64_t offsets[2] = {0, 0};
  size_t emitted = 0;
  auto feed = [&](int i) {
    auto sensor = static_cast<uint32_t>(i % 1000);
    std::vector<NumberField> numbers = {{"a", static_cast<double>(i % 100) / 10}, {"b", i * 0.37}};
    int32_t p = static_cast<int32_t>(sensor % 2);
    int64_t offset = offsets[p]++;
    a.Add(p, offset, t + i * 10'000LL, sensor, numbers);
    b.Add(p, offset, t + i * 10'000LL, sensor, numbers);
    c.Add(p, offset, t + i * 10'000LL, sensor, numbers);
  };
  auto emit = [&] {
    a.AdvanceWatermark();
    b.AdvanceWatermark();
    c.AdvanceWatermark();
    std::vector<RollupMessage> fresh;
    reused.Clear();
    flushing.Clear();
    flushed.clear();
    ASSERT_EQ(a.Emit(&fresh), b.Emit(&reused));
    ASSERT_EQ(c.Emit(&flushing), fresh.size());
    take(flushing);  // what was not flushed
    ASSERT_EQ(fresh.size(), reused.size());
    ASSERT_EQ(fresh.size(), flushed.size());
    for (size_t i = 0; i < fresh.size(); ++i) {
      ASSERT_EQ(fresh[i].partition, reused.partition(i));
      ASSERT_EQ(fresh[i].timestamp_us, reused.timestamp_us(i));
      ASSERT_EQ(fresh[i].key, reused.key(i));
      ASSERT_EQ(fresh[i].value, reused.value(i));
      ASSERT_EQ(fresh[i].partition, flushed[i].partition);
      ASSERT_EQ(fresh[i].timestamp_us, flushed[i].timestamp_us);
      ASSERT_EQ(fresh[i].key, flushed[i].key);
      ASSERT_EQ(fresh[i].value, flushed[i].value);
    }
    emitted += fresh.size();
  };
  int i = 0;
  for (; i < 300'000; ++i) feed(i);  // 50 minutes of 1000 sensors at once
  emit();
  EXPECT_GT(emitted, 100'000u);
  EXPECT_GE(flushes, 10u);  // over 30 MB in parts of 2 MB
  for (int round = 0; round < 20; ++round) {
    for (int k = 0; k < 2000; ++k) feed(i++);
    emit();
    if (::testing::Test::HasFatalFailure()) return;
  }
}

}  // namespace
}  // namespace mare::rollup
