#include "archive/csv_format.h"

#include <fmt/format.h>

#include <algorithm>
#include <bit>
#include <charconv>
#include <cctype>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <unordered_map>
#include <unordered_set>

#include "archive/archive.h"
#include "archive/reading.h"
#include "common/time.h"
#include "reading/timestamp.h"

namespace mare::archive {
namespace {

bool EqualsNoCase(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
         });
}

}  // namespace

bool IsMissingCell(std::string_view cell, std::span<const double> missing_codes) {
  cell = TrimCell(cell);
  if (cell.empty()) return true;
  if (cell.size() <= 4 && (EqualsNoCase(cell, "NA") || EqualsNoCase(cell, "NaN") || EqualsNoCase(cell, "null"))) {
    return true;
  }
  if (missing_codes.empty()) return false;
  double v = 0;
  if (!ParseNumber(cell, &v)) return false;
  return std::find(missing_codes.begin(), missing_codes.end(), v) != missing_codes.end();
}

char DetectCsvDelimiter(std::string_view header) {
  size_t commas = 0, semicolons = 0, tabs = 0;
  bool quoted = false;
  for (char c : header) {
    if (c == '"') quoted = !quoted;
    if (quoted) continue;
    commas += c == ',';
    semicolons += c == ';';
    tabs += c == '\t';
  }
  if (semicolons > commas && semicolons >= tabs) return ';';
  if (tabs > commas && tabs > semicolons) return '\t';
  return ',';
}

namespace {

// The high bit of each byte of w that is zero, and nothing else (no carry crosses bytes:
// (w & 0x7f) + 0x7f stays within its byte). Bytes in memory order: little-endian.
static_assert(std::endian::native == std::endian::little);
inline uint64_t ZeroBytes(uint64_t w) {
  constexpr uint64_t kLow7 = 0x7f7f7f7f7f7f7f7fULL;
  return ~(((w & kLow7) + kLow7) | w | kLow7);
}

}  // namespace

bool SplitCsvCells(std::string_view line, char delimiter, std::vector<std::string_view>* cells, std::string* unquoted) {
  cells->clear();
  {
    // The common case, no quote: cells are views of the line. One pass over its bytes, not a
    // search for a quote and then one per delimiter (cells are short: the calls cost more).
    const char* p = line.data();
    const char* end = p + line.size();
    const char* start = p;
    // Eight bytes at a time: a byte equal to the delimiter or a quote found with word arithmetic.
    const uint64_t delimiters = 0x0101010101010101ULL * static_cast<uint8_t>(delimiter);
    const uint64_t quotes = 0x0101010101010101ULL * static_cast<uint8_t>('"');
    for (; end - p >= 8; p += 8) {
      uint64_t word;
      std::memcpy(&word, p, 8);
      if (ZeroBytes(word ^ quotes) != 0) break;  // the quoted path below, from this word on
      for (uint64_t hits = ZeroBytes(word ^ delimiters); hits != 0; hits &= hits - 1) {
        const char* at = p + std::countr_zero(hits) / 8;
        cells->emplace_back(start, static_cast<size_t>(at - start));
        start = at + 1;
      }
    }
    for (; p != end; ++p) {
      if (*p == delimiter) {
        cells->emplace_back(start, static_cast<size_t>(p - start));
        start = p + 1;
      } else if (*p == '"') {
        break;
      }
    }
    if (p == end) {
      cells->emplace_back(start, static_cast<size_t>(end - start));
      return true;
    }
    cells->clear();
  }
  // A quote opens a quoted stretch, "" inside one is a quote, a delimiter outside one ends a
  // cell. The unquoted cells are kept in one buffer (reserved first: views of it are taken at the
  // end, when it no longer grows).
  unquoted->clear();
  unquoted->reserve(line.size());
  std::vector<std::pair<size_t, size_t>> spans;
  size_t begin = 0;
  bool quoted = false;
  for (size_t i = 0; i < line.size(); ++i) {
    char c = line[i];
    if (quoted) {
      if (c == '"') {
        if (i + 1 < line.size() && line[i + 1] == '"') {
          unquoted->push_back('"');
          ++i;
        } else {
          quoted = false;
        }
      } else {
        unquoted->push_back(c);
      }
    } else if (c == '"') {
      quoted = true;
    } else if (c == delimiter) {
      spans.emplace_back(begin, unquoted->size() - begin);
      begin = unquoted->size();
    } else {
      unquoted->push_back(c);
    }
  }
  if (quoted) return false;
  spans.emplace_back(begin, unquoted->size() - begin);
  for (auto [b, n] : spans) cells->push_back(std::string_view(unquoted->data() + b, n));
  return true;
}

bool SplitCsvLine(std::string_view line, char delimiter, std::vector<std::string>* cells) {
  // SplitCsvCells' rules, its views copied out. The scratch is per thread and kept, since
  // archive readers call this once a row.
  thread_local std::vector<std::string_view> views;
  thread_local std::string unquoted;
  if (!SplitCsvCells(line, delimiter, &views, &unquoted)) return false;
  cells->resize(views.size());
  for (size_t i = 0; i < views.size(); ++i) (*cells)[i].assign(views[i]);
  return true;
}

