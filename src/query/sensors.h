// The sensors the store knows: for GET /api/v1/sensors and the dashboard's overview. Computed
// from the segments' resident sensor summaries and the memtable, reading no block index.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "store/store.h"

namespace mare::query {

struct SensorInfo {
  uint32_t sensor_id = 0;
  int64_t first_seen_us = 0;  // event time of its oldest and newest readings
  int64_t last_seen_us = 0;
  int64_t readings = 0;
  std::vector<std::string> fields;  // its numeric and text fields, by name, sorted
  bool has_position = false;        // its last known location
  double lat = 0, lon = 0;
  int64_t position_us = 0;
};

// scan=true: from every segment's block index instead (Store::Sensors), the reference the tests
// and bench/store_index.py compare with.
std::vector<SensorInfo> ListSensors(const store::Store& store, bool scan = false);

// {"sensors":[{"sensor_id":1,"first_seen":"...","last_seen":"...","readings":N,
//   "fields":["humidity",...],"position":{"lat":..,"lon":..,"ts":"..."}},...]}
std::string SensorsJson(const std::vector<SensorInfo>& sensors);

}  // namespace mare::query
