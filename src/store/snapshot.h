// Snapshots: what a query reads, an immutable view of the store's blocks and memtable rows
// (or of its forecast rows) for the sensors and times it asks for.
#pragma once

#include <cstdint>
#include <limits>
#include <memory>
#include <optional>
#include <vector>

#include "common/status.h"
#include "store/block.h"
#include "store/schema.h"
#include "store/segment.h"
#include "store/sensor_summary.h"

namespace mare::store {

// What a query needs from the store: blocks and memtable rows of these sensors and times.
struct SnapshotFilter {
  std::vector<uint32_t> sensors;                     // empty: every sensor
  int64_t min_ts = std::numeric_limits<int64_t>::min();  // inclusive
  int64_t max_ts = std::numeric_limits<int64_t>::max();  // inclusive
  // Only the newest memtable row of each sensor and hour (LATEST ON without WHERE): a query
  // for the latest readings then copies a row per sensor, not the whole memtable.
  bool latest_only = false;
  // Leave the segments unpinned in Snapshot::lazy, for a reader that walks them one at a time
  // (Store::PinVisible) so that the indexes of all of them are never in memory at once (the
  // sensor list reads every segment of the store).
  bool lazy = false;
};

// A live segment as of the snapshot, not yet pinned: its blocks hidden then (sorted file
// indexes), and the hours the snapshot asked for.
struct LazySegment {
  std::shared_ptr<const Segment> segment;
  std::optional<std::vector<uint32_t>> hidden;
  // With hidden blocks: the figures of their sensors over the visible blocks, by sensor id, in
  // place of the segment's summary's (segment->sensors() leaves nothing out).
  std::vector<SensorFigures> sensor_overrides;
  int64_t first_hour = 0, last_hour = 0;
};

// An immutable view for one query: live segments (views of the filter's hours, ordered by
// their first hour) and a copy of the matching memtable rows (each RowBuffer sorted by time,
// within one hour). Segments stay readable while held.
struct Snapshot {
  // Not OK when a segment's block index could not be loaded (a file damaged since it was
  // opened, a read error): the snapshot is then incomplete and a reader must fail with it.
  Status status;
  std::vector<std::shared_ptr<const Segment>> segments;  // pinned
  std::vector<LazySegment> lazy;  // instead of segments, with SnapshotFilter::lazy
  std::vector<RowBuffer> memtable;
  std::vector<Field> fields;  // the schema as of the snapshot: field id -> name, type
};

}  // namespace mare::store