Result<CsvColumns> MapCsvColumns(const std::vector<std::string>& header, const std::string& path) {
  CsvColumns columns;
  columns.count = header.size();
  std::vector<std::string> names;
  for (const std::string& h : header) names.push_back(ToFieldName(TrimCell(h)));
  auto find = [&](std::initializer_list<std::string_view> wanted) {
    for (std::string_view w : wanted) {
      for (size_t i = 0; i < names.size(); ++i) {
        if (names[i] == w) return i;
      }
    }
    return kNoColumn;
  };
  columns.time = find({"timestamp", "datetime", "ts"});
  if (columns.time == kNoColumn) {
    size_t date = find({"date"}), time = find({"time"});
    if (date != kNoColumn && time != kNoColumn) {
      columns.time = date;
      columns.time_of_day = time;
    } else {
      columns.time = time != kNoColumn ? time : date;
    }
  }
  if (columns.time == kNoColumn) {
    columns.year = find({"year"});
    columns.month = find({"month"});
    columns.day = find({"day"});
    if (columns.year == kNoColumn || columns.month == kNoColumn || columns.day == kNoColumn) {
      columns.year = columns.month = columns.day = kNoColumn;
      return Status::InvalidArgument(fmt::format(
          "{}: no time column (name one timestamp, datetime, ts, date or time, or give year, month and day)", path));
    }
    columns.hour = find({"hour"});
    columns.minute = find({"minute"});
  }
  columns.sensor = find({"sensor_id"});
  columns.lat = find({"lat", "latitude"});
  columns.lon = find({"lon", "lng", "long", "longitude"});
  // A repeated name takes the first free suffix _2, _3, ... A set, and where each name's search
  // stopped, keep this linear: a header of a thousand empty names was cubic (a fuzzer's timeout).
  std::unordered_set<std::string> taken = {"timestamp", "sensor_id", "location"};
  std::unordered_map<std::string, int> next_suffix;
  for (size_t i = 0; i < names.size(); ++i) {
    if (i == columns.time || i == columns.time_of_day || i == columns.sensor || i == columns.lat || i == columns.lon ||
        i == columns.year || i == columns.month || i == columns.day || i == columns.hour || i == columns.minute) {
      continue;
    }
    std::string name = names[i];
    if (taken.count(name) != 0) {
      int& n = next_suffix.try_emplace(names[i], 2).first->second;
      do {
        name = fmt::format("{}_{}", names[i], n++);
      } while (taken.count(name) != 0);
    }
    taken.insert(name);
    columns.fields.push_back({i, std::move(name)});
  }
  return columns;
}

namespace {

// A whole non-negative integer cell; false otherwise.
bool IntegerCell(std::string_view cell, int* value) {
  cell = TrimCell(cell);
  auto [end, ec] = std::from_chars(cell.data(), cell.data() + cell.size(), *value);
  return !cell.empty() && ec == std::errc() && end == cell.data() + cell.size();
}

// Eight digits that read as a date yyyymmdd from 1900 on: 20240121.
bool IsCompactDate(std::string_view cell) {
  if (cell.size() != 8 || !std::all_of(cell.begin(), cell.end(), [](char c) { return c >= '0' && c <= '9'; })) return false;
  auto part = [&](size_t at, size_t n) {
    int v = 0;
    std::from_chars(cell.data() + at, cell.data() + at + n, v);
    return v;
  };
  return part(0, 4) >= 1900 && CivilToMicros(part(0, 4), part(4, 2), part(6, 2), 0, 0, 0).ok();
}

template <typename Cell>
Result<int64_t> CivilPartsTime(const std::vector<Cell>& cells, const CsvColumns& columns) {
  int year = 0, month = 0, day = 0, hour = 0, minute = 0;
  if (!IntegerCell(cells[columns.year], &year) || !IntegerCell(cells[columns.month], &month) ||
      !IntegerCell(cells[columns.day], &day) ||
      (columns.hour != kNoColumn && !IntegerCell(cells[columns.hour], &hour)) ||
      (columns.minute != kNoColumn && !IntegerCell(cells[columns.minute], &minute))) {
    return Status::InvalidArgument("year, month, day, hour and minute must be whole numbers");
  }
  // The years a reading may have (InReadingYears), checked on the UTC time below; these give or
  // take the day an offset moves a time by (and keep to the calendar's 16-bit years).
  if (year < 1899 || year > 10000) return Status::InvalidArgument(fmt::format("year {} outside 1900 to 9999", year));
  return CivilToMicros(year, month, day, hour, minute, 0);
}

// The civil parts' time in UTC (local_offset_micros east), or why it is outside the years.
Result<int64_t> CivilInReadingYears(int64_t local_micros, int64_t local_offset_micros) {
  const int64_t utc = local_micros - local_offset_micros;
  if (InReadingYears(utc)) return utc;
  if (local_offset_micros == 0) return Status::InvalidArgument(fmt::format("year {} outside 1900 to 9999", ToCivil(utc).year));
  const CivilTime local = ToCivil(local_micros);
  const int64_t minutes = std::abs(local_offset_micros) / kMicrosPerMinute;
  return Status::InvalidArgument(fmt::format("{:04}-{:02}-{:02} {:02}:{:02} at UTC{}{:02}:{:02} is {}, outside the years 1900 to 9999",
                                             local.year, local.month, local.day, local.hour, local.minute,
                                             local_offset_micros < 0 ? '-' : '+', minutes / 60, minutes % 60, UtcSecondsText(utc)));
}

}  // namespace

