// The CSV dialect mare reads (docs/formats/csv.md): splitting lines into cells, the header's
// columns and their roles, missing values, times and numbers. One set of rules for both
// readers: the archive reader `mare replay` streams (csv.h) and the bulk load of `mare import`.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace mare::archive {

constexpr size_t kNoColumn = static_cast<size_t>(-1);

// The cell without the spaces and tabs around it. (Inline: a bulk import trims every cell.)
inline std::string_view TrimCell(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// An absent value: empty, NA, NaN or null (any case), or a number equal to one of
// missing_codes. The cell is trimmed. ("N/A" is text, as written.)
bool IsMissingCell(std::string_view cell, std::span<const double> missing_codes = {});

// ',' unless the header (outside quotes) has more ';' or tabs.
char DetectCsvDelimiter(std::string_view header);

// Splits one CSV line into cells, unquoting "a ""b""" to a "b". False on an unterminated quote.
bool SplitCsvLine(std::string_view line, char delimiter, std::vector<std::string>* cells);
// The same without copies: cells view the line, or *unquoted when the line has quotes (so they
// are valid until the next call with the same *unquoted).
bool SplitCsvCells(std::string_view line, char delimiter, std::vector<std::string_view>* cells, std::string* unquoted);

// The header's columns (matched by name without regard to case, spaces around ignored):
//   time: the first present of timestamp, datetime, ts; else a "date" and a "time" column,
//         joined; else either alone; else the civil parts year, month, day (and hour, minute
//         when present), as in the UCI Beijing data;
//   sensor_id; lat or latitude; lon, lng, long or longitude;
//   every other column a field, named by ToFieldName ("Air Temp (C)" -> air_temp_c); a name
//   taken already (or timestamp, sensor_id, location) gets a suffix _2, _3, ...
struct CsvColumns {
  struct Field {
    size_t column;
    std::string name;
  };
  size_t count = 0;
  size_t time = kNoColumn;
  size_t time_of_day = kNoColumn;  // a "time" column joined to the "date" column `time`
  // Without a time column: the time from its parts (time == kNoColumn then).
  size_t year = kNoColumn, month = kNoColumn, day = kNoColumn, hour = kNoColumn, minute = kNoColumn;
  size_t sensor = kNoColumn;
  size_t lat = kNoColumn;
  size_t lon = kNoColumn;
  std::vector<Field> fields;
};
// InvalidArgument "PATH: no time column ..." when the header has none.
Result<CsvColumns> MapCsvColumns(const std::vector<std::string>& header, const std::string& path);

// The row's time (µs since the epoch, UTC) in any form ParseTimestampLoose accepts; a "date"
// and a "time" cell joined, unless the time cell is a full timestamp itself; or from the civil
// parts. A time written without a zone (no Z, offset or " UTC"; not an epoch number) is local
// time local_offset_micros east of UTC: 8 h for Beijing's local time. *scratch: reused.
template <typename Cell>
Result<int64_t> CsvRowTime(const std::vector<Cell>& cells, const CsvColumns& columns, std::string* scratch,
                           int64_t local_offset_micros = 0);
// The same for a time that is one (trimmed) cell, a row's time when the header has a single
// time column. Eight digits that make a date from 1900 on (20240121) are refused as ambiguous
// (epoch seconds or yyyymmdd?) rather than read as a 1970 time.
Result<int64_t> CsvCellTime(std::string_view cell, int64_t local_offset_micros = 0);

// The sensor_id cell (trimmed) as an id: digits only, 0 to 4294967295; false otherwise.
bool ParseSensorIdCell(std::string_view cell, uint32_t* id);

// The column of a latitude without a longitude column, or of a longitude without a latitude
// one; kNoColumn when there are both or neither. A location needs both (reading.md).
size_t LoneCoordinateColumn(const CsvColumns& columns);

// Why a data row is skipped, worded here once for both readers (docs/formats/csv.md, "Rows
// skipped"): each takes what the reason quotes.
inline constexpr std::string_view kUnterminatedQuoteReason = "unterminated quote";
std::string CellCountReason(size_t found, size_t expected);
// The time's cell (both, for a date and a time column; "from its parts" for civil parts) and why.
template <typename Cell>
std::string CsvTimeReason(const std::vector<Cell>& cells, const CsvColumns& columns, const Status& why);
std::string CsvTimeCellReason(std::string_view cell, const Status& why);  // a single time cell
std::string SensorIdReason(std::string_view cell);
// A sensor_id column whose cell is missing: the row names no sensor, and a default id could
// replace another sensor's reading of the same time.
inline constexpr std::string_view kMissingSensorIdReason = "the sensor_id cell is missing";
std::string LoneCoordinateReason(const CsvColumns& columns, std::string_view cell);
// Why a file is refused, the same from both readers: no header line (empty, or blank lines
// only), or a header line (line: its number) with a quote left open.
Status NoCsvHeaderError(std::string_view path);
Status CsvHeaderQuoteError(std::string_view path, size_t line);

}  // namespace mare::archive
