// Writing JSON text (never parsing it: that is simdjson's job). Enough for API answers and
// tool output: escaped strings, numbers that round-trip.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace mare {

// Appends s as a JSON string literal, quotes included, escaping per RFC 8259. JSON is UTF-8:
// bytes of s that are not well-formed UTF-8 are written as \ufffd, one per byte.
void AppendJsonString(std::string* out, std::string_view s);

// Writes at p byte c of a JSON string's contents, escaped as RFC 8259 requires: the quote and the
// backslash, \n, \r and \t in their short forms, other bytes below 0x20 as \u00XX; at most 6
// bytes; returns the end. Bytes from 0x80 stand as they are: the caller vouches for UTF-8 (as
// AppendJsonString checks it). The one escaping rule of every JSON mare writes.
inline char* PutJsonStringByte(char* p, char c) {
  auto u = static_cast<unsigned char>(c);
  if (u >= 0x20 && c != '"' && c != '\\') {
    *p = c;
    return p + 1;
  }
  p[0] = '\\';
  switch (c) {
    case '"': p[1] = '"'; return p + 2;
    case '\\': p[1] = '\\'; return p + 2;
    case '\n': p[1] = 'n'; return p + 2;
    case '\r': p[1] = 'r'; return p + 2;
    case '\t': p[1] = 't'; return p + 2;
    default: {
      static constexpr char kHex[] = "0123456789abcdef";
      p[1] = 'u';
      p[2] = '0';
      p[3] = '0';
      p[4] = kHex[u >> 4];
      p[5] = kHex[u & 15];
      return p + 6;
    }
  }
}

// Appends a finite double in shortest round-trip form, or null when not finite.
void AppendJsonNumber(std::string* out, double v);

// Room WriteJsonNumber and WriteDouble need at p: the longest text either writes.
constexpr size_t kMaxDoubleChars = 32;

// Writes at p the text AppendJsonNumber appends (fmt's "{}": shortest round trip, fixed
// notation from 1e-4 to 1e16, "null" when not finite); returns the end.
char* WriteJsonNumber(char* p, double v);

// Writes at p the text std::to_chars(p, p + kMaxDoubleChars, v) writes (the shortest round
// trip, in whichever of fixed and scientific notation is shorter), except that from 2^63 in
// magnitude it is always scientific, so no JSON reader takes it for an integer; returns the end.
char* WriteDouble(char* p, double v);

// Both are quicker than fmt and std::to_chars for a reading's usual values (1 <= |v| < 1e9 with
// one to six decimals), for which they write the same text: fixed notation, no trailing zero.

}  // namespace mare
