// LineMasks: the bytes of line protocol classified 64 at a time into bit masks (simdjson's stage
// 1), so that LineProtocolParser finds a line's end and each token's end by counting zeros in a
// word rather than by looking at its bytes one by one; AVX2 where the CPU has it, else portable.
//
//   LineMasks masks;
//   masks.Classify(data.data(), data.size());  // bit i of block b: byte b * 64 + i
//   size_t end = masks.Next(&LineMasks::Block::separators, pos, line_end);
//   bool odd = masks.Any(&LineMasks::Block::not_name, token_at, end);
//
// Escapes as the parser reads them: a backslash takes the byte after it, whatever it is, so a
// separator that follows an odd run of backslashes is none. A run is taken from where the
// classified bytes start; the parser classifies from a line's start, and a token never starts
// right after a backslash (it follows a ',', '=', blank or line end), so a run never reaches a
// token from before it. A line feed always separates (a line ends at it, escaped or not).
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace mare {

class LineMasks {
 public:
  struct Block {
    uint64_t separators;  // ',', ' ', tab, '=' not escaped, and '\n': where tokens end (which of them
                          // ends which token, the parser asks the byte)
    uint64_t newlines;    // '\n'
    uint64_t not_name;    // not [A-Za-z0-9_]: a token without any is plain, unescaped and a field name's bytes
  };

  // Classifies [data, data + size), replacing what was classified before; AVX2 when the CPU has it.
  void Classify(const char* data, size_t size);
  // As Classify, with the portable code or the AVX2 code (which the CPU must have: HaveAvx2).
  void ClassifyPortable(const char* data, size_t size);
  void ClassifyAvx2(const char* data, size_t size);
  static bool HaveAvx2();

  // The first position in [pos, limit) with its bit set in `mask`, or limit (limit <= size()).
  [[gnu::always_inline]] size_t Next(uint64_t Block::*mask, size_t pos, size_t limit) const {
    const uint64_t bits = blocks_[pos >> 6].*mask >> (pos & 63);
    if (bits) return Min(pos + static_cast<size_t>(std::countr_zero(bits)), limit);
    return NextFromBlock(mask, (pos >> 6) + 1, limit);
  }
  // Whether any position in [from, to) has its bit set in `mask`.
  [[gnu::always_inline]] bool Any(uint64_t Block::*mask, size_t from, size_t to) const {
    if (to - from < 64 && (from >> 6) == ((to - 1) >> 6)) {  // within one block (or empty)
      return (blocks_[from >> 6].*mask >> (from & 63)) & ((uint64_t{1} << (to - from)) - 1);
    }
    return AnyAcross(mask, from, to);
  }
  size_t size() const { return size_; }
  const std::vector<Block>& blocks() const { return blocks_; }

 private:
  static size_t Min(size_t a, size_t b) { return a < b ? a : b; }
  size_t NextFromBlock(uint64_t Block::*mask, size_t block, size_t limit) const;
  bool AnyAcross(uint64_t Block::*mask, size_t from, size_t to) const;
  std::vector<Block> blocks_;  // one more than the bytes need, empty: Next may look at it
  size_t size_ = 0;
};

}  // namespace mare
