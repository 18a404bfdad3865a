// A table of a MySQL or MariaDB database read as an archive (`mare import mysql://...`): the
// observatory's legacy readings, streamed row by row with Connector/C, in time order, so that an
// interrupted import resumes from the last time it stored.
//
//   MysqlTableOptions o;  o.url = "mysql://mare@127.0.0.1:3306/observatory/readings";
//   auto reader = OpenMysqlTable(o);            // Result<unique_ptr<MysqlTableReader>>
//   ... (*reader)->Next(&reading) ...; (*reader)->last_time_text() is where to resume.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "archive/archive.h"

namespace mare::archive {

struct MysqlTableOptions {
  std::string url;       // mysql://USER@HOST[:PORT]/DATABASE/TABLE
  std::string password;  // from the environment, never the command line
  std::string ts_column;      // default: the first of ts, timestamp, time, datetime the table has
  std::string sensor_column;  // default: sensor_id when the table has it, else sensor_id below
  uint64_t sensor_id = 1;     // for a table without a sensor column
  std::string lat_column, lon_column;  // default: lat/latitude and lon/lng/longitude when present
  std::string json_column;    // a column of JSON objects whose members are fields
  // DATETIME values are local time this far east of UTC; the time column is read as a CSV time
  // cell is (csv_format.h's CsvCellTime: an epoch number or a zone is never shifted, and the years
  // 1900 to 9999 are checked on the UTC time).
  int64_t utc_offset_micros = 0;
  std::string resume_from;    // only rows with ts_column >= this value (a value of that column, as text)
};

// Where the URL points, parsed: "mysql://USER@HOST:PORT/DB/TABLE".
struct MysqlUrl {
  std::string user, host, database, table;
  unsigned port = 3306;
};
Result<MysqlUrl> ParseMysqlUrl(std::string_view url);

class MysqlTableReader : public ArchiveReader {
 public:
  // The time column's value of the last row read, as the server wrote it: resuming from it
  // (>=) re-reads rows of that same time, which the store's one-reading-per-time rule absorbs.
  virtual const std::string& last_time_text() const = 0;
  virtual int64_t total_rows() const = 0;  // what the table held at the start (from resume_from)
  virtual const std::string& ts_column() const = 0;
};

Result<std::unique_ptr<MysqlTableReader>> OpenMysqlTable(const MysqlTableOptions& options);

}  // namespace mare::archive
