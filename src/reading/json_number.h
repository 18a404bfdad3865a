// CorrectLongNumber: a JSON number read by simdjson's On Demand API, read again when it has more
// digits than 64 bits hold, so that every reader of readings gets the correctly rounded double.
//
// Debian 12's simdjson (3.0.1) misreads such a number when its integer part is 0:
// "0.95000000000000000000" reads 0.0277 (simdjson issue #2093, fixed in 3.6.3). Found by
// fuzz/line_protocol, which compares the line protocol's own reading of a number with ingest's.
// Numbers of 19 digits or fewer, which is every number mare writes itself, take one compare.
#pragma once

#include <charconv>
#include <string_view>
#include <system_error>

namespace mare {

// `token` is the number's raw JSON token (taken before get_double, which moves past it; it may
// run on with whitespace); `*value` is what get_double made of it.
inline void CorrectLongNumber(std::string_view token, double* value) {
  if (token.size() < 20) return;  // fewer than 20 digits cannot overflow 64 bits
  size_t end = 0;
  int digits = 0;
  bool mantissa = true;
  for (; end < token.size(); ++end) {
    char c = token[end];
    if (c >= '0' && c <= '9') {
      digits += mantissa;
    } else if (c == 'e' || c == 'E') {
      mantissa = false;
    } else if (c != '-' && c != '+' && c != '.') {
      break;
    }
  }
  if (digits <= 19) return;
  double again = 0;
  auto [ptr, ec] = std::from_chars(token.data(), token.data() + end, again);
  if (ec == std::errc() && ptr == token.data() + end) *value = again;
}

}  // namespace mare
