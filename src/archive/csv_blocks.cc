#include "archive/csv_blocks.h"

#include <bit>
#include <cstdint>
#include <cstring>

#if defined(__AVX2__) && defined(__BMI2__) && defined(__PCLMUL__)
#include <immintrin.h>
#define MARE_CSV_BLOCKS_AVX2 1
#endif

namespace mare::archive {
namespace {

#ifdef MARE_CSV_BLOCKS_AVX2
// Bit i of each mask: byte i of the block is one of these.
struct Block {
  uint64_t nl = 0, del = 0, cr = 0, digit = 0, dot = 0, minus = 0;
  uint64_t other = 0;  // none of the above
};

inline uint64_t Bits(__m256i lo, __m256i hi) {
  return static_cast<uint32_t>(_mm256_movemask_epi8(lo)) | (uint64_t{static_cast<uint32_t>(_mm256_movemask_epi8(hi))} << 32);
}

inline uint64_t Equal(__m256i lo, __m256i hi, char c) {
  const __m256i v = _mm256_set1_epi8(c);
  return Bits(_mm256_cmpeq_epi8(lo, v), _mm256_cmpeq_epi8(hi, v));
}

inline Block Classify(const char* p, char delimiter) {
  const __m256i lo = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
  const __m256i hi = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 32));
  Block b;
  b.nl = Equal(lo, hi, '\n');
  b.del = Equal(lo, hi, delimiter);
  b.cr = Equal(lo, hi, '\r');
  b.dot = Equal(lo, hi, '.');
  b.minus = Equal(lo, hi, '-');
  // '0' to '9' by signed compares: the bytes from 0x80 are negative, below '0'.
  const __m256i below = _mm256_set1_epi8('0' - 1), above = _mm256_set1_epi8('9' + 1);
  b.digit = Bits(_mm256_and_si256(_mm256_cmpgt_epi8(lo, below), _mm256_cmpgt_epi8(above, lo)),
                 _mm256_and_si256(_mm256_cmpgt_epi8(hi, below), _mm256_cmpgt_epi8(above, hi)));
  b.other = ~(b.nl | b.del | b.cr | b.digit | b.dot | b.minus);
  return b;
}

// Bit i: the parity of bits 0 to i of x (a carry-less multiplication by all ones).
inline uint64_t PrefixXor(uint64_t x) {
  const __m128i r = _mm_clmulepi64_si128(_mm_set_epi64x(0, static_cast<int64_t>(x)), _mm_set1_epi8(-1), 0);
  return static_cast<uint64_t>(_mm_cvtsi128_si64(r));
}

inline uint64_t LowBits(int n) { return n >= 64 ? ~uint64_t{0} : (uint64_t{1} << n) - 1; }
#endif

}  // namespace

const char* SkipCsvLines(const char* p, const char* end, size_t n, size_t* skipped) {
  size_t done = 0;
#ifdef MARE_CSV_BLOCKS_AVX2
  const __m256i nl = _mm256_set1_epi8('\n');
  while (done < n && end - p >= 64) {
    const __m256i lo = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
    const __m256i hi = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 32));
    const uint64_t m = Bits(_mm256_cmpeq_epi8(lo, nl), _mm256_cmpeq_epi8(hi, nl));
    const size_t count = static_cast<size_t>(std::popcount(m));
    if (done + count >= n) {
      // The (n - done)-th '\n' of the block: that bit of m alone, deposited by pdep.
      const uint64_t bit = _pdep_u64(uint64_t{1} << (n - done - 1), m);
      *skipped = n;
      return p + std::countr_zero(bit) + 1;
    }
    done += count;
    p += 64;
  }
#endif
  while (done < n && p < end) {
    const void* nl_at = std::memchr(p, '\n', static_cast<size_t>(end - p));
    p = nl_at == nullptr ? end : static_cast<const char*>(nl_at) + 1;  // a last line without its '\n' counts
    ++done;
  }
  *skipped = done;
  return p;
}