template <typename Cell>
Result<int64_t> CsvRowTime(const std::vector<Cell>& cells, const CsvColumns& columns, std::string* scratch,
                           int64_t local_offset_micros) {
  if (columns.time == kNoColumn) {
    Result<int64_t> civil = CivilPartsTime(cells, columns);
    if (!civil) return civil;
    return CivilInReadingYears(*civil, local_offset_micros);
  }
  std::string_view cell = TrimCell(cells[columns.time]);
  if (columns.time_of_day != kNoColumn) {
    std::string_view time = TrimCell(cells[columns.time_of_day]);
    // Not the date's midnight: a row without its time of day is not one taken at 00:00.
    if (time.empty()) return Status::InvalidArgument("the time cell is empty");
    if (time.size() >= 10 && time[4] == '-') {
      cell = time;  // already a full timestamp
    } else {
      scratch->assign(cell);
      scratch->push_back(' ');
      scratch->append(time);
      cell = *scratch;
    }
  }
  return CsvCellTime(cell, local_offset_micros);
}

Result<int64_t> CsvCellTime(std::string_view cell, int64_t local_offset_micros) {
  // A date and time in the strict form readings use first: the common case, and what
  // ParseTimestampLoose answers for it, without its copies.
  // The parsers apply the offset to a time written without a zone (never to an epoch, a zone or
  // " UTC"), before the years' check: 1899-12-31 23:00 at -01:00, 1900 in UTC, is taken.
  int64_t us = 0;
  std::string why;
  if (cell.size() > 10 && cell[4] == '-' && ParseTimestampText(cell, &us, &why, local_offset_micros)) return us;
  if (IsCompactDate(cell)) {
    return Status::InvalidArgument(fmt::format("'{}' is ambiguous: a date (write {}-{}-{}) or epoch seconds (write {}.0)", cell,
                                               cell.substr(0, 4), cell.substr(4, 2), cell.substr(6, 2), cell));
  }
  return ParseTimestampLoose(cell, local_offset_micros);
}

bool ParseSensorIdCell(std::string_view cell, uint32_t* id) {
  cell = TrimCell(cell);
  auto [end, ec] = std::from_chars(cell.data(), cell.data() + cell.size(), *id);
  return !cell.empty() && ec == std::errc() && end == cell.data() + cell.size();
}

size_t LoneCoordinateColumn(const CsvColumns& columns) {
  if (columns.lat != kNoColumn && columns.lon == kNoColumn) return columns.lat;
  if (columns.lon != kNoColumn && columns.lat == kNoColumn) return columns.lon;
  return kNoColumn;
}

std::string CellCountReason(size_t found, size_t expected) {
  return fmt::format("{} cells, the header has {}", found, expected);
}

Status NoCsvHeaderError(std::string_view path) {
  return Status::InvalidArgument(fmt::format("{}: no CSV header line", path));
}

Status CsvHeaderQuoteError(std::string_view path, size_t line) {
  return Status::InvalidArgument(fmt::format("{}:{}: the header has an unterminated quote", path, line));
}

template <typename Cell>
std::string CsvTimeReason(const std::vector<Cell>& cells, const CsvColumns& columns, const Status& why) {
  if (columns.time == kNoColumn) return fmt::format("time from its parts: {}", why.message());
  if (columns.time_of_day == kNoColumn) return CsvTimeCellReason(TrimCell(cells[columns.time]), why);
  return fmt::format("date \"{}\", time \"{}\": {}", TrimCell(cells[columns.time]), TrimCell(cells[columns.time_of_day]),
                     why.message());
}

std::string CsvTimeCellReason(std::string_view cell, const Status& why) {
  return fmt::format("time \"{}\": {}", cell, why.message());
}

std::string SensorIdReason(std::string_view cell) {
  return fmt::format("sensor_id \"{}\" is not a number from 0 to {}", cell, kMaxSensorId);
}

std::string LoneCoordinateReason(const CsvColumns& columns, std::string_view cell) {
  return columns.lat != kNoColumn ? fmt::format("latitude \"{}\" without a longitude column: a location needs both", cell)
                                  : fmt::format("longitude \"{}\" without a latitude column: a location needs both", cell);
}

template Result<int64_t> CsvRowTime(const std::vector<std::string>&, const CsvColumns&, std::string*, int64_t);
template Result<int64_t> CsvRowTime(const std::vector<std::string_view>&, const CsvColumns&, std::string*, int64_t);

template std::string CsvTimeReason(const std::vector<std::string>&, const CsvColumns&, const Status&);
template std::string CsvTimeReason(const std::vector<std::string_view>&, const CsvColumns&, const Status&);

}  // namespace mare::archive
