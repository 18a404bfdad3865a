// The batch layer's MariaDB side: the stream's rollup rows read back, and the batch's written
// through the sink's own upsert (RollupWriter with source "batch", which replaces the stream's
// row of a window: docs/formats/mariadb-tables.md). Tables are created or migrated on connecting.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "batch/reconcile.h"
#include "common/status.h"
#include "sinks/mariadb/connection.h"
#include "sinks/mariadb/mariadb_sink.h"
#include "sinks/mariadb/rollup_writer.h"

namespace mare::batch {

class MariaDbRollups {
 public:
  // Connects with the sink's options ([sink.mariadb]) and makes the tables of its resolutions
  // ready (adding the `source` column to older ones).
  static Result<std::unique_ptr<MariaDbRollups>> Connect(const sinks::MariaDbSinkOptions& options);
  ~MariaDbRollups();

  // The rows of these resolutions with window_start in [from, to), of these sensors (empty: all).
  Status Read(const std::vector<std::string>& resolutions, int64_t from_us, int64_t to_us,
              const std::vector<uint32_t>& sensors, RollupsByKey* out);
  // Upserts the rows as source "batch" and commits.
  Status Write(const std::vector<sinks::RollupMessage>& rows);

 private:
  MariaDbRollups() = default;
  sinks::Connection conn_;
  std::unique_ptr<sinks::RollupWriter> writer_;
};

}  // namespace mare::batch
