#include "sinks/in_order_commits.h"

namespace mare::sinks {

uint64_t InOrderCommits::Sealed(const std::map<int32_t, int64_t>& next, int64_t start_us) {
  batches_.push_back({.next = next, .start_us = start_us});
  return first_ + batches_.size() - 1;
}

void InOrderCommits::Acknowledged(uint64_t seq) {
  if (seq < first_ || seq - first_ >= batches_.size()) return;
  batches_[seq - first_].acknowledged = true;
}

InOrderCommits::Committable InOrderCommits::Take() {
  Committable out;
  while (!batches_.empty() && batches_.front().acknowledged) {
    for (const auto& [p, n] : batches_.front().next) out.next[p] = n;
    out.starts_us.push_back(batches_.front().start_us);
    batches_.pop_front();
    ++first_;
  }
  return out;
}

void InOrderCommits::Clear() {
  first_ += batches_.size();
  batches_.clear();
}

}  // namespace mare::sinks
