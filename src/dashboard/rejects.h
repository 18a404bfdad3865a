// Rejected readings per sensor, read from the dead-letter file (docs/formats/dead-letter.md),
// for the overview's health column: the ingest metrics count rejects by source and reason, but
// only the file says which sensor sent them. Read incrementally: each Scan reads only what was
// appended since the last one (and starts over if the file was deleted or truncated). Rejects
// past ingest.dead_letter_max are only counted by the metrics, not kept: they are not seen here.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <string>

namespace mare::dashboard {

class RejectCounts {
 public:
  explicit RejectCounts(std::string path) : path_(std::move(path)) {}

  // Reads the entries appended since the last call. Entries older than `keep_us` before
  // `now_us` are kept only in the totals.
  void Scan(int64_t now_us, int64_t keep_us = 3'600'000'000);

  struct Sensor {
    int64_t total = 0;
    std::deque<int64_t> recent;  // rejection times within the keep window
    std::string last_reason;
  };
  const std::map<uint32_t, Sensor>& sensors() const { return sensors_; }
  // Entries whose raw bytes name no sensor_id (not JSON, no sensor_id, ...).
  int64_t unattributed() const { return unattributed_; }
  // Rejects of `sensor` at or after `since_us`.
  int64_t Since(uint32_t sensor, int64_t since_us) const;

 private:
  void Reset();

  std::string path_;
  uint64_t offset_ = 0;  // bytes of whole entries read
  uint64_t inode_ = 0;
  uint64_t need_ = 0;  // bytes of the entry a scan stopped in
  std::map<uint32_t, Sensor> sensors_;
  int64_t unattributed_ = 0;
};

// The sensor_id of a raw reading, found without a full parse (the reading was rejected, so it
// may be anything): the first "sensor_id" key followed by ':' and an unsigned integer.
bool FindSensorId(std::string_view raw, uint32_t* sensor);

}  // namespace mare::dashboard
