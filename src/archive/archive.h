// Archives `mare replay` and `mare import` read: a file of past observations turned into
// readings, one row at a time. Three formats: NDBC standard meteorological (ndbc.h), CSV with a
// header (csv.h) and NDJSON readings (ndjson.h); open_archive.h picks one. This file holds what
// they share: the reader's interface, its options, lines and numbers.
//
//   Result<std::unique_ptr<ArchiveReader>> r = OpenArchive("ndbc_44005_2012.txt", options);
//   Reading reading;
//   for (;;) {
//     ArchiveReader::Row row = (*r)->Next(&reading);
//     if (row == ArchiveReader::Row::kEnd) break;
//     if (row == ArchiveReader::Row::kSkipped) { report (*r)->line(), (*r)->why(); continue; }
//     send reading
//   }
//   if (!(*r)->status().ok()) ...  // an I/O error ended the file early
#pragma once

#include <cstdint>
#include <fstream>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "archive/reading.h"

namespace mare::archive {

// A field column a file gives as text: every present cell of it is text (CSV: a column with one
// text cell is text, its numbers included). For the user: the field's name, its first text cell
// (cut short) and that cell's line.
struct TextColumn {
  std::string name;
  std::string first_cell;
  size_t line = 0;
};

class ArchiveReader {
 public:
  enum class Row { kReading, kSkipped, kEnd };
  virtual ~ArchiveReader() = default;

  // kReading: *out holds the row's reading (field names stay valid while the reader lives).
  // kSkipped: the row was unusable; line() and why() say where and why.
  virtual Row Next(Reading* out) = 0;

  size_t line() const { return line_; }  // 1-based line of the row Next() last returned
  virtual std::string_view line_unit() const { return "line"; }  // what line() counts, for messages
  const std::string& why() const { return why_; }
  const Status& status() const { return status_; }
  // The fields the whole file gives as text, known before its first row (CSV's first pass); none
  // for formats whose every value says its own type.
  virtual std::vector<TextColumn> text_columns() const { return {}; }

 protected:
  size_t line_ = 0;
  std::string why_;
  Status status_;
};

struct ArchiveOptions {
  std::string format;                // "ndbc", "csv", or empty to detect from the header
  uint64_t sensor_id = 1;            // for rows without their own sensor_id
  std::optional<Location> location;  // for rows without their own lat/lon
  std::vector<double> missing_codes;  // CSV: numbers that mean "no value"
  // CSV: times written without a zone are local time this far east of UTC (8 h for the Beijing
  // data); NDBC files are UTC.
  int64_t utc_offset_micros = 0;
  // CSV: called every few MB of the first pass over the file (the columns' types), and at its
  // end, with the bytes read and the file's size.
  std::function<void(int64_t bytes_done, int64_t bytes_total)> types_progress;
};

// A UTC offset as "+08:00", "+0800", "+8", "-05:30" or "0"; InvalidArgument beyond ±14 h.
Result<int64_t> ParseUtcOffset(std::string_view text);

// The station number in names like "ndbc_44005_2012.txt" or NDBC's own "44005h2012.txt";
// nullopt when the name holds none.
std::optional<uint64_t> StationFromFileName(std::string_view path);

// Lines of a text file without their "\n" or "\r\n", counted from 1.
class LineReader {
 public:
  Status Open(const std::string& path);
  bool Next(std::string* line);  // false at the end (or on an I/O error: see status())
  size_t line_number() const { return line_number_; }
  int64_t bytes_read() const { return bytes_read_; }  // the lines read, with their line ends
  const Status& status() const { return status_; }

 private:
  std::ifstream in_;
  std::string path_;
  size_t line_number_ = 0;
  int64_t bytes_read_ = 0;
  Status status_;
};

// Why a reading is not imported: field's text value is not UTF-8 from its byte at (0-based).
// The one wording for every importer (JSON answers must be UTF-8, as ingest requires).
std::string NonUtf8Reason(std::string_view field, size_t at);

// A whole token as a finite double ("+1.5" too, not "+-1.5"); false for anything else.
bool ParseNumber(std::string_view token, double* value);

}  // namespace mare::archive
