#include "common/kept_threads.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <thread>

namespace mare {
namespace {

TEST(KeptThreadsTest, TasksRunAtOnceUpToTheLimitAndThreadsAreReused) {
  KeptThreads threads(2);
  std::promise<void> release;
  std::shared_future<void> go = release.get_future().share();
  std::atomic<int> started{0};
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(threads.TryRun([&, go] { ++started; go.wait(); }, /*max_active=*/3));
  }
  // Three run at once (none waits behind another), and a fourth is refused, left untouched.
  for (int i = 0; i < 500 && started.load() < 3; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(2));
  EXPECT_EQ(started.load(), 3);
  EXPECT_EQ(threads.active(), 3u);
  std::function<void()> fourth = [] {};
  EXPECT_FALSE(threads.TryRun(std::move(fourth), 3));
  EXPECT_TRUE(static_cast<bool>(fourth));
  release.set_value();
  for (int i = 0; i < 500 && threads.active() > 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(2));
  EXPECT_EQ(threads.active(), 0u);
  // The idle threads take the next tasks: no new thread for each.
  const size_t before = threads.threads();
  for (int i = 0; i < 20; ++i) {
    std::promise<void> done;
    auto ran = done.get_future();
    ASSERT_TRUE(threads.TryRun([&done] { done.set_value(); }));
    ran.wait();
  }
  EXPECT_EQ(threads.threads(), before);
}

TEST(KeptThreadsTest, ShutdownWaitsForRunningTasksAndThenRefuses) {
  KeptThreads threads(1);
  std::atomic<bool> finished{false};
  ASSERT_TRUE(threads.TryRun([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    finished = true;
  }));
  threads.Shutdown();
  EXPECT_TRUE(finished.load());
  EXPECT_FALSE(threads.TryRun([] {}));
}

}  // namespace
}  // namespace mare
