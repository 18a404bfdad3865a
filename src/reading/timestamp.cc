#include "reading/timestamp.h"

#include <fmt/format.h>

#include <chrono>
#include <cmath>

#include "common/time.h"

namespace mare {
namespace {

// Reads exactly n digits at text[*pos]; advances *pos.
bool Digits(std::string_view text, size_t* pos, int n, int* out) {
  if (*pos + static_cast<size_t>(n) > text.size()) return false;
  int v = 0;
  for (int i = 0; i < n; ++i) {
    char c = text[*pos + static_cast<size_t>(i)];
    if (c < '0' || c > '9') return false;
    v = v * 10 + (c - '0');
  }
  *pos += static_cast<size_t>(n);
  *out = v;
  return true;
}

bool Expect(std::string_view text, size_t* pos, char c) {
  if (*pos < text.size() && text[*pos] == c) {
    ++*pos;
    return true;
  }
  return false;
}

bool Fail(std::string* why, std::string message) {
  *why = std::move(message);
  return false;
}

}  // namespace

bool ParseTimestampText(std::string_view text, int64_t* micros, std::string* why) {
  size_t pos = 0;
  int year, month, day, hour, minute, second = 0;
  if (!Digits(text, &pos, 4, &year) || !Expect(text, &pos, '-') || !Digits(text, &pos, 2, &month) ||
      !Expect(text, &pos, '-') || !Digits(text, &pos, 2, &day)) {
    return Fail(why, fmt::format("'{}' is not a date-time: expected YYYY-MM-DD HH:MM:SS[.ffffff][Z|+HH:MM]", text));
  }
  if (!(Expect(text, &pos, ' ') || Expect(text, &pos, 'T') || Expect(text, &pos, 't')) ||
      !Digits(text, &pos, 2, &hour) || !Expect(text, &pos, ':') || !Digits(text, &pos, 2, &minute)) {
    return Fail(why, fmt::format("'{}' has no time of day: expected YYYY-MM-DD HH:MM:SS", text));
  }
  if (Expect(text, &pos, ':') && !Digits(text, &pos, 2, &second)) {
    return Fail(why, fmt::format("'{}': seconds must be two digits", text));
  }
  int64_t fraction_us = 0;
  if (Expect(text, &pos, '.')) {
    int digits = 0;
    int64_t scale = 100000;
    while (pos < text.size() && text[pos] >= '0' && text[pos] <= '9') {
      if (digits < 6) {
        fraction_us += (text[pos] - '0') * scale;
        scale /= 10;
      }
      ++digits;
      ++pos;
    }
    if (digits == 0 || digits > 9) return Fail(why, fmt::format("'{}': expected 1 to 9 fraction digits", text));
  }
  int64_t offset_s = 0;
  if (pos < text.size()) {
    char c = text[pos];
    if ((c == 'Z' || c == 'z') && pos + 1 == text.size()) {
      ++pos;
    } else if (c == '+' || c == '-') {
      ++pos;
      int oh = 0, om = 0;
      if (!Digits(text, &pos, 2, &oh)) return Fail(why, fmt::format("'{}': invalid zone offset", text));
      if (pos < text.size()) {
        Expect(text, &pos, ':');
        if (!Digits(text, &pos, 2, &om)) return Fail(why, fmt::format("'{}': invalid zone offset", text));
      }
      if (oh > 18 || om > 59) return Fail(why, fmt::format("'{}': zone offset out of range", text));
      offset_s = (c == '+' ? 1 : -1) * (oh * 3600 + om * 60);
    }
    if (pos != text.size()) return Fail(why, fmt::format("'{}': unexpected text after the time", text));
  }
  if (year < 1900) return Fail(why, fmt::format("'{}': year {} before 1900", text, year));
  if (month < 1 || month > 12) return Fail(why, fmt::format("'{}': month {} out of range", text, month));
  using namespace std::chrono;
  year_month_day ymd{std::chrono::year{year}, std::chrono::month{static_cast<unsigned>(month)},
                     std::chrono::day{static_cast<unsigned>(day)}};
  if (!ymd.ok()) return Fail(why, fmt::format("'{}': day {} out of range for {:04}-{:02}", text, day, year, month));
  if (hour > 23 || minute > 59 || second > 59) {
    return Fail(why, fmt::format("'{}': time of day {:02}:{:02}:{:02} out of range", text, hour, minute, second));
  }
  int64_t days = sys_days{ymd}.time_since_epoch().count();
  int64_t seconds = days * 86400 + hour * 3600 + minute * 60 + second - offset_s;
  *micros = seconds * kMicrosPerSecond + fraction_us;
  return true;
}

bool ParseTimestampEpoch(double value, int64_t* micros, std::string* why) {
  if (!std::isfinite(value) || value < 0) {
    return Fail(why, fmt::format("epoch time {} must be a positive number of seconds or milliseconds", value));
  }
  if (value < 1e11) {
    *micros = static_cast<int64_t>(std::llround(value * 1e6));
  } else if (value < 1e14) {
    *micros = static_cast<int64_t>(std::llround(value * 1e3));
  } else {
    return Fail(why, fmt::format("epoch time {} too large for seconds or milliseconds", value));
  }
  return true;
}

Result<int64_t> ParseTimeArgument(std::string_view text, int64_t now_us) {
  if (text.starts_with("now")) {
    std::string_view rest = text.substr(3);
    if (rest.empty()) return now_us;
    if (rest[0] != '-' && rest[0] != '+') return Status::InvalidArgument(fmt::format("invalid time '{}'", text));
    auto d = ParseDurationMicros(rest.substr(1));
    if (!d) return d.status();
    return rest[0] == '-' ? now_us - *d : now_us + *d;
  }
  int64_t us = 0;
  std::string why;
  if (ParseTimestampText(text, &us, &why)) return us;
  return Status::InvalidArgument(why);
}

}  // namespace mare
