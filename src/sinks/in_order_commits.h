// InOrderCommits: which positions a follower that writes several batches at once may save.
// Batches are numbered as they are sealed, each with the positions after it; they may be
// acknowledged in any order (the second bulk request can finish before the first), but a batch's
// positions are given out only once it and every batch sealed before it were acknowledged, so a
// saved position never passes a record whose batch is not acknowledged yet.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <vector>

namespace mare::sinks {

class InOrderCommits {
 public:
  // The positions after a run of batches, merged (the later batch's position of a partition
  // wins), and when each batch's first record was read.
  struct Committable {
    std::map<int32_t, int64_t> next;
    std::vector<int64_t> starts_us;
    bool empty() const { return starts_us.empty(); }
  };

  // Registers the batch sealed next, with the positions after it: its number (0, 1, 2, ...).
  uint64_t Sealed(const std::map<int32_t, int64_t>& next, int64_t start_us);
  // Every record of batch `seq` was acknowledged or dead-lettered. A number not sealed, or not
  // pending any more, is ignored.
  void Acknowledged(uint64_t seq);
  // The longest run of acknowledged batches right after those taken before, forgotten here;
  // empty when the oldest batch not taken is not acknowledged yet.
  Committable Take();
  // Forgets every batch not taken (given up unacknowledged); the numbers go on from where they were.
  void Clear();
  // Batches sealed and not taken yet.
  size_t pending() const { return batches_.size(); }

 private:
  struct Batch {
    std::map<int32_t, int64_t> next;
    int64_t start_us = 0;
    bool acknowledged = false;
  };
  std::deque<Batch> batches_;  // batches_[i] is batch first_ + i
  uint64_t first_ = 0;
};

}  // namespace mare::sinks