bool PlainCellsAfterFirst(const char* p, const char* end, char delimiter, size_t* lines) {
#ifndef MARE_CSV_BLOCKS_AVX2
  (void)p, (void)end, (void)delimiter, (void)lines;
  return false;
#else
  const size_t size = static_cast<size_t>(end - p);
  *lines = 0;
  if (size == 0) return true;
  const size_t blocks = (size + 63) / 64;
  char tail[64];
  // The last block's bytes past end read as line ends: they end no cell that is not ended.
  auto load = [&](size_t i) {
    const char* at = p + i * 64;
    if (end - at >= 64) return Classify(at, delimiter);
    std::memset(tail, '\n', sizeof tail);
    std::memcpy(tail, at, static_cast<size_t>(end - at));
    return Classify(tail, delimiter);
  };
  size_t newlines = 0;
  // Carried from one block to the next: the last line end or delimiter was a line end; the
  // last byte was in a line's first cell, a cell's end (delimiter, '\r' or '\n'), a digit; of
  // the points and cell ends, the last was a point.
  bool marker_nl = true, in_first = true, boundary_before_block = true, digit_before_block = false, point_last = false;
  Block cur = load(0);
  for (size_t i = 0; i < blocks; ++i) {
    Block next;
    if (i + 1 < blocks) {
      next = load(i + 1);
    } else {
      next.nl = 1;  // a line end after end
    }
    newlines += static_cast<size_t>(std::popcount(cur.nl & LowBits(static_cast<int>(size - i * 64))));
    // Each line's first cell, from its start to its first delimiter: the region between a line
    // end that follows a delimiter and the first delimiter after a line end, found on the
    // sequence of line ends and delimiters (pext) and filled by a prefix parity.
    const uint64_t markers = cur.nl | cur.del;
    const int count = std::popcount(markers);
    const uint64_t is_nl = _pext_u64(cur.nl, markers);
    const uint64_t after_nl = (is_nl << 1) | uint64_t{marker_nl};
    const uint64_t first = PrefixXor(_pdep_u64((is_nl ^ after_nl) & LowBits(count), markers)) ^ (in_first ? ~uint64_t{0} : 0);
    if (count > 0) marker_nl = (is_nl >> (count - 1)) & 1;
    in_first = first >> 63;
    // The other cells: [-]digits[.digits] or nothing.
    const uint64_t rest = ~first;
    const uint64_t boundary = cur.nl | cur.del | cur.cr;
    const uint64_t boundary_before = (boundary << 1) | uint64_t{boundary_before_block};
    const uint64_t digit_before = (cur.digit << 1) | uint64_t{digit_before_block};
    const uint64_t digit_after = (cur.digit >> 1) | (next.digit << 63);
    const uint64_t nl_after = (cur.nl >> 1) | (next.nl << 63);
    uint64_t bad = (cur.other & rest) | (cur.minus & rest & ~(boundary_before & digit_after)) |
                   (cur.dot & rest & ~(digit_before & digit_after)) | (cur.cr & ~nl_after);
    // Two points in one cell: one after the other in the sequence of points and cell ends.
    const uint64_t points = cur.dot & rest;
    const uint64_t stops = points | boundary;
    const int stop_count = std::popcount(stops);
    const uint64_t is_point = _pext_u64(points, stops);
    bad |= is_point & ((is_point << 1) | uint64_t{point_last});
    if (stop_count > 0) point_last = (is_point >> (stop_count - 1)) & 1;
    // (A block without a cell's end may be inside a cell too long to call a number here.)
    if (bad != 0 || boundary == 0) return false;
    boundary_before_block = boundary >> 63;
    digit_before_block = cur.digit >> 63;
    cur = next;
  }
  *lines = newlines + (end[-1] != '\n');
  return true;
#endif
}

}  // namespace mare::archive
