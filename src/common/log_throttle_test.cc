// LogThrottle: one line per interval goes through, and the next says how many were held back.
#include "common/log_throttle.h"

#include <gtest/gtest.h>

#include <chrono>
#include <thread>

namespace mare {
namespace {

TEST(LogThrottleTest, OneLinePerIntervalAndTheNextCountsTheRest) {
  LogThrottle throttle(200'000);
  uint64_t held = 99;
  ASSERT_TRUE(throttle.Allow(&held));
  EXPECT_EQ(held, 0u);
  int let_through = 0;
  for (int i = 0; i < 1000; ++i) let_through += throttle.Allow(&held) ? 1 : 0;
  // Within the interval, unless this loop took longer than it (a loaded machine): at most one.
  EXPECT_LE(let_through, 1);
  std::this_thread::sleep_for(std::chrono::milliseconds(250));
  ASSERT_TRUE(throttle.Allow(&held));
  EXPECT_EQ(held + static_cast<uint64_t>(let_through), 1000u);
}

}  // namespace
}  // namespace mare
