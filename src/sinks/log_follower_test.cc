// LogFollower with the duplicate filter on (log.dedup): a second copy of a reading in raw is read
// (its position saved) but not handed to the destination, also by a follower that resumes between
// the two copies. And with several batches in flight (Slots()): a later batch acknowledged first
// does not move the saved position past the earlier one.
#include "sinks/log_follower.h"

#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <set>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/scratch_dir.h"
#include "log/log_with_topics.h"

namespace mare::sinks {
namespace {

constexpr metrics::Metric kRead{"mare_sink_test_records_read_total", ""};
constexpr metrics::Metric kErrors{"mare_sink_test_errors_total", ""};
constexpr metrics::Metric kLag{"mare_sink_test_lag_records", ""};
constexpr metrics::Metric kSeconds{"mare_sink_test_batch_seconds", ""};
constexpr metrics::Metric kDuplicates{"mare_sink_test_duplicates_dropped_total", ""};
constexpr metrics::Metric kPartitions{"mare_sink_test_assigned_partitions", ""};
constexpr metrics::Metric kRebalances{"mare_sink_test_rebalances_total", ""};

struct Shared {
  std::mutex mu;
  std::vector<std::string> written;  // "key@ts"
  int64_t saved = -1;                // partition 0's saved next offset
};

class Collect : public Destination {
 public:
  Collect(Shared* shared, int64_t start) : shared_(shared), start_(start) {}
  Status Prepare(int32_t partitions, std::map<int32_t, int64_t>* next) override {
    for (int32_t p = 0; p < partitions; ++p) (*next)[p] = p == 0 ? start_ : 0;
    return Status::OK();
  }
  void Add(const std::vector<log::ConsumedRecord>& records) override {
    for (const auto& r : records) pending_.push_back(std::string(r.key) + "@" + std::to_string(r.timestamp_us));
  }
  void Forget(int) override { pending_.clear(); }
  Status Flush(int) override {
    std::lock_guard lock(shared_->mu);
    shared_->written.insert(shared_->written.end(), pending_.begin(), pending_.end());
    pending_.clear();
    return Status::OK();
  }
  Status SavePositions(const std::map<int32_t, int64_t>& next) override {
    std::lock_guard lock(shared_->mu);
    if (auto it = next.find(0); it != next.end()) shared_->saved = it->second;
    return Status::OK();
  }

