// ConsumerThread: a transient failure (a full disk) is retried after recover() with backoff
// until a step succeeds, the thread unhealthy meanwhile and saying why; any other failure, or
// one with no recover(), stops it for good (issue 13, "disk full is not recovered").
#include "log/consumer_thread.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>

namespace mare::log {
namespace {

bool WaitFor(const std::function<bool()>& what, double seconds = 5) {
  auto until = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  while (std::chrono::steady_clock::now() < until) {
    if (what()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return what();
}

TEST(ConsumerThreadTest, TransientFailureIsRecoveredAndRetriedUntilItPasses) {
  std::atomic<bool> disk_full{true};
  std::atomic<int> steps{0}, recoveries{0}, errors{0}, health_changes{0};
  ConsumerThread t;
  t.Start({.step = [&] {
             ++steps;
             return disk_full ? Status::FromErrno("write checkpoint", ENOSPC) : Status::OK();
           },
           .recover = [&] {
             ++recoveries;
             return Status::OK();
           },
           .on_error = [&](const Status&, bool will_retry) {
             EXPECT_TRUE(will_retry);
             ++errors;
           },
           .on_health_change = [&] { ++health_changes; },
           .backoff_min_us = 1000,
           .backoff_max_us = 4000});
  ASSERT_TRUE(WaitFor([&] { return errors >= 3; }));
  ConsumerHealth h = t.health();
  EXPECT_FALSE(h.healthy);
  EXPECT_FALSE(h.stopped);
  EXPECT_NE(h.reason.find("No space left on device"), std::string::npos) << h.reason;
  EXPECT_GE(h.retries, 3);
  // One recover before every retried step: never a step straight after a failure.
  EXPECT_GE(recoveries.load(), errors.load() - 1);
  disk_full = false;
  ASSERT_TRUE(WaitFor([&] { return t.healthy(); }));
  h = t.health();
  EXPECT_TRUE(h.reason.empty());
  EXPECT_EQ(h.retries, 0);
  int before = health_changes;
  EXPECT_TRUE(WaitFor([&] { return steps > 1000; }));  // stepping on, healthy
  EXPECT_EQ(health_changes.load(), before);
  bool finished = false;
  EXPECT_TRUE(t.Stop([&] {
                 finished = true;
                 return Status::OK();
               }).ok());
  EXPECT_TRUE(finished);
}

TEST(ConsumerThreadTest, RecoverFailingKeepsRetryingWithoutStepping) {
  std::atomic<int> steps{0}, recoveries{0};
  std::atomic<bool> space{false};
  ConsumerThread t;
  t.Start({.step = [&] { return ++steps == 1 ? Status::IOError("flush: No space left on device") : Status::OK(); },
           .recover = [&] {
             ++recoveries;
             return space ? Status::OK() : Status::IOError("flush again: No space left on device");
           },
           .backoff_min_us = 1000,
           .backoff_max_us = 2000});
  ASSERT_TRUE(WaitFor([&] { return recoveries >= 5; }));
  EXPECT_EQ(steps.load(), 1);
  EXPECT_FALSE(t.healthy());
  space = true;
  ASSERT_TRUE(WaitFor([&] { return t.healthy() && steps > 1; }));
  EXPECT_TRUE(t.Stop(nullptr).ok());
}

TEST(ConsumerThreadTest, PermanentFailureStopsForGoodAndSkipsFinish) {
  std::atomic<int> steps{0}, recoveries{0};
  ConsumerThread t;
  t.Start({.step = [&] {
             ++steps;
             return Status::Corruption("checkpoint: bad checksum");
           },
           .recover = [&] {
             ++recoveries;
             return Status::OK();
           }});
  ASSERT_TRUE(WaitFor([&] { return t.health().stopped; }));
  EXPECT_EQ(steps.load(), 1);
  EXPECT_EQ(recoveries.load(), 0);
  bool finished = false;
  Status s = t.Stop([&] {
    finished = true;
    return Status::OK();
  });
  EXPECT_EQ(s.code(), Status::Code::kCorruption);
  EXPECT_FALSE(finished);
}

TEST(ConsumerThreadTest, WithoutRecoverEveryErrorStops) {
  ConsumerThread t;
  t.Start({.step = [] { return Status::Unavailable("broker away"); }});
  ASSERT_TRUE(WaitFor([&] { return t.health().stopped; }));
  EXPECT_EQ(t.Stop(nullptr).code(), Status::Code::kUnavailable);
}

TEST(ConsumerThreadTest, StopIsPromptDuringALongBackoff) {
  ConsumerThread t;
  t.Start({.step = [] { return Status::IOError("No space left on device"); },
           .recover = [] { return Status::IOError("No space left on device"); },
           .backoff_min_us = 60'000'000,
           .backoff_max_us = 60'000'000});
  ASSERT_TRUE(WaitFor([&] { return !t.healthy(); }));
  auto start = std::chrono::steady_clock::now();
  EXPECT_FALSE(t.Stop(nullptr).ok());
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(2));
}

}  // namespace
}  // namespace mare::log
