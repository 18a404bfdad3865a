// HeapChunk: the heap an allocation of n bytes takes, for memory accounting that must match what
// the process's RSS shows (the store's index cache bound, index_cache.h), not just what was asked.
#pragma once

#include <cstddef>

namespace mare {

// glibc's malloc on 64-bit: the request plus an 8-byte header, rounded up to 16, 32 at least; no
// allocation for 0 bytes (an empty vector). Small allocations are where the difference shows: a
// block index's 64-byte text statistics take 80, a 23-character string's 24 bytes take 32.
constexpr size_t HeapChunk(size_t n) {
  if (n == 0) return 0;
  size_t chunk = (n + 8 + 15) & ~size_t{15};
  return chunk < 32 ? 32 : chunk;
}

static_assert(HeapChunk(24) == 32 && HeapChunk(64) == 80 && HeapChunk(120) == 128 && HeapChunk(121) == 144);

}  // namespace mare
