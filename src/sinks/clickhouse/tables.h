// The ClickHouse tables the sink writes (docs/formats/clickhouse.md has them and why each is a
// ReplacingMergeTree): `readings` (one row per reading, ORDER BY (sensor_id, ts, ts_us)),
// `rollups` (one row per window, its revision as the version) and `sink_offsets` (the sink's
// positions). Each table knows its CREATE statement, the column list of its INSERT, and how a
// message of its topic becomes a RowBinary row. SQL written for ClickHouse 18.16 and later.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"
#include "reading/reading.h"
#include "sinks/rollup_message.h"

namespace mare::sinks::clickhouse {

// `name` in backquotes, for ClickHouse SQL.
std::string QuoteName(std::string_view name);
// `text` as a ClickHouse string literal in single quotes.
std::string QuoteText(std::string_view text);

// Instants a DateTime holds (seconds since the epoch in a UInt32): 1970 up to 2106-02-07.
bool FitsDateTime(int64_t micros);

class ReadingsTable {
 public:
  // `numeric_fields` get a Nullable(Float64) column each (ingest.numeric_fields).
  explicit ReadingsTable(std::vector<std::string> numeric_fields);
  // Its ORDER BY: the first columns (sensor_id, ts, ts_us).
  static constexpr size_t kKeyColumns = 3;

  std::string Create(std::string_view database) const;
  // Every column with its type, in INSERT order.
  const std::vector<std::pair<std::string, std::string>>& columns() const { return columns_; }
  // "(sensor_id, ts, ...)": the INSERT's column list.
  std::string ColumnList() const;
  // Appends the reading as one row; InvalidArgument, with why, for one the table cannot hold
  // (a timestamp outside DateTime's range).
  Status Append(const Reading& r, std::string* out);

 private:
  std::vector<std::string> numeric_fields_;
  std::vector<std::pair<std::string, std::string>> columns_;
  // Reused per row: each typed column's number (nullptr: NULL), and the other numbers.
  std::vector<const NumberField*> typed_;
  std::vector<const NumberField*> other_;
  // The previous reading's number names by place, and their typed column (kNoColumn: the arrays).
  static constexpr size_t kNoColumn = static_cast<size_t>(-1);
  std::vector<std::string> seen_names_;
  std::vector<size_t> seen_columns_;
};

class RollupsTable {
 public:
  // Its ORDER BY: the first columns (sensor_id, field, resolution, window_start, window_start_us).
  static constexpr size_t kKeyColumns = 5;
  std::string Create(std::string_view database) const;
  // Every column with its type, in INSERT order.
  const std::vector<std::pair<std::string, std::string>>& columns() const;
  std::string ColumnList() const;
  Status Append(const RollupMessage& m, std::string* out) const;
};

// The sink's positions: one row per save, the highest next_offset per partition counts.
std::string CreateSinkOffsets(std::string_view database);

}  // namespace mare::sinks::clickhouse
