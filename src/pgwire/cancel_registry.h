// CancelRegistry: the connections a CancelRequest can reach, by the process id and secret key
// each was given in its BackendKeyData. A CancelRequest comes on a new connection of its own;
// a wrong key is ignored without a word, as PostgreSQL does.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <utility>

namespace mare::pgwire {

class CancelRegistry {
 public:
  // A key for a new connection; cancel runs (under the registry's lock) when a request names it.
  std::pair<int32_t, int32_t> Add(std::function<void()> cancel);
  void Remove(int32_t pid);
  // True if the key was a connection's.
  bool Cancel(int32_t pid, int32_t secret);

 private:
  std::mutex mu_;
  int32_t next_pid_ = 10'000;
  uint64_t seed_ = 0;
  std::map<int32_t, std::pair<int32_t, std::function<void()>>> entries_;
};

}  // namespace mare::pgwire
