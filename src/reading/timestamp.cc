#include "reading/timestamp.h"

#include <fmt/format.h>

#include <charconv>
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

bool ParseTimestampText(std::string_view text, int64_t* micros, std::string* why, int64_t local_offset_micros) {
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
  if (Expect(text, &pos, '.') || Expect(text, &pos, ',')) {
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
  int64_t offset_us = local_offset_micros;  // the text's own zone replaces it
  if (pos < text.size()) {
    char c = text[pos];
    if ((c == 'Z' || c == 'z') && pos + 1 == text.size()) {
      offset_us = 0;
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
      offset_us = (c == '+' ? 1 : -1) * (oh * 3600 + om * 60) * kMicrosPerSecond;
    }
    if (pos != text.size()) return Fail(why, fmt::format("'{}': unexpected text after the time", text));
  }
  // 1899 as written may be 1900 in UTC (west of it): InReadingYears decides below.
  if (year < 1899) return Fail(why, fmt::format("'{}': year {} before 1900", text, year));
  if (month < 1 || month > 12) return Fail(why, fmt::format("'{}': month {} out of range", text, month));
  if (hour > 23 || minute > 59 || second > 59) {
    return Fail(why, fmt::format("'{}': time of day {:02}:{:02}:{:02} out of range", text, hour, minute, second));
  }
  Result<int64_t> civil = CivilToMicros(year, month, day, hour, minute, second);
  if (!civil) return Fail(why, fmt::format("'{}': day {} out of range for {:04}-{:02}", text, day, year, month));
  const int64_t utc = *civil + fraction_us - offset_us;
  if (!InReadingYears(utc)) return Fail(why, OutsideReadingYearsReason(text, utc));
  *micros = utc;
  return true;
}

std::string OutsideReadingYearsReason(std::string_view text, int64_t utc_micros) {
  return fmt::format("'{}' is {}, outside the years 1900 to 9999", text, UtcSecondsText(utc_micros));
}

std::string UtcSecondsText(int64_t utc_micros) {
  const CivilTime t = ToCivil(utc_micros);
  return fmt::format("{:04}-{:02}-{:02} {:02}:{:02}:{:02} UTC", t.year, t.month, t.day, t.hour, t.minute, t.second);
}

Result<int64_t> CivilToMicros(int year, int month, int day, int hour, int minute, int second) {
  using namespace std::chrono;
  year_month_day ymd{std::chrono::year{year}, std::chrono::month{static_cast<unsigned>(month)},
                     std::chrono::day{static_cast<unsigned>(day)}};
  if (month < 1 || month > 12 || day < 1 || !ymd.ok() || hour < 0 || hour > 23 || minute < 0 || minute > 59 ||
      second < 0 || second > 59) {
    return Status::InvalidArgument(
        fmt::format("invalid date {:04}-{:02}-{:02} {:02}:{:02}:{:02}", year, month, day, hour, minute, second));
  }
  int64_t days = sys_days{ymd}.time_since_epoch().count();
  return days * kMicrosPerDay + ((hour * 60 + minute) * 60 + second) * kMicrosPerSecond;
}

void FormatReadingTime(int64_t micros, char* out) {
  CivilTime t = ToCivil(micros);
  auto put2 = [](char* o, unsigned v) {
    o[0] = static_cast<char>('0' + v / 10);
    o[1] = static_cast<char>('0' + v % 10);
  };
  unsigned year = static_cast<unsigned>(t.year) % 10000;
  put2(out, year / 100);
  put2(out + 2, year % 100);
  out[4] = '-';
  put2(out + 5, t.month);
  out[7] = '-';
  put2(out + 8, t.day);
  out[10] = ' ';
  put2(out + 11, t.hour);
  out[13] = ':';
  put2(out + 14, t.minute);
  out[16] = ':';
  put2(out + 17, t.second);
  out[19] = '.';
  auto frac = static_cast<unsigned>(t.micros);
  for (int i = 25; i >= 20; --i) {
    out[i] = static_cast<char>('0' + frac % 10);
    frac /= 10;
  }
}

std::string FormatReadingTime(int64_t micros) {
  std::string s(kReadingTimeLength, '\0');
  FormatReadingTime(micros, s.data());
  return s;
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

Result<int64_t> ParseTimestampLoose(std::string_view text, int64_t local_offset_micros) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.remove_suffix(1);
  int64_t us = 0;
  std::string why;
  if (text.size() < 10 || text[4] != '-') {  // not a date: an epoch number
    double v = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
    if (text.empty() || ec != std::errc() || end != text.data() + text.size()) {
      return Status::InvalidArgument(fmt::format("'{}' is not a time: expected e.g. 2024-01-21 10:06:04 or 2024-01-21T10:06:04Z", text));
    }
    if (!ParseTimestampEpoch(v, &us, &why)) return Status::InvalidArgument(why);
    return us;
  }
  std::string owned;
  if (text.size() == 10) {
    owned = std::string(text) + " 00:00:00";  // a bare date: midnight UTC
    text = owned;
  } else if (text.ends_with(" UTC")) {
    text.remove_suffix(4);
    local_offset_micros = 0;  // its zone, written
  }
  if (!ParseTimestampText(text, &us, &why, local_offset_micros)) return Status::InvalidArgument(why);
  return us;
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
  return ParseTimestampLoose(text);
}

}  // namespace mare
