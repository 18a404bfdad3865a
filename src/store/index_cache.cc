#include "store/index_cache.h"

#include <utility>

#include "store/store_metrics.h"

namespace mare::store {

IndexCache::IndexCache(size_t capacity_bytes, metrics::Registry* registry) : capacity_(capacity_bytes) {
  if (registry != nullptr) {
    bytes_gauge_ = &registry->GetGauge(store_metrics::kIndexCacheBytes);
    hits_counter_ = &registry->GetCounter(store_metrics::kIndexCacheHits);
    misses_counter_ = &registry->GetCounter(store_metrics::kIndexCacheMisses);
    evictions_counter_ = &registry->GetCounter(store_metrics::kIndexCacheEvictions);
  }
}

uint64_t IndexCache::NewKey() {
  std::lock_guard lock(mu_);
  return next_key_++;
}

std::shared_ptr<const SegmentIndex> IndexCache::Find(uint64_t key) {
  std::lock_guard lock(mu_);
  auto it = by_key_.find(key);
  if (it == by_key_.end()) {
    ++misses_;
    if (misses_counter_) misses_counter_->Add();
    return nullptr;
  }
  ++hits_;
  if (hits_counter_) hits_counter_->Add();
  lru_.splice(lru_.begin(), lru_, it->second);
  return it->second->index;
}

void IndexCache::Insert(uint64_t key, std::shared_ptr<const SegmentIndex> index) {
  std::lock_guard lock(mu_);
  if (auto it = by_key_.find(key); it != by_key_.end()) EraseLocked(it);
  bytes_ += index->memory_bytes;
  lru_.push_front(Entry{key, std::move(index)});
  by_key_.emplace(key, lru_.begin());
  EvictLocked();
  PublishLocked();
}

void IndexCache::Erase(uint64_t key) {
  std::lock_guard lock(mu_);
  if (auto it = by_key_.find(key); it != by_key_.end()) EraseLocked(it);
  PublishLocked();
}

void IndexCache::EraseLocked(std::unordered_map<uint64_t, std::list<Entry>::iterator>::iterator it) {
  bytes_ -= it->second->index->memory_bytes;
  lru_.erase(it->second);
  by_key_.erase(it);
}

void IndexCache::EvictLocked() {
  while (bytes_ > capacity_ && !lru_.empty()) {
    EraseLocked(by_key_.find(lru_.back().key));
    ++evictions_;
    if (evictions_counter_) evictions_counter_->Add();
  }
}

void IndexCache::PublishLocked() {
  if (bytes_gauge_) bytes_gauge_->Set(static_cast<double>(bytes_));
}

bool IndexCache::Contains(uint64_t key) const {
  std::lock_guard lock(mu_);
  return by_key_.contains(key);
}

size_t IndexCache::bytes() const {
  std::lock_guard lock(mu_);
  return bytes_;
}
size_t IndexCache::entries() const {
  std::lock_guard lock(mu_);
  return lru_.size();
}
uint64_t IndexCache::hits() const {
  std::lock_guard lock(mu_);
  return hits_;
}
uint64_t IndexCache::misses() const {
  std::lock_guard lock(mu_);
  return misses_;
}
uint64_t IndexCache::evictions() const {
  std::lock_guard lock(mu_);
  return evictions_;
}

}  // namespace mare::store
