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
