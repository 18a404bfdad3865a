// LogFollower in a consumer group, its partitions given and taken away while batches are in
// flight: the log is the embedded one behind a member whose assignment the test moves, as Kafka's
// rebalances would, so that what is tested is the follower's own bookkeeping of a partial
// assignment (tests/e2e/test_sink_group.py does the same against a real Kafka and ClickHouse).
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "common/scratch_dir.h"
#include "log/forwarding_log.h"
#include "log/log_with_topics.h"
#include "sinks/log_follower.h"

namespace mare::sinks {
// Named, not anonymous: the unity build puts this file beside log_follower_test.cc.
namespace follower_group_test {

constexpr metrics::Metric kRead{"mare_sink_test_records_read_total", ""};
constexpr metrics::Metric kErrors{"mare_sink_test_errors_total", ""};
constexpr metrics::Metric kLag{"mare_sink_test_lag_records", ""};
constexpr metrics::Metric kSeconds{"mare_sink_test_batch_seconds", ""};
constexpr metrics::Metric kDuplicates{"mare_sink_test_duplicates_dropped_total", ""};
constexpr metrics::Metric kPartitions{"mare_sink_test_assigned_partitions", ""};
constexpr metrics::Metric kRebalances{"mare_sink_test_rebalances_total", ""};
constexpr int32_t kTopicPartitions = 4;

// What the test, the member and the destination share.
struct World {
  std::mutex mu;
  std::vector<int32_t> wanted;  // the assignment the test asks for
  uint64_t version = 0;         // bumped with each new `wanted`
  std::set<int32_t> owned;      // the member's, between its handlers
  std::map<int32_t, int64_t> returned;  // per partition, after the last record Poll gave out
  std::map<int32_t, int64_t> saved;     // the destination's positions
  std::map<std::pair<int32_t, int64_t>, int> written;  // (partition, offset) -> times flushed
  std::vector<std::string> faults;
  int prepares = 0;
};

// A member whose assignment moves when the test says, inside Poll as librdkafka's would.
class MovedMember : public log::GroupMember {
 public:
  MovedMember(std::unique_ptr<log::Consumer> consumer, Handlers handlers, World* world)
      : consumer_(std::move(consumer)), handlers_(std::move(handlers)), world_(world) {}

  Status Poll(std::vector<log::ConsumedRecord>* out, size_t max_records, std::chrono::milliseconds timeout) override {
    out->clear();
    std::vector<int32_t> wanted;
    bool moved = false;
    {
      std::lock_guard lock(world_->mu);
      if (world_->version != seen_) {
        seen_ = world_->version;
        wanted = world_->wanted;
        moved = true;
      }
    }
    if (moved) {
      if (!mine_.empty()) {
        handlers_.revoked(mine_);
        std::lock_guard lock(world_->mu);
        // Everything given out of a partition taken away is written and its position saved.
        for (int32_t p : mine_) {
          int64_t returned = world_->returned.count(p) ? world_->returned[p] : 0;
          int64_t saved = world_->saved.count(p) ? world_->saved[p] : 0;
          if (returned != saved) {
            world_->faults.push_back("partition " + std::to_string(p) + " revoked with " + std::to_string(returned) +
                                     " read and " + std::to_string(saved) + " saved");
          }
        }
        world_->owned.clear();
      }
      mine_.clear();
      auto from = handlers_.assigned(wanted, std::vector<int64_t>(wanted.size(), -1));
      if (!from.ok()) return from.status();
      for (size_t i = 0; i < wanted.size(); ++i) MARE_RETURN_IF_ERROR(consumer_->Seek(wanted[i], (*from)[i]));
      mine_ = wanted;
      std::lock_guard lock(world_->mu);
      world_->owned = std::set<int32_t>(mine_.begin(), mine_.end());
      for (size_t i = 0; i < wanted.size(); ++i) world_->returned[wanted[i]] = (*from)[i];
    }
    MARE_RETURN_IF_ERROR(consumer_->Poll(&polled_, max_records, timeout));
    std::lock_guard lock(world_->mu);
    for (const log::ConsumedRecord& r : polled_) {
      if (std::find(mine_.begin(), mine_.end(), r.partition) == mine_.end()) continue;  // another member's
      out->push_back(r);
      world_->returned[r.partition] = r.offset + 1;
    }
    return Status::OK();
  }
  std::vector<int32_t> Assignment() const override { return mine_; }
  int64_t Position(int32_t p) const override { return consumer_->Position(p); }
  int64_t EndOffset(int32_t p) const override { return consumer_->EndOffset(p); }
  Status Produce(std::string_view, int32_t, std::span<const log::Record>) override {
    return Status::InvalidArgument("a sink's member produces nothing");
  }
  Status CommitTransaction(const std::vector<std::pair<int32_t, int64_t>>&) override { return Status::OK(); }
  Status ReadLatest(std::string_view, const std::vector<int32_t>&,
                    std::map<std::pair<int32_t, std::string>, std::string>*) override {
    return Status::InvalidArgument("not here");
  }
  bool fenced() const override { return false; }

