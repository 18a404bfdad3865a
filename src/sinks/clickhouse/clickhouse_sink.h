// ClickHouseSink: keeps ClickHouse tables equal to the log, for SQL analytics at scale. It
// follows the raw topic into table `readings` and the rollups topic into table `rollups`
// (database `mare` by default) over ClickHouse's HTTP interface, each batch one
// INSERT ... FORMAT Native with its rows in key order (native_block.h); the tables are created
// on start. Both are ReplacingMergeTree, so a batch sent again (after a crash, an outage, an
// unanswered insert) leaves no duplicate visible to FINAL or argMax; the sink's position (table sink_offsets) is written only once ClickHouse
// acknowledged the batch. Batches are large (`batch` rows or `max_delay`) so that inserts stay
// few and ClickHouse's merges keep up ("too many parts"). A batch ClickHouse refuses for its data
// is split until the refused rows are found; they go to the dead-letter file with ClickHouse's
// reason. docs/formats/clickhouse.md has the tables, the bytes sent and the versions tested.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/metrics.h"
#include "common/status.h"
#include "log/duplicate_filter.h"
#include "log/log.h"
#include "reading/dead_letter.h"
#include "reading/parser.h"
#include "sinks/sink_health.h"

namespace mare::sinks {

struct ClickHouseSinkOptions {
  bool enabled = false;                       // `mare run` runs the sink
  // Raw records repeating the sensor and timestamp of one appended within the horizon before are
  // not written (log/duplicate_filter.h). Set by config/ from [log] dedup.
  log::DuplicateFilterOptions raw_dedup;
  std::string url = "http://127.0.0.1:8123";  // the HTTP interface: scheme, host and port
  std::string user = "default";
  std::string password;
  std::string database = "mare";  // created when missing, with its tables
  bool readings = true;           // the raw topic into table readings
  bool rollups = true;            // the rollups topic into table rollups
  std::string consumer = "clickhouse";  // its positions' name, in sink_offsets and the log's groups
  size_t batch = 100'000;               // rows per INSERT at most
  int64_t max_delay_us = 1'000'000;     // how long a batch may wait for more rows
  bool gzip = false;                    // compress request bodies
  int64_t timeout_us = 60'000'000;      // one request
  int64_t retry_initial_us = 100'000;
  int64_t retry_max_us = 5'000'000;
  // On Kafka: how long giving partitions up waits for what was read to be written (LogFollowerOptions).
  int64_t revoke_timeout_us = 30'000'000;
  // Fields that get a Nullable(Float64) column of their own in `readings`: ingest.numeric_fields.
  std::vector<std::string> numeric_fields = ParserOptions{}.numeric_fields;
  // The longest raw record it parses (ingest.max_reading_bytes, at least 1 MiB).
  size_t max_reading_bytes = 1 << 20;
};

class ClickHouseSink {
 public:
  // Starts one thread per followed topic. Fails only for a topic that does not exist; an
  // unreachable ClickHouse is retried in the background. `dead_letter` outlives the sink.
  static Result<std::unique_ptr<ClickHouseSink>> Start(const ClickHouseSinkOptions& options, log::Log* log,
                                                       DeadLetter* dead_letter, metrics::Registry* registry);
  ~ClickHouseSink();
  void Stop();
  // Each followed topic's delivery (for /readyz).
  std::vector<SinkHealth> health() const;

 private:
  struct Impl;
  explicit ClickHouseSink(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace mare::sinks
