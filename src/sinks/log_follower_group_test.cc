// LogFollower in a consumer group, its partitions given and taken away while batches are in
// flight: the log is the embedded one behind a member whose assignment the test moves, as Kafka's
// rebalances would, so that what is tested is the follower's own bookkeeping of a partial
// assignment (tests/e2e/test_sink_group.py does the same against a real Kafka and ClickHouse).
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "common/scratch_dir.h"
#include "log/duplicate_filter.h"
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
  int readbacks = 0;  // consumers the duplicate filter's rebuilds opened
  bool dedup = false;  // positions also move past duplicates, which are never written
  // The destination's faults on demand: flushes of these partitions' records fail; while `hold`,
  // every flush waits (counted in `flushing`) until it is cleared.
  std::set<int32_t> stuck;
  int failures = 0;
  bool hold = false;
  int flushing = 0;
  std::condition_variable cv;
  bool lose = false;    // the next move loses the assignment (its session expired) instead
  bool losing = false;  // the member has called the lost handler
  bool revoking = false;  // the member is in the revoked handler
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
    bool lose = false;
    {
      std::lock_guard lock(world_->mu);
      if (world_->version != seen_) {
        seen_ = world_->version;
        wanted = world_->wanted;
        moved = true;
        lose = std::exchange(world_->lose, false);
        // Lost: the group moved on already, the partitions are another's before the handler runs.
        if (lose && !mine_.empty()) {
          world_->owned.clear();
          world_->losing = true;
        }
      }
    }
    if (moved && lose && !mine_.empty()) {
      handlers_.lost(mine_);
    } else if (moved) {
      if (!mine_.empty()) {
        {
          std::lock_guard lock(world_->mu);
          world_->revoking = true;
        }
        handlers_.revoked(mine_);
        std::lock_guard lock(world_->mu);
        world_->revoking = false;
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
    }
    if (moved) {
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
  Result<std::unique_ptr<log::Consumer>> Subscribe(const std::string& g, const std::string& t) override {
    if (g == log::kDuplicateFilterGroup) {
      std::lock_guard lock(world_->mu);
      ++world_->readbacks;
    }
    return ForwardingLog::Subscribe(g, t);
  }

 private:
  World* world_;
};

// Two slots, each flush a little slow, so that batches are in flight when partitions move; the
// world's faults on demand.
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
  void Forget(int slot) override { sealed_[slot].clear(); }
  Status Flush(int slot) override {
    std::this_thread::sleep_for(std::chrono::milliseconds(3));
    std::unique_lock lock(world_->mu);
    ++world_->flushing;
    world_->cv.wait(lock, [&] { return !world_->hold; });
    --world_->flushing;
    for (const auto& key : sealed_[slot]) {
      if (world_->stuck.count(key.first)) {
        ++world_->failures;
        return Status::Unavailable("partition " + std::to_string(key.first) + " stuck");
      }
    }
    for (const auto& key : sealed_[slot]) ++world_->written[key];
    sealed_[slot].clear();
    return Status::OK();
  }
  Status SavePositions(const std::map<int32_t, int64_t>& next) override {
    std::lock_guard lock(world_->mu);
    for (const auto& [p, n] : next) {
      if (!world_->owned.count(p)) world_->faults.push_back("position of partition " + std::to_string(p) + " saved by a non-owner");
      if (n > 0 && !world_->dedup && !world_->written.count({p, n - 1})) {
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

// Readings of sensor 7 at first_ts, first_ts + 1, ... into each partition, one append each (so
// that a poll takes a partition's whole).
void Append(log::Log* log, int per_partition, int64_t first_ts = 0) {
  for (int32_t p = 0; p < kTopicPartitions; ++p) {
    std::vector<log::Record> records;
    for (int i = 0; i < per_partition; ++i) records.push_back({.timestamp_us = first_ts + i, .key = "7", .value = "{}"});
    ASSERT_TRUE(log->Append("raw", p, records).ok());
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

void Assign(World* world, std::vector<int32_t> partitions, bool lose = false) {
  std::lock_guard lock(world->mu);
  world->wanted = std::move(partitions);
  world->lose = lose;
  ++world->version;
}

bool Owns(World* world, std::set<int32_t> partitions) {
  return WaitFor(world, [&] { return world->owned == partitions; });
}

void Hold(World* world, bool hold) {
  std::lock_guard lock(world->mu);
  world->hold = hold;
  world->cv.notify_all();
}

// A follower of the embedded log's raw topic behind GroupLog, into SavingDestination.
struct Group {
  explicit Group(LogFollowerOptions o) {
    auto opened = log::OpenLogWithTopics({.dir = dir.path(), .metrics = &registry}, {{.name = "raw", .partitions = kTopicPartitions}});
    EXPECT_TRUE(opened.ok()) << opened.status().ToString();
    real = std::move(*opened);
    log = std::make_unique<GroupLog>(real.get(), &world);
    o.name = "test sink";
    o.topic = "raw";
    o.consumer = "test";
    o.destination = "http://ch:8123/db";
    o.retry_initial_us = 10'000;
    o.retry_max_us = 50'000;
    follower = std::make_unique<LogFollower>(std::move(o), std::make_unique<SavingDestination>(&world), log.get(),
                                             LogFollowerMetrics{kRead, kErrors, kLag, kSeconds, kDuplicates, kPartitions, kRebalances},
                                             &registry);
  }
  // Starts the follower on partitions 0 and 1, their first 50 records written and saved.
  void StartOnTheFirstHalf() {
    Append(log.get(), 50);
    Assign(&world, {0, 1});
    ASSERT_TRUE(follower->Start().ok());
    ASSERT_TRUE(WaitFor(&world, [&] { return world.saved[0] == 50 && world.saved[1] == 50; }));
  }
  // Every partition given back, 0 and 1 from their saved positions on to the end (70); stopped then.
  void GiveEveryPartitionBackAndStop() {
    Assign(&world, {0, 1, 2, 3});
    ASSERT_TRUE(WaitFor(&world, [&] { return world.saved[0] == 70 && world.saved[1] == 70; }));
    follower->Stop();
  }
  // 20 more records a partition, their writes held: a batch is in flight when this returns.
  void HoldABatchInFlight() {
    Hold(&world, true);
    Append(log.get(), 20, 50);
    ASSERT_TRUE(WaitFor(&world, [&] { return world.flushing > 0; })) << "a batch in flight";
  }

  ScratchDir dir{"mare-follower-group-test"};
  metrics::Registry registry;
  World world;
  std::unique_ptr<log::Log> real;
  std::unique_ptr<GroupLog> log;
  std::unique_ptr<LogFollower> follower;
};

TEST(LogFollowerGroupTest, WritesAndSavesOnlyItsPartitionsAndFinishesThoseTakenAway) {
  Group g({.batch = 7});
  World& world = g.world;
  Append(g.log.get(), 50);
  Assign(&world, {0, 1});
  ASSERT_TRUE(g.follower->Start().ok());
  auto& owned = g.registry.GetGauge(kPartitions, {{"topic", "raw"}});
  auto& rebalances = g.registry.GetCounter(kRebalances, {{"topic", "raw"}});

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
  Append(g.log.get(), 50, 50);
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
  EXPECT_TRUE(WaitFor(&world, [&] { return g.registry.GetGauge(kLag, {{"topic", "raw"}}).value() == 0; }));
  g.follower->Stop();

  std::lock_guard lock(world.mu);
  EXPECT_EQ(world.faults, std::vector<std::string>{});
  EXPECT_EQ(world.written.size(), 4u * 100);
  for (const auto& [key, times] : world.written) EXPECT_EQ(times, 1) << key.first << "/" << key.second << " written again";
  EXPECT_EQ(world.prepares, 3) << "the positions are read from the destination at each assignment";
}

// A batch forced to be in flight when the partitions go: the revocation waits for it to be
// acknowledged and its positions saved before the next assignment is taken.
TEST(LogFollowerGroupTest, ABatchInFlightAtTheRevocationIsFinishedFirst) {
  Group g({.batch = 100});
  World& world = g.world;
  ASSERT_NO_FATAL_FAILURE(g.StartOnTheFirstHalf());
  ASSERT_NO_FATAL_FAILURE(g.HoldABatchInFlight());
  Assign(&world, {2, 3});
  ASSERT_TRUE(WaitFor(&world, [&] { return world.revoking; }));
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  {
    std::lock_guard lock(world.mu);
    EXPECT_EQ(world.owned, (std::set<int32_t>{0, 1})) << "the revocation waits for the batch in flight";
    EXPECT_EQ(world.prepares, 1);
    EXPECT_LT(world.saved[0] + world.saved[1], 140);
  }
  Hold(&world, false);
  ASSERT_TRUE(Owns(&world, {2, 3}));
  ASSERT_TRUE(WaitFor(&world, [&] { return world.saved[2] == 70 && world.saved[3] == 70; }));
  g.follower->Stop();

  std::lock_guard lock(world.mu);
  EXPECT_EQ(world.faults, std::vector<std::string>{}) << "what was read of 0 and 1 was saved before they went";
  EXPECT_EQ(world.saved[0], 70);
  EXPECT_EQ(world.saved[1], 70);
  EXPECT_EQ(world.written.size(), 4u * 70);
  for (const auto& [key, times] : world.written) EXPECT_EQ(times, 1) << key.first << "/" << key.second << " written again";
}

// The duplicate filter of a partition kept across a rebalance is not rebuilt (no read-back of the
// log) and still judges exactly: copies of readings from before the rebalance are dropped. A
// partition given up and given back later is rebuilt.
TEST(LogFollowerGroupTest, KeptPartitionsKeepTheirDuplicateFilter) {
  Group g({.batch = 7, .dedup = {.enabled = true, .horizon_us = 600'000'000}});
  World& world = g.world;
  world.dedup = true;
  Append(g.log.get(), 50);
  Assign(&world, {2, 3});
  ASSERT_TRUE(g.follower->Start().ok());
  ASSERT_TRUE(WaitFor(&world, [&] { return world.saved[2] == 50 && world.saved[3] == 50; }));

  // 2 and 3 kept at 50 and 0 and 1 new at 0: nothing to read back.
  Assign(&world, {0, 1, 2, 3});
  ASSERT_TRUE(Owns(&world, {0, 1, 2, 3}));
  // Copies of every reading so far (offsets 50 to 99): all dropped, by the kept filters too.
  Append(g.log.get(), 50);
  ASSERT_TRUE(WaitFor(&world, [&] { return world.saved[0] == 100 && world.saved[1] == 100 && world.saved[2] == 100 && world.saved[3] == 100; }));
  {
    std::lock_guard lock(world.mu);
    EXPECT_EQ(world.readbacks, 0) << "no filter rebuilt";
    EXPECT_EQ(world.written.size(), 4u * 50) << "the copies are dropped";
  }
  // 1 kept; then 0 given back after an assignment without it: rebuilt, and still exact.
  Assign(&world, {1});
  ASSERT_TRUE(Owns(&world, {1}));
  Assign(&world, {0, 1});
  ASSERT_TRUE(Owns(&world, {0, 1}));
  Append(g.log.get(), 10, 40);  // copies of 40 to 49 at 100 to 109, each partition
  ASSERT_TRUE(WaitFor(&world, [&] { return world.saved[0] == 110 && world.saved[1] == 110; }));
  g.follower->Stop();

  std::lock_guard lock(world.mu);
  EXPECT_EQ(world.readbacks, 1) << "partition 0's filter rebuilt, 1's kept";
  EXPECT_EQ(world.faults, std::vector<std::string>{});
  EXPECT_EQ(world.written.size(), 4u * 50) << "the copies are dropped";
  EXPECT_EQ(g.registry.GetCounter(kDuplicates, {{"topic", "raw"}}).value(), 4u * 50 + 2 * 10);
}

// A destination that takes nothing of partitions 0 and 1 when they are taken away: the
// revocation gives up after revoke_timeout, their positions stay where they were, the next
// assignment is taken, and once they are given back their records are written from there.
TEST(LogFollowerGroupTest, ARevocationGivesUpAfterItsTimeout) {
  Group g({.batch = 100, .revoke_timeout_us = 300'000});
  World& world = g.world;
  ASSERT_NO_FATAL_FAILURE(g.StartOnTheFirstHalf());

  {
    std::lock_guard lock(world.mu);
    world.stuck = {0, 1};
  }
  Append(g.log.get(), 20, 50);
  ASSERT_TRUE(WaitFor(&world, [&] { return world.returned[0] == 70 && world.returned[1] == 70 && world.failures > 0; }));
  Assign(&world, {2, 3});
  ASSERT_TRUE(Owns(&world, {2, 3})) << "the revocation gave up";
  ASSERT_TRUE(WaitFor(&world, [&] { return world.saved[2] == 70 && world.saved[3] == 70; }));
  {
    std::lock_guard lock(world.mu);
    EXPECT_EQ(world.saved[0], 50);
    EXPECT_EQ(world.saved[1], 50);
    EXPECT_EQ(world.faults, (std::vector<std::string>{"partition 0 revoked with 70 read and 50 saved",
                                                      "partition 1 revoked with 70 read and 50 saved"}));
    world.faults.clear();
    world.stuck.clear();
  }
  ASSERT_NO_FATAL_FAILURE(g.GiveEveryPartitionBackAndStop());

  std::lock_guard lock(world.mu);
  EXPECT_EQ(world.faults, std::vector<std::string>{});
  EXPECT_EQ(world.written.size(), 4u * 70);
  for (const auto& [key, times] : world.written) EXPECT_EQ(times, 1) << key.first << "/" << key.second << " written again";
}

// Partitions lost (the session expired: the group gave them to others already) while a batch of
// them is being written: the write ends, but no position of theirs is saved after it.
TEST(LogFollowerGroupTest, NoPositionIsSavedForPartitionsLost) {
  Group g({.batch = 100});
  World& world = g.world;
  ASSERT_NO_FATAL_FAILURE(g.StartOnTheFirstHalf());
  ASSERT_NO_FATAL_FAILURE(g.HoldABatchInFlight());
  Assign(&world, {2, 3}, /*lose=*/true);
  ASSERT_TRUE(WaitFor(&world, [&] { return world.losing; }));
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  Hold(&world, false);  // the write in flight succeeds, after the loss
  ASSERT_TRUE(Owns(&world, {2, 3}));
  ASSERT_TRUE(WaitFor(&world, [&] { return world.saved[2] == 70 && world.saved[3] == 70; }));
  {
    std::lock_guard lock(world.mu);
    EXPECT_EQ(world.faults, std::vector<std::string>{}) << "no position saved by a non-owner";
    EXPECT_EQ(world.saved[0], 50);
    EXPECT_EQ(world.saved[1], 50);
  }
  // Given back: from the positions saved before, the records of the dropped batches written again.
  ASSERT_NO_FATAL_FAILURE(g.GiveEveryPartitionBackAndStop());

  std::lock_guard lock(world.mu);
  EXPECT_EQ(world.faults, std::vector<std::string>{});
  EXPECT_EQ(world.written.size(), 4u * 70);
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