 private:
  std::unique_ptr<log::Consumer> consumer_;
  Handlers handlers_;
  World* world_;
  uint64_t seen_ = 0;
  std::vector<int32_t> mine_;
  std::vector<log::ConsumedRecord> polled_;
};

class GroupLog : public log::ForwardingLog {
 public:
  GroupLog(log::Log* real, World* world) : ForwardingLog(real), world_(world) {}
  bool HasGroups() const override { return true; }
  Result<std::unique_ptr<log::GroupMember>> JoinGroup(const log::GroupOptions& o) override {
    EXPECT_FALSE(o.transactional);
    EXPECT_EQ(o.group, SinkGroupName("test", "raw", "http://ch:8123/db"));
    auto consumer = Subscribe(o.group, o.topic);
    if (!consumer.ok()) return consumer.status();
    return std::unique_ptr<log::GroupMember>(new MovedMember(std::move(*consumer), o.handlers, world_));
  }

 private:
  World* world_;
};

// Two slots, each flush a little slow, so that batches are in flight when partitions move.
class SavingDestination : public Destination {
 public:
  explicit SavingDestination(World* world) : world_(world) {}
  Status Prepare(int32_t partitions, std::map<int32_t, int64_t>* next) override {
    std::lock_guard lock(world_->mu);
    ++world_->prepares;
    for (int32_t p = 0; p < partitions; ++p) (*next)[p] = world_->saved.count(p) ? world_->saved[p] : 0;
    return Status::OK();
  }
  void Add(const std::vector<log::ConsumedRecord>& records) override {
    for (const auto& r : records) pending_.emplace_back(r.partition, r.offset);
  }
  bool Pipelined() const override { return true; }
  int Slots() const override { return 2; }
  void Seal(int slot) override {
    sealed_[slot] = std::move(pending_);
    pending_.clear();
  }
  Status Flush(int slot) override {
    std::this_thread::sleep_for(std::chrono::milliseconds(3));
    std::lock_guard lock(world_->mu);
    for (const auto& key : sealed_[slot]) ++world_->written[key];
    sealed_[slot].clear();
    return Status::OK();
  }
  Status SavePositions(const std::map<int32_t, int64_t>& next) override {
    std::lock_guard lock(world_->mu);
    for (const auto& [p, n] : next) {
      if (!world_->owned.count(p)) world_->faults.push_back("position of partition " + std::to_string(p) + " saved by a non-owner");
      if (n > 0 && !world_->written.count({p, n - 1})) {
        world_->faults.push_back("partition " + std::to_string(p) + " saved at " + std::to_string(n) + " before it was written");
      }
      world_->saved[p] = n;
    }
    return Status::OK();
  }

