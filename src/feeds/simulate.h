// `mare simulate`: a fleet of Buoys read once per tick, sent to the targets at the pace of
// simulated time (or flat out, for load tests).
#pragma once

#include <atomic>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"
#include "feeds/feed.h"

namespace mare::feeds {

struct SimulateConfig {
  std::vector<std::string> targets{"udp://127.0.0.1:20001"};
  uint32_t sensors = 10;
  double rate = 1.0;  // readings per second per sensor
  uint64_t seed = 1;
  std::optional<int64_t> start_micros;     // simulated time of the first tick
  std::optional<uint64_t> count;           // ticks (readings per sensor), then stop
  std::optional<int64_t> duration_micros;  // wall time, then stop
  bool flat_out = false;
  double max_rate = 0;  // total readings/s cap in flat-out mode; 0 = none
  size_t batch = 0;     // 0 = the transport's default (see feed.h)
  double fault_probability = 0.002;
  SenderOptions sender;  // --token, --cacert
};

Status ValidateSimulateConfig(const SimulateConfig& config);

// The first tick's simulated time when --start is not given: now when paced; in flat-out
// mode now minus the span of the readings to send, so none is in the future.
int64_t DefaultSimulateStart(const SimulateConfig& config, int64_t now_micros);

// Runs until --count ticks, --duration, or `stop`. An error Status means nothing was sent
// (bad options, a target that cannot be reached), or a target refused the feed for good (a
// token it wants, a certificate that does not verify), which ends it at once.
Result<FeedOutcome> RunSimulate(const SimulateConfig& config, const std::atomic<bool>& stop);

}  // namespace mare::feeds
