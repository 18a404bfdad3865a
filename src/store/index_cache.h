// IndexCache: the block indexes of segments that queries and replaced readings read last, bounded
// in bytes (store.index_cache_bytes): what keeps the store's memory flat however many days it holds.
// A segment keeps only its summary resident; its index is looked up here and, when missing,
// read again from its file (segment.cc). Least recently used indexes go first. An index a
// reader still holds (a query's snapshot) stays alive after its eviction, until that reader ends.
//
//   auto cache = std::make_shared<IndexCache>(64 << 20, &registry);
//   uint64_t key = cache->NewKey();                 // one per open segment file
//   cache->Insert(key, index);
//   std::shared_ptr<const SegmentIndex> hit = cache->Find(key);   // nullptr: read it again
#pragma once

#include <cstddef>
#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <unordered_map>

#include "common/metrics.h"
#include "store/segment_index.h"

namespace mare::store {

class IndexCache {
 public:
  // registry may be null (no metrics: tools and tests).
  IndexCache(size_t capacity_bytes, metrics::Registry* registry);

  uint64_t NewKey();
  // The index under key, now the most recently used; nullptr when absent (counted as a miss).
  std::shared_ptr<const SegmentIndex> Find(uint64_t key);
  // Adds (or replaces) key's index, then evicts the least recently used until the cache holds
  // at most its capacity (an index larger than the whole capacity is not kept).
  void Insert(uint64_t key, std::shared_ptr<const SegmentIndex> index);
  void Erase(uint64_t key);  // its segment file is gone
  bool Contains(uint64_t key) const;  // neither a use nor a hit or miss

  size_t capacity_bytes() const { return capacity_; }
  size_t bytes() const;
  size_t entries() const;
  uint64_t hits() const;
  uint64_t misses() const;
  uint64_t evictions() const;

 private:
  struct Entry {
    uint64_t key;
    std::shared_ptr<const SegmentIndex> index;
  };
  void EvictLocked();
  void EraseLocked(std::unordered_map<uint64_t, std::list<Entry>::iterator>::iterator it);
  void PublishLocked();

  const size_t capacity_;
  mutable std::mutex mu_;
  std::list<Entry> lru_;  // most recently used first
  std::unordered_map<uint64_t, std::list<Entry>::iterator> by_key_;
  size_t bytes_ = 0;
  uint64_t next_key_ = 1;
  uint64_t hits_ = 0, misses_ = 0, evictions_ = 0;
  metrics::Gauge* bytes_gauge_ = nullptr;
  metrics::Counter* hits_counter_ = nullptr;
  metrics::Counter* misses_counter_ = nullptr;
  metrics::Counter* evictions_counter_ = nullptr;
};

}  // namespace mare::store