 private:
  World* world_;
  std::vector<std::pair<int32_t, int64_t>> pending_;  // the reader's
  std::vector<std::pair<int32_t, int64_t>> sealed_[2];
};

void Append(log::Log* log, int per_partition) {
  for (int32_t p = 0; p < kTopicPartitions; ++p) {
    for (int i = 0; i < per_partition; ++i) {
      log::Record r{.timestamp_us = i, .key = "7", .value = "{}"};
      ASSERT_TRUE(log->Append("raw", p, std::span(&r, 1)).ok());
    }
  }
}

bool WaitFor(World* world, const std::function<bool()>& done) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (std::chrono::steady_clock::now() < deadline) {
    {
      std::lock_guard lock(world->mu);
      if (done()) return true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return false;
}

void Assign(World* world, std::vector<int32_t> partitions) {
  std::lock_guard lock(world->mu);
  world->wanted = std::move(partitions);
  ++world->version;
}

TEST(LogFollowerGroupTest, WritesAndSavesOnlyItsPartitionsAndFinishesThoseTakenAway) {
  ScratchDir dir("mare-follower-group-test");
  metrics::Registry registry;
  auto real = log::OpenLogWithTopics({.dir = dir.path(), .metrics = &registry}, {{.name = "raw", .partitions = kTopicPartitions}});
  ASSERT_TRUE(real.ok()) << real.status().ToString();
  World world;
  GroupLog log(real->get(), &world);
  Append(&log, 50);
  Assign(&world, {0, 1});
  LogFollower f({.name = "test sink", .topic = "raw", .consumer = "test", .destination = "http://ch:8123/db", .batch = 7}, std::make_unique<SavingDestination>(&world), &log,
                {kRead, kErrors, kLag, kSeconds, kDuplicates, kPartitions, kRebalances}, &registry);
  ASSERT_TRUE(f.Start().ok());
  auto& owned = registry.GetGauge(kPartitions, {{"topic", "raw"}});
  auto& rebalances = registry.GetCounter(kRebalances, {{"topic", "raw"}});

  // Its half: the others' partitions neither written nor saved.
  ASSERT_TRUE(WaitFor(&world, [&] { return world.saved[0] == 50 && world.saved[1] == 50; }));
  {
    std::lock_guard lock(world.mu);
    EXPECT_EQ(world.saved.count(2) + world.saved.count(3), 0u);
    EXPECT_EQ(world.written.size(), 100u);
    for (const auto& [key, times] : world.written) EXPECT_LT(key.first, 2);
  }
  EXPECT_EQ(owned.value(), 2.0);
  EXPECT_EQ(rebalances.value(), 1u);

  // More records, and at once the other half instead: what it read of 0 and 1 is finished first.
  Append(&log, 50);
  Assign(&world, {2, 3});
  ASSERT_TRUE(WaitFor(&world, [&] { return world.saved[2] == 100 && world.saved[3] == 100; }));
  EXPECT_EQ(owned.value(), 2.0);
  EXPECT_EQ(rebalances.value(), 2u);

  // Everything: 0 and 1 go on from the positions saved at the revocation.
  Assign(&world, {0, 1, 2, 3});
  ASSERT_TRUE(WaitFor(&world, [&] {
    return world.saved[0] == 100 && world.saved[1] == 100 && world.saved[2] == 100 && world.saved[3] == 100;
  }));
  EXPECT_EQ(owned.value(), 4.0);
  EXPECT_EQ(rebalances.value(), 3u);
  EXPECT_TRUE(WaitFor(&world, [&] { return registry.GetGauge(kLag, {{"topic", "raw"}}).value() == 0; }));
  f.Stop();

  std::lock_guard lock(world.mu);
  EXPECT_EQ(world.faults, std::vector<std::string>{});
  EXPECT_EQ(world.written.size(), 4u * 100);
  for (const auto& [key, times] : world.written) EXPECT_EQ(times, 1) << key.first << "/" << key.second << " written again";
  EXPECT_EQ(world.prepares, 3) << "the positions are read from the destination at each assignment";
}

// Sinks into one destination share a group; into another, they are a group of their own and
// read every partition (two ClickHouse databases must not get half of the readings each).
TEST(LogFollowerGroupTest, TheGroupIsPerDestination) {
  EXPECT_EQ(SinkGroupName("clickhouse", "raw", "http://a:8123/mare"), SinkGroupName("clickhouse", "raw", "http://a:8123/mare"));
  EXPECT_NE(SinkGroupName("clickhouse", "raw", "http://a:8123/mare"), SinkGroupName("clickhouse", "raw", "http://a:8123/other"));
  EXPECT_NE(SinkGroupName("clickhouse", "raw", "http://a:8123/mare"), SinkGroupName("clickhouse", "raw", "http://b:8123/mare"));
  EXPECT_NE(SinkGroupName("clickhouse", "raw", "x"), SinkGroupName("clickhouse", "rollups", "x"));
  EXPECT_EQ(SinkGroupName("clickhouse", "raw", ""), "clickhouse-raw-811c9dc5");  // FNV-1a 32 of nothing: its offset basis
}

}  // namespace follower_group_test
}  // namespace mare::sinks
