// Time as mare keeps it: int64 microseconds since the Unix epoch, UTC. Durations in config
// and on the command line are written "500ms", "30s", "5m", "1h", "7d" (or a bare number of
// seconds).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/status.h"

namespace mare {

constexpr int64_t kMicrosPerSecond = 1'000'000;
constexpr int64_t kMicrosPerMinute = 60 * kMicrosPerSecond;
constexpr int64_t kMicrosPerHour = 3'600 * kMicrosPerSecond;
constexpr int64_t kMicrosPerDay = 86'400 * kMicrosPerSecond;

// Wall clock, UTC microseconds.
int64_t NowMicros();
// Monotonic clock in microseconds, for measuring intervals.
int64_t MonotonicMicros();

// A UTC instant split into its calendar fields.
struct CivilTime {
  int year;
  unsigned month, day, hour, minute, second;
  int64_t micros;  // within the second
};
CivilTime ToCivil(int64_t micros);

// "2024-01-21T10:06:04.095931Z" (always six fraction digits).
std::string FormatTimestamp(int64_t micros);
// Appends FormatTimestamp's text to *out without allocating (for hot paths).
void AppendTimestamp(std::string* out, int64_t micros);

// Parses "250us", "500ms", "30s", "5m", "1h", "7d", "2w" or a bare number of seconds.
// Fractions are allowed ("1.5h"). Negative durations are rejected.
Result<int64_t> ParseDurationMicros(std::string_view text);
// The inverse, choosing the largest exact unit: 604800000000 -> "7d".
std::string FormatDuration(int64_t micros);

// Parses "1048576", "64KiB", "128MiB", "10GiB" (also KB/MB/GB as powers of ten).
Result<int64_t> ParseByteSize(std::string_view text);

}  // namespace mare
