// UTF-8 well-formedness (RFC 3629), for text that must be UTF-8 on its way out (JSON answers)
// or in (SQL statements) and may come from anyone.
#pragma once

#include <cstddef>
#include <string_view>

namespace mare {

// The length (1 to 4) of the well-formed UTF-8 sequence starting at s[i], or 0 if there is none
// there: a stray continuation byte, an overlong form, a surrogate, beyond U+10FFFF, or cut short.
inline size_t Utf8SequenceAt(std::string_view s, size_t i) {
  auto byte = [&](size_t k) { return i + k < s.size() ? static_cast<unsigned char>(s[i + k]) : 0u; };
  auto in = [](unsigned c, unsigned lo, unsigned hi) { return c >= lo && c <= hi; };
  unsigned b0 = byte(0), b1 = byte(1);
  if (i >= s.size()) return 0;
  if (b0 < 0x80) return 1;
  if (in(b0, 0xC2, 0xDF)) return in(b1, 0x80, 0xBF) ? 2 : 0;
  unsigned lo = b0 == 0xE0 ? 0xA0 : b0 == 0xF0 ? 0x90 : 0x80;
  unsigned hi = b0 == 0xED ? 0x9F : b0 == 0xF4 ? 0x8F : 0xBF;
  if (in(b0, 0xE0, 0xEF)) return in(b1, lo, hi) && in(byte(2), 0x80, 0xBF) ? 3 : 0;
  if (in(b0, 0xF0, 0xF4)) return in(b1, lo, hi) && in(byte(2), 0x80, 0xBF) && in(byte(3), 0x80, 0xBF) ? 4 : 0;
  return 0;
}

// The offset of the first byte of s that is not part of well-formed UTF-8; s.size() if none.
inline size_t FirstNonUtf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    if (static_cast<unsigned char>(s[i]) < 0x80) {
      ++i;
      continue;
    }
    size_t n = Utf8SequenceAt(s, i);
    if (n == 0) return i;
    i += n;
  }
  return s.size();
}

}  // namespace mare
