// Timestamps as readings carry them, converted to UTC microseconds:
//   "2024-01-21 10:06:04.095931"       space or T, no zone: UTC; 0 to 9 fraction digits
//   "2024-01-21T10:06:04Z"             ISO-8601 with Z ...
//   "2024-01-21T12:06:04.5+02:00"      ... or an offset (+02:00, +0200, +02)
//   1705831564, 1705831564.095931      epoch seconds (below 1e11)
//   1705831564095                      epoch milliseconds (1e11 up to 1e14)
// Fraction digits past microseconds are truncated.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/status.h"

namespace mare {

// The times a reading may have: four-digit years from 1900, in UTC, from 1900-01-01 00:00:00
// UTC to before 10000-01-01 00:00:00 UTC. A time written with a zone or an offset is checked
// once it is applied: "1900-01-01T00:00:00+08:00" is 1899-12-31 16:00:00 UTC, outside.
constexpr int64_t kFirstReadingMicros = -2'208'988'800'000'000;      // 1900-01-01 00:00:00 UTC
constexpr int64_t kAfterLastReadingMicros = 253'402'300'800'000'000;  // 10000-01-01 00:00:00 UTC
constexpr bool InReadingYears(int64_t utc_micros) {
  return utc_micros >= kFirstReadingMicros && utc_micros < kAfterLastReadingMicros;
}
// Why the time `text` gives, utc_micros, is refused: "'TEXT' is 1899-12-31 16:00:00 UTC,
// outside the years 1900 to 9999". The one wording for ingest, archives and tables.
std::string OutsideReadingYearsReason(std::string_view text, int64_t utc_micros);
// "YYYY-MM-DD HH:MM:SS UTC": a time in the words of the messages above, to the second.
std::string UtcSecondsText(int64_t utc_micros);

// On failure returns false and sets *why to a short explanation ("month 13 out of range").
// A time written without a zone is local time at local_offset_micros (an archive's
// --utc-offset; 0: UTC). The years are checked on the UTC time (InReadingYears), so a time
// written in 1899 west of UTC may be 1900 in UTC; the year as written must be from 1899.
bool ParseTimestampText(std::string_view text, int64_t* micros, std::string* why, int64_t local_offset_micros = 0);
bool ParseTimestampEpoch(double value, int64_t* micros, std::string* why);

// For archives and command lines, more forgiving than readings: surrounding spaces, a bare
// date ("2024-01-21": midnight UTC), a trailing " UTC", or an epoch number written as text.
// A time without a zone (" UTC" is one) is local time at local_offset_micros, as above.
Result<int64_t> ParseTimestampLoose(std::string_view text, int64_t local_offset_micros = 0);

// ParseTimestampLoose, or "now", "now-1h", "now+30s".
Result<int64_t> ParseTimeArgument(std::string_view text, int64_t now_us);

// UTC microseconds of a civil date and time; InvalidArgument for an impossible one (month 13,
// February 30, hour 24, ...).
Result<int64_t> CivilToMicros(int year, int month, int day, int hour, int minute, int second);

// The observatory's form, as readings carry it: "2024-01-21 10:06:04.095931" (UTC, space,
// six fraction digits, no zone). Writes exactly kReadingTimeLength chars, no terminator.
constexpr size_t kReadingTimeLength = 26;
void FormatReadingTime(int64_t micros, char* out);
std::string FormatReadingTime(int64_t micros);

}  // namespace mare
