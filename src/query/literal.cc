#include "query/literal.h"

#include <fmt/format.h>

#include "common/status.h"
#include "common/time.h"
#include "query/chars.h"
#include "reading/timestamp.h"

namespace mare::query {
namespace {

struct IntervalUnit {
  std::string_view name;
  int64_t micros;
  bool long_form;  // may follow a quoted number: INTERVAL '1' HOUR
};


constexpr IntervalUnit kUnits[] = {
    {"us", 1, false},                       {"microsecond", 1, true},         {"microseconds", 1, true},
    {"ms", 1000, false},                    {"millisecond", 1000, true},      {"milliseconds", 1000, true},
    {"s", kMicrosPerSecond, false},         {"sec", kMicrosPerSecond, false}, {"second", kMicrosPerSecond, true},
    {"seconds", kMicrosPerSecond, true},    {"m", kMicrosPerMinute, false},            {"min", kMicrosPerMinute, false},
    {"minute", kMicrosPerMinute, true},              {"minutes", kMicrosPerMinute, true},       {"h", kMicrosPerHour, false},
    {"hour", kMicrosPerHour, true},                  {"hours", kMicrosPerHour, true},           {"d", kMicrosPerDay, false},
    {"day", kMicrosPerDay, true},           {"days", kMicrosPerDay, true},    {"w", 7 * kMicrosPerDay, false},
    {"week", 7 * kMicrosPerDay, true},      {"weeks", 7 * kMicrosPerDay, true},
};

constexpr std::string_view kMonthWords[] = {"month", "months", "mon", "mons", "mo"};
constexpr std::string_view kYearWords[] = {"year", "years", "yr", "yrs", "y"};

bool IsSpace(char c) { return c == ' ' || c == '\t'; }

bool Contains(const auto& words, std::string_view word) {
  for (std::string_view w : words) {
    if (w == word) return true;
  }
  return false;
}

// A unit's length in microseconds, or *why (without the "INTERVAL '...': " prefix).
bool UnitMicros(std::string_view word, int64_t* micros, std::string* why) {
  std::string lower(word);
  for (char& c : lower) c = static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
  for (const IntervalUnit& u : kUnits) {
    if (u.name == lower) {
      *micros = u.micros;
      return true;
    }
  }
  if (Contains(kMonthWords, lower)) {
    *why = "months have no fixed length, so they cannot be an interval; write days instead (e.g. '30 days')";
  } else if (Contains(kYearWords, lower)) {
    *why = "years have no fixed length, so they cannot be an interval; write days instead (e.g. '365 days')";
  } else {
    *why = fmt::format(
        "unknown unit \"{}\"; use microseconds (us), milliseconds (ms), seconds (s), minutes (m), hours (h), "
        "days (d) or weeks (w)",
        word);
  }
  return false;
}

// Reads exactly n digits at text[*pos]; advances *pos.
bool Digits(std::string_view text, size_t* pos, int n, int* out) {
  int v = 0;
  for (int k = 0; k < n; ++k, ++*pos) {
    if (*pos >= text.size() || !IsDigit(text[*pos])) return false;
    v = v * 10 + (text[*pos] - '0');
  }
  *out = v;
  return true;
}

}  // namespace

bool ParseIntervalText(std::string_view text, int64_t* micros, std::string* why) {
  auto fail = [&](std::string message) {
    *why = fmt::format("INTERVAL '{}': {}", text, message);
    return false;
  };
  size_t i = 0;
  auto skip_space = [&] {
    while (i < text.size() && IsSpace(text[i])) ++i;
  };
  skip_space();
  if (i == text.size()) return fail("empty; write e.g. '1 hour', '90 seconds' or '1h30m'");
  if (text[i] == '-') return fail("a negative interval is written -INTERVAL '...'");
  int64_t total = 0;
  while (i < text.size()) {
    size_t number_begin = i;
    int64_t whole = 0;
    while (i < text.size() && IsDigit(text[i])) {
      if (__builtin_mul_overflow(whole, 10, &whole) || __builtin_add_overflow(whole, text[i] - '0', &whole)) {
        return fail("out of range");
      }
      ++i;
    }
    bool has_whole = i > number_begin;
    int64_t fraction = 0;
    int64_t fraction_scale = 1;
    if (i < text.size() && text[i] == '.') {
      ++i;
      while (i < text.size() && IsDigit(text[i])) {
        if (fraction_scale == 1'000'000) return fail("at most 6 decimal places");
        fraction = fraction * 10 + (text[i] - '0');
        fraction_scale *= 10;
        ++i;
      }
    }
    std::string_view number = text.substr(number_begin, i - number_begin);
    if (!has_whole && fraction_scale == 1) {
      size_t end = number_begin;
      while (end < text.size() && !IsSpace(text[end])) ++end;
      return fail(fmt::format("expected a number, found \"{}\"", text.substr(number_begin, end - number_begin)));
    }
    skip_space();
    size_t unit_begin = i;
    while (i < text.size() && IsLetter(text[i])) ++i;
    std::string_view unit = text.substr(unit_begin, i - unit_begin);
    if (unit.empty()) {
      if (i == text.size()) {
        return fail(fmt::format("{0} has no unit; write e.g. '{0}s', '{0}m' or '{0}h'", number));
      }
      return fail(fmt::format("expected a unit after {}, found \"{}\"", number, text.substr(i, 1)));
    }
    int64_t unit_us = 0;
    std::string unit_why;
    if (!UnitMicros(unit, &unit_us, &unit_why)) return fail(unit_why);
    // fraction < 1e6 and unit_us <= 6.048e11, so the product fits.
    int64_t part = 0;
    if ((fraction * unit_us) % fraction_scale != 0) {
      return fail(fmt::format("{}{} is not a whole number of microseconds", number, unit));
    }
    if (__builtin_mul_overflow(whole, unit_us, &part) ||
        __builtin_add_overflow(part, fraction * unit_us / fraction_scale, &part) ||
        __builtin_add_overflow(total, part, &total)) {
      return fail("out of range");
    }
    skip_space();
  }
  *micros = total;
  return true;
}

bool IsIntervalUnitWord(std::string_view lower_word) {
  for (const IntervalUnit& u : kUnits) {
    if (u.long_form && u.name == lower_word) return true;
  }
  return lower_word == "month" || lower_word == "months" || lower_word == "year" || lower_word == "years";
}

bool ParseTimestampLiteral(std::string_view text, int64_t* micros, std::string* why) {
  size_t pos = 0;
  int year = 0, month = 0, day = 0;
  if (!Digits(text, &pos, 4, &year) || pos >= text.size() || text[pos++] != '-' ||
      !Digits(text, &pos, 2, &month) || pos >= text.size() || text[pos++] != '-' || !Digits(text, &pos, 2, &day)) {
    *why = fmt::format("TIMESTAMP '{}' is not a date-time: expected YYYY-MM-DD[ HH:MM[:SS[.ffffff]]][Z|+HH:MM]", text);
    return false;
  }
  if (pos == text.size()) {  // a bare date: midnight UTC
    if (year < 1900) {
      *why = fmt::format("TIMESTAMP '{}': year {} before 1900", text, year);
      return false;
    }
    if (month < 1 || month > 12) {
      *why = fmt::format("TIMESTAMP '{}': month {} out of range", text, month);
      return false;
    }
    Result<int64_t> midnight = CivilToMicros(year, month, day, 0, 0, 0);
    if (!midnight) {
      *why = fmt::format("TIMESTAMP '{}': day {} out of range for {:04}-{:02}", text, day, year, month);
      return false;
    }
    *micros = *midnight;
    return true;
  }
  std::string reason;
  if (!ParseTimestampText(text, micros, &reason)) {
    *why = "TIMESTAMP " + reason;  // reason starts with the quoted text
    return false;
  }
  return true;
}

}  // namespace mare::query
