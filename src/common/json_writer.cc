#include "common/json_writer.h"

#include <fmt/compile.h>
#include <fmt/format.h>

#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstring>

#include "common/utf8.h"

namespace mare {

void AppendJsonString(std::string* out, std::string_view s) {
  out->push_back('"');
  size_t i = 0;
  while (i < s.size()) {
    // Bytes 0x20 to 0x7f but the quote and the backslash stand as they are: a run of them is
    // appended at once (most names and texts are nothing else).
    size_t run = i;
    while (run < s.size()) {
      auto u = static_cast<unsigned char>(s[run]);
      if (u < 0x20 || u >= 0x80 || u == '"' || u == '\\') break;
      ++run;
    }
    out->append(s.data() + i, run - i);
    i = run;
    if (i == s.size()) break;
    char c = s[i];
    if (static_cast<unsigned char>(c) < 0x80) {  // the quote, the backslash, below 0x20
      char escaped[6];
      out->append(escaped, static_cast<size_t>(PutJsonStringByte(escaped, c) - escaped));
    } else if (size_t n = Utf8SequenceAt(s, i); n > 0) {
      out->append(s.substr(i, n));
      i += n - 1;
    } else {
      // JSON text is UTF-8 (RFC 8259): a byte that is not, as in a statement quoted back in an
      // error, becomes U+FFFD, the replacement character, as decoders show it.
      out->append("\\ufffd");
    }
    ++i;
  }
  out->push_back('"');
}

void AppendJsonNumber(std::string* out, double v) {
  char buf[kMaxDoubleChars];
  out->append(buf, WriteJsonNumber(buf, v));
}

namespace {

// The shortest text of v when 1 <= |v| < 1e9 and v has one to six decimals, else nullptr.
// Scaled by 10^6 such a value is a whole number m that divides back to exactly v. Below 1e9 in
// magnitude the doubles are less than 10^-6 apart, so no other number of six decimals or
// fewer reads back as v: m / 10^6, without its trailing zeros, is the shortest text, the one
// fmt and std::to_chars write (both in fixed notation there). Whole numbers are left to them:
// std::to_chars writes 100000 as 1e+05.
char* WriteFewDecimals(char* p, double v) {
  double a = std::fabs(v);
  if (!(a >= 1 && a < 1e9)) return nullptr;
  double scaled = std::nearbyint(a * 1e6);
  if (scaled / 1e6 != a) return nullptr;
  auto m = static_cast<uint64_t>(scaled);
  uint64_t whole = m / 1'000'000, frac = m % 1'000'000;
  if (frac == 0) return nullptr;
  if (v < 0) *p++ = '-';
  p = std::to_chars(p, p + 20, whole).ptr;
  *p++ = '.';
  int digits = 6;
  while (frac % 10 == 0) {
    frac /= 10;
    --digits;
  }
  for (int k = digits - 1; k >= 0; --k) {
    p[k] = static_cast<char>('0' + frac % 10);
    frac /= 10;
  }
  return p + digits;
}

}  // namespace

char* WriteJsonNumber(char* p, double v) {
  if (!std::isfinite(v)) {
    std::memcpy(p, "null", 4);
    return p + 4;
  }
  if (char* end = WriteFewDecimals(p, v)) return end;
  return fmt::format_to(p, FMT_COMPILE("{}"), v);
}

char* WriteDouble(char* p, double v) {
  if (char* end = WriteFewDecimals(p, v)) return end;
  // From 2^63 on, fixed notation can be the shorter ("18446744073709552000"), and a JSON reader
  // takes that text for an integer too large for 64 bits (simdjson refuses it): scientific
  // notation reads as the double it is.
  if (std::fabs(v) >= 0x1p63) return std::to_chars(p, p + kMaxDoubleChars, v, std::chars_format::scientific).ptr;
  return std::to_chars(p, p + kMaxDoubleChars, v).ptr;
}

}  // namespace mare
