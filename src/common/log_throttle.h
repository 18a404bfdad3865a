// LogThrottle: lets one log line of a kind through per interval and counts the rest, so that a
// flood of the same event (a scanner's refused TLS handshakes) is seen without filling the log.
//
//   if (uint64_t held; throttle.Allow(&held)) spdlog::warn("... ({} more not logged)", held);
#pragma once

#include <cstdint>
#include <mutex>

#include "common/time.h"

namespace mare {

class LogThrottle {
 public:
  explicit LogThrottle(int64_t interval_us = 1'000'000) : interval_us_(interval_us) {}

  // True when a line may be written now; *held is then how many were not since the last one.
  bool Allow(uint64_t* held) {
    std::lock_guard lock(mu_);
    int64_t now = MonotonicMicros();
    if (now < next_us_) {
      ++held_;
      return false;
    }
    next_us_ = now + interval_us_;
    *held = held_;
    held_ = 0;
    return true;
  }

 private:
  const int64_t interval_us_;
  std::mutex mu_;
  int64_t next_us_ = 0;
  uint64_t held_ = 0;
};

}  // namespace mare
