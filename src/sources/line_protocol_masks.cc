#include "sources/line_protocol_masks.h"

#include <immintrin.h>

#include <cstring>

namespace mare {
namespace {

// The bytes a backslash escapes in a block, given its backslashes and whether the block's first
// byte is escaped (*carry, updated for the next block): each backslash not escaped itself takes
// the byte after it. Backslashes are rare in line protocol: one at a time is enough.
uint64_t Escaped(uint64_t backslashes, uint64_t* carry) {
  uint64_t escaped = *carry;
  *carry = 0;
  while (backslashes) {
    const int at = std::countr_zero(backslashes);
    backslashes &= backslashes - 1;
    if (escaped >> at & 1) continue;
    if (at == 63) {
      *carry = 1;
    } else {
      escaped |= uint64_t{2} << at;
    }
  }
  return escaped;
}

// One block's masks from its raw ones: escaped separators are none, line feeds always separate.
LineMasks::Block Finish(uint64_t separators, uint64_t newlines, uint64_t backslashes, uint64_t not_name,
                        uint64_t* carry) {
  if (backslashes | *carry) separators &= ~Escaped(backslashes, carry);
  return {separators | newlines, newlines, not_name};
}

bool IsNameByte(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

// AVX2 code, compiled for it whatever -march says (a lambda in a function would not be) and run
// only where the CPU has it.
#define MARE_AVX2 __attribute__((target("avx2")))

// A byte's classes, simdjson's way: the AND of one table looked up by its low nibble and one by
// its high nibble (bytes from 0x80 find nothing in the high one). Name bytes: 0x30-0x39 (kDigit),
// 0x41-0x4F and 0x61-0x6F (kLetterLow), 0x50-0x5A and 0x70-0x7A (kLetterHigh), '_' 0x5F.
enum : uint8_t {
  kDigit = 0x01,
  kLetterLow = 0x02,
  kLetterHigh = 0x04,
  kUnderscore = 0x08,
  kCommaSpace = 0x10,  // 0x2C, 0x20
  kTabNewline = 0x20,  // 0x09, 0x0A
  kEquals = 0x40,      // 0x3D
  kBackslash = 0x80,   // 0x5C: the top bit, which movemask takes as it is
  kName = kDigit | kLetterLow | kLetterHigh | kUnderscore,
  kSeparator = kCommaSpace | kTabNewline | kEquals,
};
constexpr uint8_t kByLow[16] = {
    kDigit | kLetterHigh | kCommaSpace,                    // 0: '0' 'P' 'p' ' '
    kDigit | kLetterLow | kLetterHigh,                     // 1
    kDigit | kLetterLow | kLetterHigh,                     // 2
    kDigit | kLetterLow | kLetterHigh,                     // 3
    kDigit | kLetterLow | kLetterHigh,                     // 4
    kDigit | kLetterLow | kLetterHigh,                     // 5
    kDigit | kLetterLow | kLetterHigh,                     // 6
    kDigit | kLetterLow | kLetterHigh,                     // 7
    kDigit | kLetterLow | kLetterHigh,                     // 8
    kDigit | kLetterLow | kLetterHigh | kTabNewline,       // 9: '9' 'I' 'Y' tab
    kLetterLow | kLetterHigh | kTabNewline,                // A: 'J' 'Z' '\n'
    kLetterLow,                                            // B
    kLetterLow | kCommaSpace | kBackslash,                 // C: 'L' ',' '\\'
    kLetterLow | kEquals,                                  // D: 'M' '='
    kLetterLow,                                            // E
    kLetterLow | kUnderscore,                              // F: 'O' '_'
};
constexpr uint8_t kByHigh[16] = {
    kTabNewline, 0, kCommaSpace, kDigit | kEquals, kLetterLow, kLetterHigh | kUnderscore | kBackslash, kLetterLow,
    kLetterHigh, 0, 0, 0, 0, 0, 0, 0, 0,
};

MARE_AVX2 inline uint64_t Bits(__m256i lo, __m256i hi) {
  return static_cast<uint64_t>(static_cast<uint32_t>(_mm256_movemask_epi8(lo))) |
         static_cast<uint64_t>(static_cast<uint32_t>(_mm256_movemask_epi8(hi))) << 32;
}

struct Half {
  __m256i separator, newline, backslash, name;  // a byte of all ones where true (backslash: its top bit)
};

MARE_AVX2 inline Half ClassifyHalf(__m256i v, __m256i by_low, __m256i by_high) {
  const __m256i low = _mm256_and_si256(v, _mm256_set1_epi8(0x0f));
  const __m256i high = _mm256_and_si256(_mm256_srli_epi16(v, 4), _mm256_set1_epi8(0x0f));
  const __m256i classes = _mm256_and_si256(_mm256_shuffle_epi8(by_low, low), _mm256_shuffle_epi8(by_high, high));
  const __m256i zero = _mm256_setzero_si256();
  return Half{_mm256_cmpeq_epi8(_mm256_and_si256(classes, _mm256_set1_epi8(kSeparator)), zero),  // not a separator
              _mm256_cmpeq_epi8(v, _mm256_set1_epi8('\n')), classes,
              _mm256_cmpeq_epi8(_mm256_and_si256(classes, _mm256_set1_epi8(kName)), zero)};  // not a name byte
}

}  // namespace

bool LineMasks::HaveAvx2() {
  static const bool have = __builtin_cpu_supports("avx2");
  return have;
}

void LineMasks::Classify(const char* data, size_t size) {
  if (HaveAvx2()) {
    ClassifyAvx2(data, size);
  } else {
    ClassifyPortable(data, size);
  }
}

size_t LineMasks::NextFromBlock(uint64_t Block::*mask, size_t block, size_t limit) const {
  for (; block << 6 < limit; ++block) {
    if (uint64_t m = blocks_[block].*mask) return Min((block << 6) + static_cast<size_t>(std::countr_zero(m)), limit);
  }
  return limit;
}

bool LineMasks::AnyAcross(uint64_t Block::*mask, size_t from, size_t to) const {
  if (from >= to) return false;
  size_t b = from >> 6;
  const size_t last = (to - 1) >> 6;
  uint64_t bits = blocks_[b].*mask & (~uint64_t{0} << (from & 63));
  for (; b < last; bits = blocks_[++b].*mask) {
    if (bits) return true;
  }
  return (bits & (~uint64_t{0} >> (63 - ((to - 1) & 63)))) != 0;
}

void LineMasks::ClassifyPortable(const char* data, size_t size) {
  size_ = size;
  blocks_.resize((size + 63) / 64 + 1);
  uint64_t carry = 0;
  for (size_t b = 0; b * 64 < size; ++b) {
    uint64_t separators = 0, newlines = 0, backslashes = 0, not_name = 0;
    const size_t n = size - b * 64 < 64 ? size - b * 64 : 64;
    for (size_t i = 0; i < n; ++i) {
      const auto c = static_cast<unsigned char>(data[b * 64 + i]);
      const uint64_t bit = uint64_t{1} << i;
      if (c == ',' || c == ' ' || c == '\t' || c == '=' || c == '\n') separators |= bit;
      if (c == '\n') newlines |= bit;
      if (c == '\\') backslashes |= bit;
      if (!IsNameByte(c)) not_name |= bit;
    }
    if (n < 64) not_name |= ~uint64_t{0} << n;  // past the end, as the AVX2 code's zero padding
    blocks_[b] = Finish(separators, newlines, backslashes, not_name, &carry);
  }
  blocks_.back() = Block{};
}

MARE_AVX2 void LineMasks::ClassifyAvx2(const char* data, size_t size) {
  size_ = size;
  blocks_.resize((size + 63) / 64 + 1);
  uint64_t carry = 0;
  const __m256i by_low = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(kByLow)));
  const __m256i by_high = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(kByHigh)));
  for (size_t b = 0; b * 64 < size; ++b) {
    const char* p = data + b * 64;
    __m256i lo, hi;
    if (size - b * 64 >= 64) {
      lo = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
      hi = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 32));
    } else {  // the last, short block: zero padded
      alignas(32) char padded[64] = {};
      std::memcpy(padded, p, size - b * 64);
      lo = _mm256_load_si256(reinterpret_cast<const __m256i*>(padded));
      hi = _mm256_load_si256(reinterpret_cast<const __m256i*>(padded + 32));
    }
    const Half l = ClassifyHalf(lo, by_low, by_high), h = ClassifyHalf(hi, by_low, by_high);
    blocks_[b] = Finish(~Bits(l.separator, h.separator), Bits(l.newline, h.newline), Bits(l.backslash, h.backslash),
                        Bits(l.name, h.name), &carry);
  }
  blocks_.back() = Block{};
}

}  // namespace mare
