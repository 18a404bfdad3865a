// LateReadings: the readings the stream dropped as too late, as the dead-letter files keep them
// (reason `late`, docs/formats/dead-letter.md), by sensor and event time, so that reconcile can
// say that a window lacks readings because they came too late.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "common/status.h"

namespace mare::batch {

class LateReadings {
 public:
  // Reads the `late` entries of each file (dead-letter.log.1 then dead-letter.log); a missing
  // file holds none. Entries whose reading cannot be parsed are counted in unreadable().
  Status Load(const std::vector<std::string>& paths);
  // Late readings of the sensor with event time in [from, to).
  size_t Count(uint32_t sensor, int64_t from_us, int64_t to_us) const;
  size_t size() const { return size_; }
  size_t unreadable() const { return unreadable_; }

 private:
  std::map<uint32_t, std::vector<int64_t>> by_sensor_;  // sorted event times
  size_t size_ = 0;
  size_t unreadable_ = 0;
};

}  // namespace mare::batch
