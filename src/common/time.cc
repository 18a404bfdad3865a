#include "common/time.h"

#include <fmt/format.h>

#include <charconv>
#include <chrono>
#include <cmath>
#include <iterator>

namespace mare {

int64_t NowMicros() {
  using namespace std::chrono;
  return duration_cast<microseconds>(system_clock::now().time_since_epoch()).count();
}

int64_t MonotonicMicros() {
  using namespace std::chrono;
  return duration_cast<microseconds>(steady_clock::now().time_since_epoch()).count();
}

CivilTime ToCivil(int64_t micros) {
  using namespace std::chrono;
  int64_t days = micros / kMicrosPerDay;
  int64_t rem = micros % kMicrosPerDay;
  if (rem < 0) {
    rem += kMicrosPerDay;
    days -= 1;
  }
  year_month_day ymd{sys_days{std::chrono::days{days}}};
  auto secs = static_cast<unsigned>(rem / kMicrosPerSecond);
  return {static_cast<int>(ymd.year()), static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()),
          secs / 3600, secs / 60 % 60, secs % 60, rem % kMicrosPerSecond};
}

std::string FormatTimestamp(int64_t micros) {
  std::string out;
  AppendTimestamp(&out, micros);
  return out;
}

void AppendTimestamp(std::string* out, int64_t micros) {
  CivilTime t = ToCivil(micros);
  if (t.year < 0 || t.year > 9999) {
    fmt::format_to(std::back_inserter(*out), "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z", t.year, t.month, t.day,
                   t.hour, t.minute, t.second, t.micros);
    return;
  }
  char b[27];
  auto digits = [&b](int at, int64_t v, int n) {
    for (int i = at + n - 1; i >= at; --i, v /= 10) b[i] = static_cast<char>('0' + v % 10);
  };
  digits(0, t.year, 4);
  b[4] = '-';
  digits(5, t.month, 2);
  b[7] = '-';
  digits(8, t.day, 2);
  b[10] = 'T';
  digits(11, t.hour, 2);
  b[13] = ':';
  digits(14, t.minute, 2);
  b[16] = ':';
  digits(17, t.second, 2);
  b[19] = '.';
  digits(20, t.micros, 6);
  b[26] = 'Z';
  out->append(b, sizeof b);
}

namespace {

// Splits "12.5ms" into 12.5 and "ms". Returns false if there is no leading number.
bool SplitNumber(std::string_view text, double* number, std::string_view* unit) {
  const char* begin = text.data();
  const char* end = begin + text.size();
  auto [ptr, ec] = std::from_chars(begin, end, *number);
  if (ec != std::errc() || !std::isfinite(*number)) return false;
  *unit = std::string_view(ptr, static_cast<size_t>(end - ptr));
  while (!unit->empty() && unit->front() == ' ') unit->remove_prefix(1);
  return true;
}

// n units of `scale` as an int64, or an error where it does not fit (llround of a larger value
// is unspecified: "1e300s" read as a negative duration).
Result<int64_t> ScaledInteger(double n, double scale, std::string_view what, std::string_view text) {
  double value = std::round(n * scale);
  if (!(value < 9.2e18)) return Status::InvalidArgument(fmt::format("{} '{}' is too large", what, text));
  return static_cast<int64_t>(value);
}

}  // namespace

Result<int64_t> ParseDurationMicros(std::string_view text) {
  double n = 0;
  std::string_view unit;
  if (!SplitNumber(text, &n, &unit) || n < 0) {
    return Status::InvalidArgument(fmt::format("invalid duration '{}': expected e.g. 500ms, 30s, 5m, 1h, 7d", text));
  }
  double scale;
  if (unit.empty() || unit == "s") scale = 1e6;
  else if (unit == "us") scale = 1;
  else if (unit == "ms") scale = 1e3;
  else if (unit == "m" || unit == "min") scale = 60e6;
  else if (unit == "h") scale = 3600e6;
  else if (unit == "d") scale = 86400e6;
  else if (unit == "w") scale = 7 * 86400e6;
  else return Status::InvalidArgument(fmt::format("invalid duration unit '{}' in '{}': use us, ms, s, m, h, d or w", unit, text));
  // At most 100 years: every setting means far less, and a longer one would overflow a clock
  // (steady_clock counts nanoseconds in an int64) when a wait adds it to now.
  constexpr int64_t kMaxMicros = 36500 * kMicrosPerDay;
  Result<int64_t> micros = ScaledInteger(n, scale, "duration", text);
  if (micros.ok() && *micros > kMaxMicros) {
    return Status::InvalidArgument(fmt::format("duration '{}' is too large: at most 36500d", text));
  }
  return micros;
}

std::string FormatDuration(int64_t micros) {
  struct Unit { int64_t us; const char* name; };
  static constexpr Unit kUnits[] = {{7 * kMicrosPerDay, "w"}, {kMicrosPerDay, "d"}, {3600 * kMicrosPerSecond, "h"},
                                    {60 * kMicrosPerSecond, "m"}, {kMicrosPerSecond, "s"}, {1000, "ms"}};
  if (micros == 0) return "0s";
  for (const Unit& u : kUnits) {
    if (micros % u.us == 0) return fmt::format("{}{}", micros / u.us, u.name);
  }
  return fmt::format("{}us", micros);
}

Result<int64_t> ParseByteSize(std::string_view text) {
  double n = 0;
  std::string_view unit;
  if (!SplitNumber(text, &n, &unit) || n < 0) {
    return Status::InvalidArgument(fmt::format("invalid size '{}': expected e.g. 65536, 64KiB, 128MiB, 10GiB", text));
  }
  double scale;
  if (unit.empty() || unit == "B") scale = 1;
  else if (unit == "KiB") scale = 1024.0;
  else if (unit == "MiB") scale = 1024.0 * 1024;
  else if (unit == "GiB") scale = 1024.0 * 1024 * 1024;
  else if (unit == "TiB") scale = 1024.0 * 1024 * 1024 * 1024;
  else if (unit == "KB") scale = 1e3;
  else if (unit == "MB") scale = 1e6;
  else if (unit == "GB") scale = 1e9;
  else if (unit == "TB") scale = 1e12;
  else return Status::InvalidArgument(fmt::format("invalid size unit '{}' in '{}': use B, KiB, MiB, GiB, TiB", unit, text));
  return ScaledInteger(n, scale, "size", text);
}

}  // namespace mare