 private:
  Shared* shared_;
  int64_t start_;
  std::vector<std::string> pending_;
};

std::vector<std::string> Follow(log::Log* log, int64_t start, int64_t end, metrics::Registry* registry) {
  Shared shared;
  LogFollower f({.name = "test sink", .topic = "raw", .consumer = "test", .dedup = {.enabled = true, .horizon_us = 600'000'000}},
                std::make_unique<Collect>(&shared, start), log, {kRead, kErrors, kLag, kSeconds, kDuplicates, kPartitions, kRebalances}, registry);
  EXPECT_TRUE(f.Start().ok());
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  for (;;) {
    {
      std::lock_guard lock(shared.mu);
      if (shared.saved == end || std::chrono::steady_clock::now() > deadline) break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  f.Stop();
  EXPECT_EQ(shared.saved, end) << "positions move past the duplicates too";
  return shared.written;
}

TEST(LogFollowerTest, DuplicatesAreReadButNotWritten) {
  ScratchDir dir("mare-follower-test");
  metrics::Registry registry;
  auto log = log::OpenLogWithTopics({.dir = dir.path(), .metrics = &registry}, {{.name = "raw", .partitions = 1}});
  ASSERT_TRUE(log.ok()) << log.status().ToString();
  // Offsets 0..5: 7@1, 8@1, 7@2, 7@1 (a copy), 8@1 (a copy), 9@1.
  std::vector<std::pair<std::string, int64_t>> sent = {{"7", 1}, {"8", 1}, {"7", 2}, {"7", 1}, {"8", 1}, {"9", 1}};
  for (const auto& [key, ts] : sent) {
    log::Record r{.timestamp_us = ts, .key = key, .value = "{}"};
    ASSERT_TRUE((*log)->Append("raw", 0, std::span(&r, 1)).ok());
  }
  EXPECT_EQ(Follow(log->get(), 0, 6, &registry), (std::vector<std::string>{"7@1", "8@1", "7@2", "9@1"}));
  EXPECT_EQ(registry.GetCounter(kDuplicates, {{"topic", "raw"}}).value(), 2u);
  // Resuming at offset 3, between the copies: the filter is rebuilt from what precedes.
  EXPECT_EQ(Follow(log->get(), 3, 6, &registry), (std::vector<std::string>{"9@1"}));
  EXPECT_EQ(registry.GetCounter(kDuplicates, {{"topic", "raw"}}).value(), 4u);
}

// Two slots; the first batch's Flush waits until a later batch was flushed, so the later one is
// acknowledged first. Every saved position must only cover flushed records.
class OutOfOrder : public Destination {
 public:
  Status Prepare(int32_t partitions, std::map<int32_t, int64_t>* next) override {
    for (int32_t p = 0; p < partitions; ++p) (*next)[p] = 0;
    return Status::OK();
  }
  void Add(const std::vector<log::ConsumedRecord>& records) override {
    for (const auto& r : records) pending_.push_back(r.offset);
  }
  bool Pipelined() const override { return true; }
  int Slots() const override { return 2; }
  void Seal(int slot) override {
    std::lock_guard lock(mu);
    sealed_[slot] = {sealed_count_++, std::move(pending_)};
    pending_.clear();
  }
  void Forget(int slot) override {
    std::lock_guard lock(mu);
    sealed_[slot].second.clear();
  }
  Status Flush(int slot) override {
    std::unique_lock lock(mu);
    auto& [batch, offsets] = sealed_[slot];
    if (batch == 0) {
      // Held back until a later batch is done (10 s at most, then the test fails on `overtaken`).
      cv.wait_for(lock, std::chrono::seconds(10), [&] { return later_flushed_; });
      overtaken = later_flushed_;
    } else {
      later_flushed_ = true;
      cv.notify_all();
    }
    flushed.insert(offsets.begin(), offsets.end());
    offsets.clear();
    return Status::OK();
  }
  Status SavePositions(const std::map<int32_t, int64_t>& next) override {
    std::lock_guard lock(mu);
    int64_t n = next.at(0);
    for (int64_t o = 0; o < n; ++o) {
      if (!flushed.count(o)) past_unacknowledged = true;
    }
    if (n < saved) went_back = true;
    saved = n;
    return Status::OK();
  }

  std::mutex mu;
  std::condition_variable cv;
  std::set<int64_t> flushed;
  int64_t saved = 0;
  bool overtaken = false, past_unacknowledged = false, went_back = false;

 private:
  std::vector<int64_t> pending_;  // the reader's
  std::pair<int, std::vector<int64_t>> sealed_[2];
  int sealed_count_ = 0;
  bool later_flushed_ = false;
};

TEST(LogFollowerTest, ALaterBatchAcknowledgedFirstDoesNotMoveThePosition) {
  ScratchDir dir("mare-follower-test");
  metrics::Registry registry;
  auto log = log::OpenLogWithTopics({.dir = dir.path(), .metrics = &registry}, {{.name = "raw", .partitions = 1}});
  ASSERT_TRUE(log.ok()) << log.status().ToString();
  constexpr int64_t kRecords = 30;
  for (int64_t i = 0; i < kRecords; ++i) {
    log::Record r{.timestamp_us = i, .key = "7", .value = "{}"};
    ASSERT_TRUE((*log)->Append("raw", 0, std::span(&r, 1)).ok());
  }
  auto owned = std::make_unique<OutOfOrder>();
  OutOfOrder* d = owned.get();
  LogFollower f({.name = "test sink", .topic = "raw", .consumer = "test", .batch = 5}, std::move(owned), log->get(),
                {kRead, kErrors, kLag, kSeconds, kDuplicates, kPartitions, kRebalances}, &registry);
  ASSERT_TRUE(f.Start().ok());
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  for (;;) {
    {
      std::lock_guard lock(d->mu);
      if (d->saved == kRecords || std::chrono::steady_clock::now() > deadline) break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  f.Stop();
  std::lock_guard lock(d->mu);
  EXPECT_EQ(d->saved, kRecords);
  EXPECT_TRUE(d->overtaken) << "a later batch was acknowledged before the first";
  EXPECT_FALSE(d->past_unacknowledged) << "a saved position passed a record not yet acknowledged";
  EXPECT_FALSE(d->went_back);
  EXPECT_EQ(d->flushed.size(), static_cast<size_t>(kRecords));
}

}  // namespace
}  // namespace mare::sinks
