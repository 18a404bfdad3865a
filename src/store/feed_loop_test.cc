// The store's feed loop: it reads from what its target holds durably, commits that position,
// and after a failed step either reads on (the target finished what it held) or reads again
// from the durable position, so that each record ends up durable once.
#include "store/feed_loop.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <functional>
#include <chrono>
#include <mutex>
#include <string>
#include <thread>

#include "common/metrics.h"
#include "common/scratch_dir.h"
#include "log/embedded_log.h"

namespace mare::store {
namespace {

// Keeps the values it takes; they become durable every `flush_every` records or at Finish.
// Its next Persist fails (a full disk) while `fail` is set.
class Shelf : public FeedTarget {
 public:
  explicit Shelf(size_t flush_every) : flush_every_(flush_every) {}

  std::vector<int64_t> durable_offsets() const override {
    std::lock_guard lock(mu_);
    return durable_offsets_;
  }
  Status Apply(const std::vector<log::ConsumedRecord>& records) override {
    std::lock_guard lock(mu_);
    for (const auto& r : records) pending_.emplace_back(r.value);
    return Status::OK();
  }
  Result<bool> Persist(const std::vector<int64_t>& read) override {
    if (fail.exchange(false)) {
      std::lock_guard lock(mu_);
      if (lose_pending_on_failure) pending_.clear();  // as a journal whose write failed halfway
      return Status::IOError("no space left on device");
    }
    std::lock_guard lock(mu_);
    if (pending_.size() < flush_every_) return false;
    Keep(read);
    return true;
  }
  Status Finish(const std::vector<int64_t>& read) override {
    std::lock_guard lock(mu_);
    if (!pending_.empty()) Keep(read);
    return Status::OK();
  }
  void RefreshGauges() override { ++gauge_refreshes; }

  std::vector<std::string> durable() const {
    std::lock_guard lock(mu_);
    return durable_;
  }
  void set_durable_offsets(std::vector<int64_t> offsets) { durable_offsets_ = std::move(offsets); }

  std::atomic<bool> fail{false};
  bool lose_pending_on_failure = false;
  std::atomic<int> gauge_refreshes{0};

 private:
  void Keep(const std::vector<int64_t>& read) {
    durable_.insert(durable_.end(), pending_.begin(), pending_.end());
    pending_.clear();
    durable_offsets_ = read;
  }

  const size_t flush_every_;
  mutable std::mutex mu_;
  std::vector<std::string> pending_, durable_;
  std::vector<int64_t> durable_offsets_;
};

class FeedLoopTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto log = log::OpenEmbeddedLog({.dir = scratch_.path() + "/log", .metrics = &registry_});
    ASSERT_TRUE(log.ok()) << log.status().ToString();
    log_ = std::move(*log);
  }

  void Append(int32_t partition, const std::string& value) {
    log::Record r{.timestamp_us = 1, .key = "k", .value = value};
    ASSERT_TRUE(log_->Append("t", partition, std::span<const log::Record>(&r, 1)).ok());
  }

