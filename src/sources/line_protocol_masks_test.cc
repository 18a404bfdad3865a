// LineMasks against the byte-by-byte scan it replaces: on random bytes rich in separators and
// backslashes, the AVX2 and portable classifiers make the same masks, and the first stop after
// every position is where a scan that lets each backslash take the next byte stops.
#include "sources/line_protocol_masks.h"

#include <gtest/gtest.h>

#include <cctype>
#include <random>
#include <string>

namespace mare {
namespace {

std::string RandomBytes(std::mt19937_64& rng, size_t size) {
  static constexpr char kCommon[] = ",= \t\\\n\"_aZ09-.";
  std::string s(size, '\0');
  for (char& c : s) {
    const uint64_t r = rng();
    c = r % 3 == 0 ? static_cast<char>(r >> 8) : kCommon[(r >> 8) % (sizeof(kCommon) - 1)];
  }
  return s;
}

// The end of a token starting at `pos` in [pos, limit): the first of `stops` not taken by a
// backslash, or limit; backslashes counted from `from` (a line's start).
size_t ScanEnd(const std::string& s, size_t from, size_t pos, size_t limit, std::string_view stops) {
  bool escaped = false;
  for (size_t i = from; i < pos; ++i) escaped = !escaped && s[i] == '\\';
  for (size_t i = pos; i < limit; ++i) {
    if (s[i] == '\n' || (!escaped && stops.find(s[i]) != std::string_view::npos)) return i;
    escaped = !escaped && s[i] == '\\';
  }
  return limit;
}

bool NameByte(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; }

TEST(LineMasks, Avx2AndPortableAgree) {
  if (!LineMasks::HaveAvx2()) GTEST_SKIP() << "this CPU has no AVX2: only the portable classifier runs here";
  std::mt19937_64 rng(17);
  LineMasks avx2, portable;
  for (int round = 0; round < 2000; ++round) {
    const std::string s = RandomBytes(rng, rng() % 700);
    avx2.ClassifyAvx2(s.data(), s.size());
    portable.ClassifyPortable(s.data(), s.size());
    ASSERT_EQ(avx2.blocks().size(), portable.blocks().size());
    for (size_t b = 0; b < avx2.blocks().size(); ++b) {
      const auto& x = avx2.blocks()[b];
      const auto& y = portable.blocks()[b];
      ASSERT_EQ(x.separators, y.separators) << "round " << round << " block " << b;
      ASSERT_EQ(x.newlines, y.newlines) << "round " << round << " block " << b;
      ASSERT_EQ(x.not_name, y.not_name) << "round " << round << " block " << b;
    }
  }
}

TEST(LineMasks, StopsAsAByteByByteScan) {
  std::mt19937_64 rng(18);
  for (bool use_avx2 : {false, true}) {
    if (use_avx2 && !LineMasks::HaveAvx2()) continue;
    LineMasks masks;
    for (int round = 0; round < 300; ++round) {
      const std::string s = RandomBytes(rng, rng() % 300);
      if (use_avx2) masks.ClassifyAvx2(s.data(), s.size());
      else masks.ClassifyPortable(s.data(), s.size());
      ASSERT_EQ(masks.size(), s.size());
      // Every line (up to a line feed), every start in it, as the parser asks.
      size_t from = 0;
      while (from <= s.size()) {
        size_t end = s.find('\n', from);
        if (end == std::string::npos) end = s.size();
        ASSERT_EQ(masks.Next(&LineMasks::Block::newlines, from, s.size()), end);
        for (size_t pos = from; pos <= end; ++pos) {
          ASSERT_EQ(masks.Next(&LineMasks::Block::separators, pos, end), ScanEnd(s, from, pos, end, ", \t="))
              << "round " << round << " pos " << pos;
          for (size_t to = pos; to <= end && to < pos + 130; ++to) {
            bool any = false;
            for (size_t i = pos; i < to; ++i) any |= !NameByte(s[i]);
            ASSERT_EQ(masks.Any(&LineMasks::Block::not_name, pos, to), any) << "round " << round << " " << pos << ".." << to;
          }
        }
        from = end + 1;
      }
    }
  }
}

}  // namespace
}  // namespace mare
