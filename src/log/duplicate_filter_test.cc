// DuplicateFilter: the rule (same key and timestamp, appended within the horizon before), checked
// against a plain scan of the records, and the rebuild at a position deciding as a consumer that
// read everything did.
#include "log/duplicate_filter.h"

#include <gtest/gtest.h>

#include <atomic>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "common/scratch_dir.h"
#include "log/forwarding_log.h"
#include "log/log_with_topics.h"

namespace mare::log {
namespace {

constexpr int64_t kHorizon = 600'000'000;  // 10m
constexpr int64_t kSecond = 1'000'000;

struct Rec {
  std::string key;
  int64_t ts;
  int64_t at;
};

ConsumedRecord View(const Rec& r, int64_t offset, int32_t partition = 0) {
  ConsumedRecord c;
  c.partition = partition;
  c.offset = offset;
  c.key = r.key;
  c.timestamp_us = r.ts;
  c.append_time_us = r.at;
  return c;
}

// The rule by a plain scan: an earlier record with the key and timestamp, appended within the horizon.
std::vector<bool> Reference(const std::vector<Rec>& recs, int64_t horizon) {
  std::vector<bool> out;
  for (size_t i = 0; i < recs.size(); ++i) {
    bool dup = false;
    for (size_t j = 0; j < i && !dup; ++j) {
      dup = recs[j].key == recs[i].key && recs[j].ts == recs[i].ts && recs[j].at >= recs[i].at - horizon;
    }
    out.push_back(dup);
  }
  return out;
}

TEST(DuplicateFilterTest, SecondCopyWithinHorizonIsDropped) {
  DuplicateFilter f({.enabled = true, .horizon_us = kHorizon});
  const int64_t t0 = 1'700'000'000'000'000;
  EXPECT_FALSE(f.Drop(View({"7", t0, t0}, 0)));
  EXPECT_FALSE(f.Drop(View({"8", t0, t0}, 1)));           // another sensor, same time
  EXPECT_FALSE(f.Drop(View({"7", t0 + 1, t0 + 1}, 2)));   // the same sensor, a microsecond later
  EXPECT_TRUE(f.Drop(View({"7", t0, t0 + 5 * kSecond}, 3)));  // the second copy
  EXPECT_TRUE(f.Drop(View({"007", t0, t0 + 6 * kSecond}, 4)));  // the same sensor id, written otherwise
  // Another partition is another log: its copies are judged there only.
  EXPECT_FALSE(f.Drop(View({"7", t0, t0 + 7 * kSecond}, 0, 1)));
  EXPECT_EQ(f.records(), 6u);
}

TEST(DuplicateFilterTest, LateReadingsAndCopiesPastTheHorizonAreTaken) {
  DuplicateFilter f({.enabled = true, .horizon_us = kHorizon});
  const int64_t t0 = 1'700'000'000'000'000;
  EXPECT_FALSE(f.Drop(View({"7", t0, t0}, 0)));
  EXPECT_FALSE(f.Drop(View({"7", t0 + 3600 * kSecond, t0 + kSecond}, 1)));
  // A reading an hour older than the sensor's newest, but new: taken (the rollups judge lateness).
  EXPECT_FALSE(f.Drop(View({"7", t0 - 3600 * kSecond, t0 + 2 * kSecond}, 2)));
  EXPECT_TRUE(f.Drop(View({"7", t0 - 3600 * kSecond, t0 + 3 * kSecond}, 3)));  // and its copy is not
  // The first reading resent once the horizon has passed since its first copy was appended.
  EXPECT_FALSE(f.Drop(View({"7", t0, t0 + kHorizon + 1}, 4)));
  // Exactly at the horizon: still a duplicate of the copy just before.
  EXPECT_TRUE(f.Drop(View({"7", t0, t0 + 2 * kHorizon + 1}, 5)));
  EXPECT_LE(f.records(), 3u);  // the first four went with the horizon
}

TEST(DuplicateFilterTest, OffDropsNothing) {
  DuplicateFilter f({.enabled = false, .horizon_us = kHorizon});
  EXPECT_FALSE(f.Drop(View({"7", 1, 1}, 0)));
  EXPECT_FALSE(f.Drop(View({"7", 1, 1}, 1)));
  EXPECT_EQ(f.records(), 0u);
}

TEST(DuplicateFilterTest, MatchesThePlainRuleOnRandomStreams) {
  // Many keys, copies near and far, non-decimal keys, several records per append time: the
  // table grows, shrinks and deletes across wrapped probe runs.
  std::mt19937_64 rng(19);
  for (int round = 0; round < 4; ++round) {
    const int64_t horizon = (round + 1) * 50 * kSecond;
    std::vector<Rec> recs;
    int64_t at = 1'700'000'000'000'000;
    for (int i = 0; i < 8000; ++i) {
      at += static_cast<int64_t>(rng() % 3) * kSecond / 4;  // often the same append time
      if (i == 4000) at += 10 * horizon;                   // a silence: everything goes
      std::string key = rng() % 10 == 0 ? "sensor-" + std::to_string(rng() % 50) : std::to_string(rng() % 200);
      int64_t ts = at - static_cast<int64_t>(rng() % 40) * kSecond;
      if (!recs.empty() && rng() % 4 == 0) {  // a copy of an earlier record, near or far back
        const Rec& old = recs[recs.size() - 1 - rng() % std::min<size_t>(recs.size(), 1000)];
        key = old.key;
        ts = old.ts;
      }
      recs.push_back({key, ts, at});
    }
    std::vector<bool> expected = Reference(recs, horizon);
    DuplicateFilter f({.enabled = true, .horizon_us = horizon});
    size_t dropped = 0;
    for (size_t i = 0; i < recs.size(); ++i) {
      bool d = f.Drop(View(recs[i], static_cast<int64_t>(i)));
      ASSERT_EQ(d, expected[i]) << "round " << round << " record " << i;
      dropped += d;
    }
    EXPECT_GT(dropped, 300u);
    EXPECT_LT(dropped, recs.size() / 2);
  }
}

std::atomic<int64_t> filter_now{1'700'000'000'000'000};
int64_t FilterNow() { return filter_now.load(); }

// The embedded log, whose consumers answer OffsetsForTimes as Kafka's brokers do (from an index
// by append time, here the records the test appended), so that the rebuild takes the path it
// takes on Kafka: one request for every partition instead of a bisection.
class IndexedByTime final : public ForwardingLog {
 public:
  IndexedByTime(Log* real, const std::vector<ConsumedRecord>* records) : ForwardingLog(real), records_(records) {}
  int requests = 0;

  Result<std::unique_ptr<Consumer>> Subscribe(const std::string& g, const std::string& t) override {
    auto c = ForwardingLog::Subscribe(g, t);
    if (!c.ok()) return c.status();
    return std::unique_ptr<Consumer>(std::make_unique<Indexed>(std::move(*c), this));
  }

 private:
  class Indexed final : public Consumer {
   public:
    Indexed(std::unique_ptr<Consumer> real, IndexedByTime* log) : real_(std::move(real)), log_(log) {}
    int64_t Position(int32_t p) const override { return real_->Position(p); }
    Status Seek(int32_t p, int64_t offset) override { return real_->Seek(p, offset); }
    Status Poll(std::vector<ConsumedRecord>* out, size_t max, std::chrono::milliseconds timeout) override {
      return real_->Poll(out, max, timeout);
    }
    Status Commit(int32_t p, int64_t next) override { return real_->Commit(p, next); }
    int64_t Committed(int32_t p) const override { return real_->Committed(p); }
    int64_t EndOffset(int32_t p) const override { return real_->EndOffset(p); }
    Result<std::optional<std::vector<int64_t>>> OffsetsForTimes(
        const std::vector<std::pair<int32_t, int64_t>>& times) override {
      ++log_->requests;
      std::vector<int64_t> out;
      for (const auto& [p, t] : times) {
        int64_t first = -1, end = 0;
        for (const ConsumedRecord& r : *log_->records_) {
          if (r.partition != p) continue;
          end = r.offset + 1;
          if (first < 0 && r.append_time_us >= t) first = r.offset;
        }
        out.push_back(first >= 0 ? first : end);
      }
      return std::optional(std::move(out));
    }

   private:
    std::unique_ptr<Consumer> real_;
    IndexedByTime* log_;
  };
  const std::vector<ConsumedRecord>* records_;
};

TEST(DuplicateFilterTest, RebuildAtAnyPositionsDecidesAsReadingEverything) {
  ScratchDir dir("mare-dedup-filter-test");
  auto log = OpenLogWithTopics({.dir = dir.path(), .now_us = &FilterNow}, {{.name = "raw", .partitions = 3}});
  ASSERT_TRUE(log.ok()) << log.status().ToString();
  // 600 batches, one per 5 s (50 minutes, five horizons), of 4 readings of sensors 0..9, one in
  // three a copy of a reading sent up to 15 minutes earlier: some within the horizon, some past
  // it. Into partitions 1 and 2 by turns (2 gets one batch in three), partition 0 left empty.
  std::mt19937_64 rng(7);
  std::vector<Rec> sent;
  for (int b = 0; b < 600; ++b) {
    filter_now += 5 * kSecond;
    std::vector<std::string> keys;
    std::vector<Record> batch;
    for (int i = 0; i < 4; ++i) {
      Rec r{std::to_string(rng() % 10), filter_now.load() - static_cast<int64_t>(rng() % 5) * kSecond, 0};
      if (!sent.empty() && rng() % 3 == 0) r = sent[sent.size() - 1 - rng() % std::min<size_t>(sent.size(), 720)];
      sent.push_back(r);
      keys.push_back(r.key);
    }
    for (size_t i = 0; i < keys.size(); ++i) batch.push_back({.timestamp_us = sent[sent.size() - 4 + i].ts, .key = keys[i], .value = "{}"});
    ASSERT_TRUE((*log)->Append("raw", b % 3 == 2 ? 2 : 1, batch).ok());
  }
  // Everything, once, from the start.
  std::vector<ConsumedRecord> all;
  std::vector<std::string> keys;  // the views end with the consumer's next poll
  std::vector<bool> whole;
  {
    auto c = (*log)->Subscribe("test", "raw");
    ASSERT_TRUE(c.ok());
    DuplicateFilter f({.enabled = true, .horizon_us = kHorizon});
    std::vector<ConsumedRecord> batch;
    while (whole.size() < sent.size()) {
      ASSERT_TRUE((*c)->Poll(&batch, 1000, std::chrono::milliseconds(100)).ok());
      ASSERT_FALSE(batch.empty());
      for (const ConsumedRecord& r : batch) {
        ASSERT_NE(r.partition, 0);
        whole.push_back(f.Drop(r));
        keys.emplace_back(r.key);
        all.push_back(r);
      }
    }
    for (size_t i = 0; i < all.size(); ++i) all[i].key = keys[i];
  }
  size_t dropped = 0;
  for (bool d : whole) dropped += d;
  EXPECT_GT(dropped, 200u);
  EXPECT_LT(dropped, 800u);  // copies sent past the horizon are taken
  // A consumer that starts partitions 1 and 2 at N1 and N2 after one rebuild of both (and of the
  // empty 0) judges N1.. and N2.. as the one that read from 0: by bisection, and by the index.
  IndexedByTime indexed(log->get(), &all);
  const std::vector<std::pair<int64_t, int64_t>> at = {{0, 0},       {1, 0},      {150, 37},   {1001, 800},
                                                       {1600, 1},    {1599, 800}, {800, 799},  {1600, 800}};
  for (Log* l : {static_cast<Log*>(log->get()), static_cast<Log*>(&indexed)}) {
    const bool by_index = l == &indexed;
    for (const auto& [n1, n2] : at) {
      DuplicateFilter f({.enabled = true, .horizon_us = kHorizon});
      f.Drop(View({"3", 1, 1}, 0, 1));  // forgotten by the rebuild
      const int requests = indexed.requests;
      ASSERT_TRUE(f.Rebuild(l, "raw", {{0, 0}, {1, n1}, {2, n2}}).ok());
      if (by_index) {
        EXPECT_EQ(indexed.requests, requests + (n1 > 0 || n2 > 0 ? 1 : 0)) << "one request for both partitions";
      }
      if (n1 > 0 && n2 > 0) {
        EXPECT_LE(f.records(), 4u * (121u + 41u)) << "only the horizon is read back, at " << n1 << "," << n2;
      }
      for (size_t i = 0; i < all.size(); ++i) {
        if (all[i].offset < (all[i].partition == 1 ? n1 : n2)) continue;
        ASSERT_EQ(f.Drop(all[i]), whole[i]) << (by_index ? "by index, " : "") << "rebuilt at " << n1 << "," << n2
                                            << ", record " << i << " (partition " << all[i].partition << ")";
      }
    }
  }
}

}  // namespace
}  // namespace mare::log
