// RollupMessages: the messages of the rollups topic that one or more emissions produced, kept
// in reused blocks of memory so that emitting allocates nothing once they have grown.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace mare::rollup {

// One message for the rollups topic.
struct RollupMessage {
  int32_t partition = 0;
  int64_t timestamp_us = 0;  // window start
  std::string key;
  std::string value;
};

// The messages of one or more Emits, their keys and values in blocks of memory kept from one
// emission to the next: once grown, emitting allocates nothing and touches no new page (a
// message each would be two allocations). The views are valid until the next Clear.
class RollupMessages {
 public:
  RollupMessages() = default;
  RollupMessages(const RollupMessages&) = delete;
  RollupMessages& operator=(const RollupMessages&) = delete;

  size_t size() const { return entries_.size(); }
  bool empty() const { return entries_.empty(); }
  int32_t partition(size_t i) const { return entries_[i].partition; }
  int64_t timestamp_us(size_t i) const { return entries_[i].timestamp_us; }  // window start
  std::string_view key(size_t i) const { return {entries_[i].key, entries_[i].key_len}; }
  std::string_view value(size_t i) const { return {entries_[i].key + entries_[i].key_len, entries_[i].value_len}; }

  // Forgets the messages. Keeps the memory they needed, and as much again; frees the rest,
  // so that a burst (catching up on a backlog) is not held forever.
  void Clear();

  // Has Emit hand the messages to `flush` (then forget them) whenever they fill `bytes`, so
  // that a big emission (a burst, or the first after a restart) is passed on in parts and
  // needs no more memory than that, instead of gathering it all. The rest stays for the caller.
  void set_flush(size_t bytes, std::function<void(RollupMessages&)> flush) {
    flush_bytes_ = bytes;
    flush_ = std::move(flush);
  }
  // Messages added since made, flushed or not.
  uint64_t added() const { return added_; }

 private:
  friend class MessageWriter;
  static constexpr size_t kBlockSize = size_t{1} << 20;
  struct Block {
    std::unique_ptr<char[]> bytes;
    size_t size = 0;
  };
  struct Entry {
    int64_t timestamp_us;
    const char* key;  // the value follows it
    int32_t partition;
    uint32_t key_len;
    uint32_t value_len;
  };
  // Where to write a message of at most n bytes; Add takes it. New blocks are added, never
  // grown, so that nothing is copied and the views stay valid. Inline: once per message.
  char* Room(size_t n) {
    if (block_ < blocks_.size() && used_ + n <= blocks_[block_].size) [[likely]] {
      return blocks_[block_].bytes.get() + used_;
    }
    return NextBlock(n);
  }
  char* NextBlock(size_t n);
  void Add(int32_t partition, int64_t timestamp_us, const char* key, size_t key_len, size_t value_len) {
    entries_.push_back({timestamp_us, key, partition, static_cast<uint32_t>(key_len), static_cast<uint32_t>(value_len)});
    used_ += key_len + value_len;
    ++added_;
  }

  std::vector<Block> blocks_;
  size_t block_ = 0;  // the block written to; blocks_[block_ + 1...] are spare
  size_t used_ = 0;   // bytes of it
  std::vector<Entry> entries_;
  uint64_t added_ = 0;
  size_t flush_bytes_ = 0;
  std::function<void(RollupMessages&)> flush_;
};

}  // namespace mare::rollup
