// Timestamps as readings carry them, converted to UTC microseconds:
//   "2024-01-21 10:06:04.095931"       space or T, no zone: UTC; 0 to 9 fraction digits
//   "2024-01-21T10:06:04Z"             ISO-8601 with Z ...
//   "2024-01-21T12:06:04.5+02:00"      ... or an offset (+02:00, +0200, +02)
//   1705831564, 1705831564.095931      epoch seconds (below 1e11)
//   1705831564095                      epoch milliseconds (1e11 up to 1e14)
// Fraction digits past microseconds are truncated.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/status.h"

namespace mare {

// On failure returns false and sets *why to a short explanation ("month 13 out of range").
bool ParseTimestampText(std::string_view text, int64_t* micros, std::string* why);
bool ParseTimestampEpoch(double value, int64_t* micros, std::string* why);

// For command lines and config: the text forms above, "now", or "now-1h"/"now+30s".
Result<int64_t> ParseTimeArgument(std::string_view text, int64_t now_us);

}  // namespace mare
