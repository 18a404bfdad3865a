// Comparing and copying short byte strings (keys, field names, sensor ids: most under 16 bytes)
// with two overlapping loads or stores of 8, 4 or 1 bytes instead of a call to memcmp or memcpy.
#pragma once

#include <cstdint>
#include <cstring>
#include <string_view>

namespace mare {

// Whether a and b are the same bytes. A call to memcmp per key was 4 to 8 % of the hot threads
// under line-protocol load (perf, bench/lineproto.py).
[[gnu::always_inline]] inline bool ShortBytesEqual(std::string_view a, std::string_view b) {
  const size_t n = a.size();
  if (n != b.size()) return false;
  const char* p = a.data();
  const char* q = b.data();
  if (n >= 8 && n <= 16) {
    uint64_t x[4];
    std::memcpy(&x[0], p, 8);
    std::memcpy(&x[1], q, 8);
    std::memcpy(&x[2], p + n - 8, 8);
    std::memcpy(&x[3], q + n - 8, 8);
    return ((x[0] ^ x[1]) | (x[2] ^ x[3])) == 0;
  }
  if (n >= 4 && n < 8) {
    uint32_t x[4];
    std::memcpy(&x[0], p, 4);
    std::memcpy(&x[1], q, 4);
    std::memcpy(&x[2], p + n - 4, 4);
    std::memcpy(&x[3], q + n - 4, 4);
    return ((x[0] ^ x[1]) | (x[2] ^ x[3])) == 0;
  }
  if (n == 0) return true;
  if (n < 4) return p[0] == q[0] && p[n / 2] == q[n / 2] && p[n - 1] == q[n - 1];  // every byte of 1 to 3
  return std::memcmp(p, q, n) == 0;
}

// Copies s to out (which has room for s.size() bytes) and returns the end. Reads only s's bytes.
[[gnu::always_inline]] inline char* CopyShortBytes(char* out, std::string_view s) {
  const size_t n = s.size();
  const char* p = s.data();
  if (n >= 8 && n <= 16) {
    uint64_t a, b;
    std::memcpy(&a, p, 8);
    std::memcpy(&b, p + n - 8, 8);
    std::memcpy(out, &a, 8);
    std::memcpy(out + n - 8, &b, 8);
  } else if (n >= 4 && n < 8) {
    uint32_t a, b;
    std::memcpy(&a, p, 4);
    std::memcpy(&b, p + n - 4, 4);
    std::memcpy(out, &a, 4);
    std::memcpy(out + n - 4, &b, 4);
  } else if (n > 0 && n < 4) {
    out[0] = p[0];
    out[n / 2] = p[n / 2];
    out[n - 1] = p[n - 1];
  } else if (n > 16) {
    std::memcpy(out, p, n);
  }
  return out + n;
}

}  // namespace mare
