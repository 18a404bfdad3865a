// Every sensor's latest values and health, for the overview: built once a second while a page
// watches. From the store: the sensor list from block statistics (query::ListSensors), the
// newest reading of each (LATEST ON), and every 10 s the faulty readings of the last hour
// (`status` other than "ok", as buoys and the simulator report faults); from the dead-letter
// file, the readings of each sensor that were rejected.
//
// A sensor is "stale" when its newest reading is older than a minute and than five of its
// usual intervals; "fault" when its newest status is not "ok"; "rejects" when some of its
// readings were rejected in the last hour; else "ok" (in that order of precedence).
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <string>

#include "dashboard/rejects.h"
#include "store/store.h"

namespace mare::dashboard {

class SensorHealth {
 public:
  SensorHealth(store::Store* store, std::string dead_letter_path) : store_(store), rejects_(std::move(dead_letter_path)) {}

  // Reads new dead-letter entries; cheap when there are none. Call about once a second.
  void ScanRejects(int64_t now_us) { rejects_.Scan(now_us); }
  int64_t unattributed_rejects() const { return rejects_.unattributed(); }

  // The sensors as a JSON array (the "sensors" of GET /api/v1/live/snapshot). Not thread-safe:
  // one caller at a time.
  std::string Json(int64_t now_us);

  static constexpr int64_t kRateWindowUs = 10'000'000;
  static constexpr int64_t kFaultsEveryUs = 10'000'000;

 private:
  void CountFaults(int64_t now_us);

  store::Store* store_;  // null when the store is disabled
  RejectCounts rejects_;
  // Per sensor, (time, readings in the store) over the last seconds, for its arrival rate.
  std::map<uint32_t, std::deque<std::pair<int64_t, int64_t>>> counts_;
  std::map<uint32_t, int64_t> faults_;  // faulty readings in the last hour
  bool faults_known_ = false;
  int64_t faults_at_us_ = 0;
};

}  // namespace mare::dashboard