  static void WaitFor(const std::function<bool()>& done) {
    for (int i = 0; i < 1000 && !done(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    ASSERT_TRUE(done());
  }

  int64_t Committed(int32_t partition) {
    auto consumer = log_->Subscribe("g", "t");
    EXPECT_TRUE(consumer.ok());
    return (*consumer)->Committed(partition);
  }

  FeedLoopOptions Options() { return {.name = "test", .kept = "values", .topic = "t", .group = "g", .poll_records = 2}; }

  ScratchDir scratch_{"mare-feed-loop-test"};
  metrics::Registry registry_;
  std::unique_ptr<log::Log> log_;
  metrics::Gauge& lag_ = registry_.GetGauge("test_lag_records", "Records not yet read");
  metrics::Gauge& up_ = registry_.GetGauge("test_up", "1 while consuming");
  metrics::Counter& failures_ = registry_.GetCounter("test_steps_failed_total", "Failed steps");
};

TEST_F(FeedLoopTest, StartWithoutTheTopicFailsUnlessItWaits) {
  Shelf shelf(1);
  FeedLoop loop;
  Status s = loop.Start(&shelf, log_.get(), Options(), {.lag = &lag_});
  EXPECT_EQ(s.code(), Status::Code::kNotFound) << s.ToString();
  EXPECT_NE(s.message().find("test: the log has no topic t"), std::string::npos) << s.ToString();

  FeedLoopOptions waiting = Options();
  waiting.wait_for_topic = true;
  FeedLoop waits;
  ASSERT_TRUE(waits.Start(&shelf, log_.get(), waiting, {.lag = &lag_}).ok());
  ASSERT_TRUE(log_->CreateTopic({.name = "t", .partitions = 1}).ok());
  Append(0, "a");
  WaitFor([&] { return shelf.durable().size() == 1; });
  EXPECT_TRUE(waits.Stop().ok());
  EXPECT_EQ(shelf.durable(), std::vector<std::string>{"a"});
}

// It starts at the durable position, commits the group there after each flush, and Stop
// finishes what the target holds.
TEST_F(FeedLoopTest, ReadsFromTheDurablePositionAndCommitsIt) {
  ASSERT_TRUE(log_->CreateTopic({.name = "t", .partitions = 2}).ok());
  for (const char* v : {"a0", "b0", "c0"}) Append(0, v);
  Append(1, "a1");
  Shelf shelf(3);
  shelf.set_durable_offsets({1, 0});  // "a0" is already held
  FeedLoop loop;
  ASSERT_TRUE(loop.Start(&shelf, log_.get(), Options(), {.lag = &lag_, .up = &up_}).ok());
  WaitFor([&] { return Committed(0) == 3 && Committed(1) == 1; });
  EXPECT_EQ(shelf.durable().size(), 3u);
  EXPECT_EQ(loop.consumed(), 4);
  EXPECT_EQ(up_.value(), 1);
  Append(1, "b1");  // fewer than a flush: only Stop makes it durable
  WaitFor([&] { return loop.consumed() == 5; });
  WaitFor([&] { return lag_.value() == 0; });
  EXPECT_EQ(shelf.durable().size(), 3u);
  ASSERT_TRUE(loop.Stop().ok());
  std::vector<std::string> durable = shelf.durable();
  std::sort(durable.begin(), durable.end());
  EXPECT_EQ(durable, (std::vector<std::string>{"a1", "b0", "b1", "c0"}));
  EXPECT_EQ(shelf.durable_offsets(), (std::vector<int64_t>{3, 2}));
  EXPECT_EQ(Committed(1), 2);
  EXPECT_GT(shelf.gauge_refreshes.load(), 0);
  EXPECT_TRUE(loop.Stop().ok());  // idempotent
}

// A target that keeps what it read: after the failure it finishes it, and the loop reads on.
TEST_F(FeedLoopTest, AfterAFailureItReadsOnOnceTheTargetFinished) {
  ASSERT_TRUE(log_->CreateTopic({.name = "t", .partitions = 1}).ok());
  Shelf shelf(100);
  FeedLoop loop;
  ASSERT_TRUE(loop.Start(&shelf, log_.get(), Options(), {.lag = &lag_, .up = &up_, .failures = &failures_}).ok());
  Append(0, "a");
  WaitFor([&] { return loop.consumed() == 1; });
  shelf.fail = true;
  WaitFor([&] { return Committed(0) == 1; });  // Finish, and a commit, after the failure
  WaitFor([&] { return loop.healthy(); });
  EXPECT_EQ(failures_.value(), 1);
  EXPECT_EQ(shelf.durable(), std::vector<std::string>{"a"});
  Append(0, "b");
  WaitFor([&] { return loop.consumed() == 2; });
  ASSERT_TRUE(loop.Stop().ok());
  EXPECT_EQ(shelf.durable(), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(up_.value(), 1);
}

// A target that may have lost part of a batch: the loop reads again from its durable position.
TEST_F(FeedLoopTest, AfterAFailureItReadsAgainFromTheDurablePosition) {
  ASSERT_TRUE(log_->CreateTopic({.name = "t", .partitions = 1}).ok());
  Shelf shelf(2);
  shelf.lose_pending_on_failure = true;
  FeedLoopOptions options = Options();
  options.reread_after_failure = true;
  FeedLoop loop;
  ASSERT_TRUE(loop.Start(&shelf, log_.get(), options, {.lag = &lag_}).ok());
  Append(0, "a");
  Append(0, "b");
  WaitFor([&] { return shelf.durable().size() == 2; });
  Append(0, "c");
  WaitFor([&] { return loop.consumed() == 3; });
  shelf.fail = true;  // "c" is lost with the failed write
  WaitFor([&] { return !shelf.fail.load(); });
  Append(0, "d");
  WaitFor([&] { return shelf.durable().size() == 4; });
  ASSERT_TRUE(loop.Stop().ok());
  EXPECT_EQ(shelf.durable(), (std::vector<std::string>{"a", "b", "c", "d"}));
  EXPECT_EQ(Committed(0), 4);
}

}  // namespace
}  // namespace mare::store
