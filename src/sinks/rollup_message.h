// RollupMessage: one message of the rollups topic (docs/formats/rollups.md), as sinks read it.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "common/status.h"

namespace mare::sinks {

struct RollupMessage {
  uint32_t sensor_id = 0;
  std::string field;
  std::string resolution;
  int64_t window_start_us = 0;
  int64_t count = 0;
  double min = 0, max = 0, mean = 0, stddev = 0, first = 0, last = 0;
  int64_t revision = 0;
  bool final = false;
  std::string source = "stream";  // "batch" for `mare batch rollups` (key `source`, absent: stream)
};

// Reads rollup JSON values; one reader per thread, reused.
class RollupReader {
 public:
  RollupReader();
  ~RollupReader();
  Status Read(std::string_view json, RollupMessage* out);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace mare::sinks
