// RollupWriter: the rollups topic into tables rollup_minute, rollup_hour, rollup_day (RollupTable),
// docs/formats/mariadb-tables.md. Each window is upserted by (sensor_id, field, window_start),
// keeping the highest revision; of a batch's messages only the newest revision of each window is
// written, all of a table's rows in one bulk execution. The rows of `mare batch rollups` go
// through it too, with source "batch": they replace the stream's (docs/formats/mariadb-tables.md).
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "reading/timestamp.h"
#include "sinks/rollup_message.h"
#include "sinks/mariadb/table_writer.h"

namespace mare::sinks {

// The table a resolution's rows go to: 1m -> rollup_minute, 1h -> rollup_hour, 1d -> rollup_day,
// any other -> rollup_<resolution>.
std::string RollupTable(const std::string& resolution);

class RollupWriter : public TableWriter {
 public:
  // Creates the tables of these resolutions ("1m", ...) when it opens, so that the website finds
  // them before the first window closes; others are created as their rollups arrive.
  // source: "stream" (the rollups topic) or "batch" (a recompute from the store, which replaces
  // whatever is stored).
  explicit RollupWriter(std::vector<std::string> resolutions, std::string source = "stream")
      : resolutions_(std::move(resolutions)), source_(std::move(source)) {}
  ~RollupWriter() override { Close(); }
  Status Open(Connection* conn) override;
  void Close() override;
  Status Write(const std::vector<log::ConsumedRecord>& records, uint64_t* rows, uint64_t* skipped) override;
  // Upserts these rollups (at most one per window) in the open transaction, each into its
  // resolution's table.
  Status Upsert(const std::vector<const RollupMessage*>& messages);

 private:
  const std::vector<std::string> resolutions_;
  const std::string source_;
  // One row of a bulk upsert, bound row-wise (STMT_ATTR_ROW_SIZE): the connector sends all rows
  // of a table in one execution of the prepared statement.
  struct BulkRow {
    uint32_t sensor_id;
    char field[65];  // field names are at most 64 bytes (docs/formats/reading.md)
    char field_indicator;
    char start[kReadingTimeLength + 1];
    char start_indicator;
    int64_t count;
    double values[6];  // min, max, mean, stddev, first, last
    int64_t revision;
  };

  Status EnsureTable(const std::string& table);
  Status ExecuteUpserts(MYSQL_STMT* stmt, const std::vector<const RollupMessage*>& messages);

  Connection* conn_ = nullptr;
  std::map<std::string, MYSQL_STMT*> upserts_;  // by table
  std::set<std::string> tables_ready_;
  RollupReader reader_;
  std::vector<BulkRow> bulk_;
};

}  // namespace mare::sinks
