#include "pgwire/cancel_registry.h"

#include <random>

namespace mare::pgwire {

std::pair<int32_t, int32_t> CancelRegistry::Add(std::function<void()> cancel) {
  std::lock_guard lock(mu_);
  if (seed_ == 0) seed_ = (uint64_t{std::random_device{}()} << 32) | std::random_device{}();
  // splitmix64: secrets that another client cannot guess from its own.
  seed_ += 0x9E3779B97F4A7C15ull;
  uint64_t z = seed_;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  z ^= z >> 31;
  int32_t pid = next_pid_++;
  if (next_pid_ == INT32_MAX) next_pid_ = 10'000;
  auto secret = static_cast<int32_t>(z);
  entries_[pid] = {secret, std::move(cancel)};
  return {pid, secret};
}

void CancelRegistry::Remove(int32_t pid) {
  std::lock_guard lock(mu_);
  entries_.erase(pid);
}

bool CancelRegistry::Cancel(int32_t pid, int32_t secret) {
  std::lock_guard lock(mu_);
  auto it = entries_.find(pid);
  if (it == entries_.end() || it->second.first != secret) return false;
  it->second.second();
  return true;
}

}  // namespace mare::pgwire
