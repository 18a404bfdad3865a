// A CSV row read in one pass when every cell is plain: no quote, no space around a cell, its
// numbers written -123.45. The bulk import's common case; any other row is left to the rules of
// csv_format.h (the caller falls back), so that both read a plain row the same, to the bit.
//
//   PlainRowLayout layout(columns, delimiter);               // once per file
//   const char* next = ParsePlainRow(p, end, layout, last_time_text, &row, numbers, &present);
//   if (next == nullptr) { /* not plain: csv_format.h's path for this line */ }
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>
#include <vector>

#include "archive/csv_format.h"

namespace mare::archive {

// What each column of a header is, for ParsePlainRow. Usable only when the time is one cell
// (no date and time pair, no civil parts), there is a sensor_id column, and a latitude column
// comes with a longitude one.
struct PlainRowLayout {
  enum Role : uint8_t { kTime, kSensor, kLat, kLon, kField };
  PlainRowLayout(const CsvColumns& columns, char delimiter);
  bool usable = false;
  char delimiter = ',';
  std::vector<Role> roles;         // by column
  std::vector<uint32_t> field_of;  // by column: the index into CsvColumns::fields of a kField
};

// A plain row's cells besides the numbers (ParsePlainRow writes those into the caller's array):
// the time cell as written, the sensor id, and whether both location cells are numbers.
struct PlainRow {
  std::string_view time;
  bool same_time = false;  // the time cell is last_time (given plain: no delimiter, quote, CR or LF)
  uint32_t sensor = 0;
  bool lat_lon = false;    // both location cells are numbers (the caller checks their range)
};

// [-]digits[.digits] from p, up to the first byte that is not part of it, as the double
// ParseNumber gives for that text (its plain-decimal rule: at most 19 digits whose integer is
// at most 2^53, divided once by a power of ten; correctly rounded, so fast_float's too). nullptr
// when the text there is not of that form (no digit before the point, none after it, too many).
inline const char* ParsePlainDecimalAt(const char* p, const char* end, double* value) {
  static constexpr double kPow10[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,  1e10, 1e11,
                                      1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};
  const bool negative = p != end && *p == '-';
  p += negative;
  uint64_t m = 0;
  const char* digits = p;
  while (p != end && static_cast<unsigned>(*p - '0') < 10) m = m * 10 + static_cast<unsigned>(*p++ - '0');
  const size_t whole = static_cast<size_t>(p - digits);
  size_t fraction = 0;
  if (p != end && *p == '.') {
    const char* f = ++p;
    while (p != end && static_cast<unsigned>(*p - '0') < 10) m = m * 10 + static_cast<unsigned>(*p++ - '0');
    fraction = static_cast<size_t>(p - f);
    if (fraction == 0) return nullptr;
  }
  // (Twenty digits or more may have wrapped m: the digit count is tested first.)
  if (whole == 0 || whole + fraction > 19 || m > (uint64_t{1} << 53)) return nullptr;
  const double v = static_cast<double>(m) / kPow10[fraction];
  *value = negative ? -v : v;
  return p;
}

// Reads the row at p (ending at its '\n', "\r\n" or `end`) into *row, numbers[0] and numbers[1]
// (the latitude and longitude, when row->lat_lon) and numbers[2 + k] for field k, `present` bit
// k set for each field with a value (at most 64 fields: the layout is not usable beyond). (The
// location goes straight into the array, beside the fields: read back from *row as a pair, the
// two 8-byte stores made one 16-byte load wait for them to reach the cache, a stall on every
// row that perf put at 13 % of an import.) last_time: the time cell of the row before, compared first (archives give
// many sensors the same time); empty, or without a delimiter, quote, CR or LF. Returns where the next row starts, or nullptr when the row is not plain (a
// quote, a space, a number of another form, a text cell, too few or too many cells, an empty
// time or sensor_id): then nothing is decided and the caller reads it by the general rules.
inline const char* ParsePlainRow(const char* p, const char* end, const PlainRowLayout& layout, std::string_view last_time,
                                 PlainRow* row, double* numbers, uint64_t* present) {
  const char delimiter = layout.delimiter;
  const size_t count = layout.roles.size();
  uint64_t seen = 0;
  row->lat_lon = false;
  bool lat = false, lon = false;
  for (size_t c = 0; c < count; ++c) {
    const bool last = c + 1 == count;
    switch (layout.roles[c]) {
      case PlainRowLayout::kTime: {
        if (!last_time.empty() && static_cast<size_t>(end - p) > last_time.size() &&
            std::memcmp(p, last_time.data(), last_time.size()) == 0 && p[last_time.size()] == delimiter) {
          row->time = last_time;
          row->same_time = true;
          p += last_time.size();
          break;
        }
        const char* start = p;
        while (p != end && *p != delimiter && *p != '\n' && *p != '"' && *p != '\r') ++p;
        if (p == start || *start == ' ' || *start == '\t' || p[-1] == ' ' || p[-1] == '\t') return nullptr;
        row->time = std::string_view(start, static_cast<size_t>(p - start));
        row->same_time = false;
        break;
      }
      case PlainRowLayout::kSensor: {
        uint64_t id = 0;
        const char* start = p;
        while (p != end && static_cast<unsigned>(*p - '0') < 10 && p - start < 10) id = id * 10 + static_cast<unsigned>(*p++ - '0');
        if (p == start || id > 0xFFFF'FFFFu) return nullptr;
        row->sensor = static_cast<uint32_t>(id);
        break;
      }
      case PlainRowLayout::kLat:
      case PlainRowLayout::kLon: {
        const bool is_lat = layout.roles[c] == PlainRowLayout::kLat;
        if (p != end && *p != delimiter && *p != '\n' && *p != '\r') {
          p = ParsePlainDecimalAt(p, end, &numbers[is_lat ? 0 : 1]);
          if (p == nullptr) return nullptr;
          (is_lat ? lat : lon) = true;
        }
        break;
      }
      case PlainRowLayout::kField: {
        // An empty cell is a missing value; anything else must be a plain number.
        if (p != end && *p != delimiter && *p != '\n' && *p != '\r') {
          const uint32_t k = layout.field_of[c];
          p = ParsePlainDecimalAt(p, end, &numbers[2 + k]);
          if (p == nullptr) return nullptr;
          seen |= uint64_t{1} << k;
        }
        break;
      }
    }
    if (!last) {
      if (p == end || *p != delimiter) return nullptr;
      ++p;
    }
  }
  // The row's end: "\n", "\r\n" or the end of the range (a last line without its newline).
  if (p != end && *p == '\r') ++p;
  if (p != end) {
    if (*p != '\n') return nullptr;
    ++p;
  }
  row->lat_lon = lat && lon;
  *present = seen;
  return p;
}

}  // namespace mare::archive
