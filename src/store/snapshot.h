// Snapshots: what a query reads, an immutable view of the store's blocks and memtable rows
// (or of its forecast rows) for the sensors and times it asks for.
#pragma once

#include <cstdint>
#include <limits>
#include <memory>
#include <vector>

#include "store/block.h"
#include "store/schema.h"
#include "store/segment.h"

namespace mare::store {

// What a query needs from the store: blocks and memtable rows of these sensors and times.
struct SnapshotFilter {
  std::vector<uint32_t> sensors;                     // empty: every sensor
  int64_t min_ts = std::numeric_limits<int64_t>::min();  // inclusive
  int64_t max_ts = std::numeric_limits<int64_t>::max();  // inclusive
  // Only the newest memtable row of each sensor and hour (LATEST ON without WHERE): a query
  // for the latest readings then copies a row per sensor, not the whole memtable.
  bool latest_only = false;
};

// An immutable view for one query: live segments (views of the filter's hours, ordered by
// their first hour) and a copy of the matching memtable rows (each RowBuffer sorted by time,
// within one hour). Segments stay readable while held.
struct Snapshot {
  std::vector<std::shared_ptr<const Segment>> segments;
  std::vector<RowBuffer> memtable;
  std::vector<Field> fields;  // the schema as of the snapshot: field id -> name, type
};

}  // namespace mare::store
