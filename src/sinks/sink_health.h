// SinkHealth: whether a sink's follower of one topic is delivering, and how far behind it is,
// for the process's /readyz. A follower that cannot reach its server retries; it says why here.
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>

#include "log/consumer_thread.h"

namespace mare::sinks {

struct SinkHealth {
  std::string topic;
  log::ConsumerHealth health;  // never "stopped": sinks retry every failure
  int64_t lag = -1;            // records not yet delivered, -1 until known
};

// What a follower's thread records and any thread reads.
class HealthRecorder {
 public:
  void Failed(const std::string& reason) {
    std::lock_guard lock(mu_);
    ++failures_;
    reason_ = reason;
  }
  void Succeeded() {
    std::lock_guard lock(mu_);
    failures_ = 0;
    reason_.clear();
  }
  void SetLag(int64_t lag) { lag_.store(lag); }

  SinkHealth Get(const std::string& topic) const {
    std::lock_guard lock(mu_);
    return {.topic = topic,
            .health = {.healthy = failures_ == 0, .stopped = false, .reason = reason_, .retries = failures_},
            .lag = lag_.load()};
  }

 private:
  mutable std::mutex mu_;
  int64_t failures_ = 0;
  std::string reason_;
  std::atomic<int64_t> lag_{-1};
};

}  // namespace mare::sinks
