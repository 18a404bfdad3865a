#include "log/refusal_split.h"

namespace mare::log {

RefusalSplit SplitAfterRefusal(const std::vector<bool>& refused) {
  RefusalSplit split;
  std::vector<size_t> named, others;
  for (size_t i = 0; i < refused.size(); ++i) (refused[i] ? named : others).push_back(i);
  if (named.empty()) {
    // Not told whose: each alone, and never the group again, which holds the one at fault.
    for (size_t i : others) split.run_again.push_back({i});
    return split;
  }
  if (named.size() == 1) {
    split.fails = named.front();
  } else {
    for (size_t i : named) split.run_again.push_back({i});
  }
  if (!others.empty()) split.run_again.push_back(std::move(others));
  return split;
}

}  // namespace mare::log
