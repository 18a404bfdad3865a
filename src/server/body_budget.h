// BodyBudget: the bytes of request bodies in flight across every connection of the HTTP
// server, so that memory for bodies is bounded whatever the concurrency. A request takes its
// body's size before reading it (a chunked body, as it arrives) and gives it back when done.
#pragma once

#include <atomic>
#include <cstddef>

namespace mare {

class BodyBudget {
 public:
  explicit BodyBudget(size_t capacity) : capacity_(capacity) {}

  // Takes `bytes` if they fit beside what is in flight; false (and nothing taken) if not.
  bool TryTake(size_t bytes) {
    size_t used = used_.load(std::memory_order_relaxed);
    do {
      if (bytes > capacity_ - used) return false;
    } while (!used_.compare_exchange_weak(used, used + bytes, std::memory_order_relaxed));
    return true;
  }
  void Give(size_t bytes) { used_.fetch_sub(bytes, std::memory_order_relaxed); }

  size_t used() const { return used_.load(std::memory_order_relaxed); }
  size_t capacity() const { return capacity_; }

 private:
  const size_t capacity_;
  std::atomic<size_t> used_{0};
};

}  // namespace mare
