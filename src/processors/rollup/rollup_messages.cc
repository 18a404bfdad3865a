#include "processors/rollup/rollup_messages.h"

#include <algorithm>

namespace mare::rollup {

void RollupMessages::Clear() {
  size_t used = entries_.empty() ? 0 : block_ + 1;
  if (blocks_.size() > std::max<size_t>(2 * used, 1)) blocks_.resize(std::max<size_t>(2 * used, 1));
  if (entries_.capacity() > 4096 && entries_.size() < entries_.capacity() / 4) entries_ = {};
  entries_.clear();
  block_ = 0;
  used_ = 0;
}

char* RollupMessages::NextBlock(size_t n) {
  if (flush_ && !entries_.empty() && (block_ + 1) * kBlockSize >= flush_bytes_) {
    flush_(*this);
    Clear();  // from the first block again
  }
  if (!blocks_.empty() && used_ > 0) ++block_;  // the next block; the current one's tail stays unused
  used_ = 0;
  if (block_ == blocks_.size() || blocks_[block_].size < n) {
    Block b{.bytes = std::make_unique_for_overwrite<char[]>(std::max(n, kBlockSize)), .size = std::max(n, kBlockSize)};
    if (block_ == blocks_.size()) {
      blocks_.push_back(std::move(b));
    } else {
      blocks_[block_] = std::move(b);
    }
  }
  return blocks_[block_].bytes.get();
}

}  // namespace mare::rollup
