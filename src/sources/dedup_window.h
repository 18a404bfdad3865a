// DedupWindow: the readings ingest accepted lately, per sensor, so that a second delivery of
// one (same sensor, same timestamp) is recognised and not appended again (issue 19).
//
// Per sensor it keeps the timestamps within `horizon` of that sensor's newest one, each with a
// 64-bit hash of the reading's values (ValuesHash) to tell a plain resend from a conflicting
// one: 16 bytes per reading, in a vector sorted by timestamp (readings mostly arrive in order,
// so an insert is an append and an eviction moves a head index). At most `max_per_sensor` are
// kept per sensor; past it the oldest go, and readings at or before them count as late. A
// reading older than the horizon before its sensor's newest is late: accepted, not kept, never
// refused as a duplicate. Memory: 16 bytes x readings within the horizon (at most
// max_per_sensor per sensor), up to 8/3 of that with the vectors' slack, + ~100 bytes per sensor
// seen: for a 1 Hz sensor and a 10-minute horizon, 601 readings, 9.6 to 26 KB.
//
// Admit runs for every reading ingest takes, so the sensors are found through a flat table of
// slots (open addressing, a multiply and a mask, no division and no node to chase), not a
// std::unordered_map.
//
// Not thread-safe: Ingest keeps one per partition of the raw topic, each behind its own mutex.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "reading/reading.h"

namespace mare {

// A hash of a reading's values (numbers, texts, location) that ignores field order, white space
// and the timestamp's form: two copies of the same reading hash alike, whatever their bytes.
uint64_t ValuesHash(const Reading& reading);

class DedupWindow {
 public:
  enum class Outcome {
    kNew,        // kept: append it
    kLate,       // older than the horizon before its sensor's newest: append it, not kept
    kDuplicate,  // already accepted with the same values: drop it
    kConflict,   // already accepted with other values: drop it (the first copy wins)
  };

  DedupWindow(int64_t horizon_us, size_t max_per_sensor);

  Outcome Admit(uint32_t sensor_id, int64_t timestamp_us, uint64_t values_hash);
  // Forgets a reading Admit kept (its append failed, so a resend must be taken), if it is still
  // kept with that hash.
  void Forget(uint32_t sensor_id, int64_t timestamp_us, uint64_t values_hash);

  size_t readings() const { return readings_; }
  size_t sensors() const { return sensors_.size(); }
  // Bytes held, approximately (entries' capacity, the sensors and their slots).
  size_t MemoryBytes() const;

 private:
  struct Entry {
    int64_t timestamp_us;
    uint64_t values_hash;
  };
  struct Sensor {
    std::vector<Entry> entries;  // sorted by timestamp from `head` on
    uint32_t head = 0;           // entries before it are evicted
    int64_t floor_us = INT64_MIN;  // readings older than this are late (raised by max_per_sensor)
    size_t size() const { return entries.size() - head; }
  };
  void Evict(Sensor& s);
  // The sensor's state, made empty the first time it is seen.
  Sensor& Get(uint32_t sensor_id);
  Sensor* Find(uint32_t sensor_id);
  size_t Slot(uint32_t sensor_id) const { return (sensor_id * 0x9e3779b97f4a7c15ULL) >> slot_shift_; }
  void Grow();  // doubles slots_ (16 at first) and places every sensor again

  int64_t horizon_us_;
  size_t max_per_sensor_;
  size_t readings_ = 0;
  std::vector<Sensor> sensors_;
  // Open addressing, linear probing, at most half full: a sensor's id << 32 | 1 + its index in
  // sensors_ (so the probe compares ids without leaving the table), 0 if free.
  std::vector<uint64_t> slots_;
  int slot_shift_ = 64;  // 64 - log2(slots_.size())
};

}  // namespace mare
