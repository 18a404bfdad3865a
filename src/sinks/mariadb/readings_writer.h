// ReadingsWriter: the raw topic into table `readings`, one row per reading
// (docs/formats/mariadb-tables.md). Rows are inserted with bulk executions of one prepared
// statement (Connector/C column-wise array binding), a few MiB each. A row's key ends with its
// place in the log (partition, offset), so a record written twice would still be one row; the
// sink's positions, committed with the rows, are what make each reading arrive exactly once.
#pragma once

#include <string>
#include <vector>

#include "sinks/mariadb/reading_row.h"
#include "sinks/mariadb/table_writer.h"

namespace mare::sinks {

constexpr const char* kReadingsTable = "readings";

// The columns of `readings`: the fixed ones, then per name of `numeric_fields` a virtual DOUBLE
// column computed from `fields` (names that are not plain identifiers, or that are a fixed
// column's name, get none: they stay in `fields` only).
std::vector<ColumnDefinition> ReadingsColumns(const std::vector<std::string>& numeric_fields);

// The insert, with one placeholder per stored column; a row already there is left as it is.
std::string ReadingsInsertSql();

class ReadingsWriter : public TableWriter {
 public:
  ReadingsWriter(std::vector<std::string> numeric_fields, size_t max_reading_bytes);
  ~ReadingsWriter() override;
  Status Open(Connection* conn) override;
  void Close() override;
  Status Write(const std::vector<log::ConsumedRecord>& records, uint64_t* rows, uint64_t* skipped) override;

 private:
  // Rows [begin, end) of rows_ in one bulk execution.
  Status Insert(size_t begin, size_t end);

  const std::vector<std::string> numeric_fields_;
  Connection* conn_ = nullptr;
  MYSQL_STMT* insert_ = nullptr;
  ReadingRowReader reader_;

  // The batch, reused from batch to batch: its rows and their place in the log.
  std::vector<ReadingRow> rows_;
  std::vector<int32_t> partitions_;
  std::vector<int64_t> offsets_;
  size_t used_ = 0;
  // The bound columns of one execution.
  std::vector<uint32_t> sensor_ids_;
  std::vector<char> times_;  // kReadingTimeLength chars per row
  std::vector<const char*> time_ptrs_, fields_ptrs_;
  std::vector<unsigned long> time_lengths_, fields_lengths_;
  std::vector<double> lats_, lons_;
  std::vector<char> location_indicators_;
};

}  // namespace mare::sinks
