// SegmentIndex: a segment file's block index as loaded from its end (docs/formats/store.md), the
// per-block metadata queries and merges walk. Kept apart from the segment's small summary so
// that the store can drop it and load it again on demand (index_cache.h).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "common/heap_chunk.h"
#include "store/block.h"

namespace mare::store {

struct SegmentIndex {
  std::vector<BlockMeta> blocks;     // in the file's (hour, sensor, min_ts) order
  std::vector<int64_t> rows_before;  // rows of blocks [0, i): a view's rows in O(1)
  size_t memory_bytes = 0;           // heap this index takes (MemoryBytes), for the cache's bound

  // The heap the blocks, their columns and their statistics' strings take, counted from the
  // vectors' capacities (what was allocated, not what is used) as the allocator's chunks
  // (HeapChunk): a block's columns are one allocation each, whose header and rounding were 2 to
  // 9 % of an index left out (index_cache_test.cc measures it).
  size_t MemoryBytes() const {
    size_t bytes = HeapChunk(sizeof(SegmentIndex) + 16) + HeapChunk(blocks.capacity() * sizeof(BlockMeta)) +
                   HeapChunk(rows_before.capacity() * sizeof(int64_t));  // (make_shared: 16 of control block)
    for (const BlockMeta& m : blocks) {
      bytes += HeapChunk(m.columns.capacity() * sizeof(ColumnMeta));
      for (const ColumnMeta& c : m.columns) bytes += c.stats.text.HeapBytes();
    }
    return bytes;
  }
};

}  // namespace mare::store
