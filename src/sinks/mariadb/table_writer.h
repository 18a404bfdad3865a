// TableWriter: what one topic of the log becomes in MariaDB. The sink (mariadb_sink.cc) owns the
// connection, the transaction and the positions in mare_sink_offsets; a writer creates or
// migrates its tables and writes the rows of one polled batch into the open transaction.
// RollupWriter (rollups -> rollup_*) and ReadingsWriter (raw -> readings) implement it.
#pragma once

#include <cstdint>
#include <vector>

#include "common/status.h"
#include "log/log.h"
#include "sinks/mariadb/connection.h"

namespace mare::sinks {

class TableWriter {
 public:
  virtual ~TableWriter() = default;
  // After each connect, with autocommit still on: create or migrate the tables, prepare
  // statements. `conn` stays valid until Close().
  virtual Status Open(Connection* conn) = 0;
  // Before the connection closes: release the statements.
  virtual void Close() = 0;
  // Writes the rows of one batch in the open transaction (the sink then adds the positions and
  // commits). *rows: rows written; *skipped: records that were not readable (logged, skipped).
  virtual Status Write(const std::vector<log::ConsumedRecord>& records, uint64_t* rows, uint64_t* skipped) = 0;
};

}  // namespace mare::sinks
