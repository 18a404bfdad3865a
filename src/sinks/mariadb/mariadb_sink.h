// MariaDbSink: keeps the website's tables (rollup_minute, rollup_hour, rollup_day) equal to the
// rollups topic. It consumes `rollups` and upserts each window by (sensor_id, field,
// window_start), keeping the highest revision. The consumer position of each partition is
// written in the same transaction as the rows, so a crash can neither drop nor double a
// revision. While MariaDB is down or slow it retries with backoff and the log buffers; then it
// catches up. Tables are created, or missing columns added, when it connects.
//
// It also upserts the forecasts topic, when there is one, into table forecast_hour, by
// (sensor_id, field, issued_at, target_hour), on a thread and connection of its own, exactly
// once in the same way.
//
// Optionally (`readings`) it also copies the `raw` topic, reading for reading, into table
// `readings`, exactly once in the same way, on a thread and connection of its own so that the
// rollups' freshness does not depend on it. docs/formats/mariadb-tables.md has the tables.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/metrics.h"
#include "common/status.h"
#include "log/duplicate_filter.h"
#include "log/log.h"
#include "reading/parser.h"
#include "sinks/sink_health.h"

namespace mare::sinks {

struct MariaDbSinkOptions {
  bool enabled = false;  // `mare run` runs the sink
  // Records of readings_topic (raw) repeating the sensor and timestamp of one appended within the
  // horizon before are not written (log/duplicate_filter.h). Set by config/ from [log] dedup.
  log::DuplicateFilterOptions raw_dedup;
  std::string host = "127.0.0.1";
  int port = 3306;
  std::string socket;  // a unix socket path instead of host:port
  std::string user = "root";
  std::string password;
  std::string database = "mare";
  std::string topic = "rollups";
  // The rollup tables created on connecting (rollup.resolutions: the config fills them in);
  // a resolution not named here gets its table when its first rollup arrives.
  std::vector<std::string> resolutions;
  std::string consumer = "mariadb";  // its positions' name in mare_sink_offsets and in the log's groups
  size_t batch = 5000;               // rollup messages (and, apart, readings) per transaction at most
  int64_t retry_initial_us = 100'000;
  int64_t retry_max_us = 5'000'000;

  // The forecasts topic into table `forecast_hour`, when the topic exists (the forecast
  // processor makes it), on a thread and connection of its own.
  bool forecasts = true;
  std::string forecasts_topic = "forecasts";

  // The raw readings into table `readings` too (off by default: the docs say why).
  bool readings = false;
  std::string readings_topic = "raw";
  // Fields that get a typed column in `readings` (a virtual DOUBLE computed from its JSON
  // `fields`): ingest.numeric_fields.
  std::vector<std::string> numeric_fields = ParserOptions{}.numeric_fields;
  // The longest raw record it parses (ingest.max_reading_bytes, at least 1 MiB); a longer one
  // is skipped as unreadable.
  size_t max_reading_bytes = 1 << 20;
};

class MariaDbSink {
 public:
  // Starts the sink's thread (two with `readings`). Fails only for a topic that does not exist;
  // an unreachable MariaDB is retried in the background.
  static Result<std::unique_ptr<MariaDbSink>> Start(const MariaDbSinkOptions& options, log::Log* log,
                                                    metrics::Registry* registry);
  ~MariaDbSink();
  void Stop();
  // Each followed topic's delivery (for /readyz).
  std::vector<SinkHealth> health() const;

 private:
  struct Impl;
  explicit MariaDbSink(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace mare::sinks
