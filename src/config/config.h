// Config: everything `mare run` reads from its one TOML file (config/mare.toml documents
// every key with its default). Durations are strings such as "500ms", "1s", "7d"; sizes are
// "64KiB", "32MiB" or plain byte counts. Unknown keys are errors, with their line, so a
// typo never silently falls back to a default.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "common/status.h"

namespace mare {

struct Config {
  std::string data_dir = "data";

  struct Log {
    std::string kind = "embedded";  // embedded | kafka
    int partitions = 4;
    std::string fsync = "interval";  // interval | batch | never
    int64_t fsync_interval_us = 1'000'000;
    int64_t segment_bytes = 64LL << 20;
    int64_t segment_age_us = 3'600'000'000;
    int64_t retention_us = 7LL * 86'400'000'000;
    int64_t retention_bytes = 0;  // per partition; 0: no size limit
    // [log.kafka]: used when kind = "kafka" (docs/formats/kafka.md).
    struct Kafka {
      std::string brokers = "127.0.0.1:9092";
      int64_t replication_factor = 3;
      std::string compression = "lz4";  // none | gzip | snappy | lz4 | zstd
      std::string topic_prefix;
      int64_t delivery_timeout_us = 30'000'000;
      int64_t request_timeout_us = 10'000'000;
      // [log.kafka.client]: librdkafka settings passed through as they are (security.protocol,
      // sasl.*, ssl.*, ...), by name.
      std::vector<std::pair<std::string, std::string>> client;
    } kafka;
  } log;

  struct Ingest {
    int64_t max_reading_bytes = 64 * 1024;
    int64_t max_fields = 64;
    int64_t max_text_bytes = 1024;
    int64_t max_future_skew_us = 300'000'000;
    std::vector<std::string> numeric_fields = {"temperature", "humidity", "pressure", "water_temperature",
                                               "wave_height", "wind_speed", "wind_direction", "dew_point"};
    int64_t dead_letter_max = 10'000;
  } ingest;

  struct Udp {
    bool enabled = true;
    std::string listen = "0.0.0.0:20001";
    int64_t threads = 2;
    int64_t receive_buffer_bytes = 32LL << 20;
    int64_t batch = 64;
    int64_t max_datagram_bytes = 65507;
  } udp;

  struct Tcp {
    bool enabled = true;
    std::string listen = "0.0.0.0:20002";
    int64_t max_connections = 4096;
  } tcp;

  struct Unix {
    bool enabled = true;
    std::string path;  // empty: <data_dir>/ingest.sock
  } unix_socket;

  struct Http {
    bool enabled = true;
    std::string listen = "127.0.0.1:8080";
    int64_t threads = 4;
    int64_t max_body_bytes = 64LL << 20;
  } http;

  struct Rollup {
    bool enabled = true;
    std::vector<std::string> resolutions = {"1m", "1h", "1d"};
    int64_t lateness_us = 600'000'000;
    int64_t emit_interval_us = 1'000'000;
    int64_t checkpoint_interval_us = 1'000'000;
  } rollup;

  struct Store {
    bool enabled = true;
    int64_t retention_us = 0;  // 0 keeps everything
    int64_t flush_rows = 1'000'000;
    int64_t flush_interval_us = 10'000'000;
  } store;

  struct Query {
    int64_t max_rows = 1'000'000;
  } query;

  struct SinkMariaDb {
    bool enabled = false;
    std::string host = "127.0.0.1";
    int64_t port = 3306;
    std::string socket;  // a unix socket instead of host:port
    std::string user = "root";
    std::string password;
    std::string database = "mare";
    int64_t batch = 5000;
    bool readings = false;  // also the raw readings into table `readings`
  } sink_mariadb;

  std::string LogDir() const { return data_dir + "/log"; }
  std::string UnixPath() const { return unix_socket.path.empty() ? data_dir + "/ingest.sock" : unix_socket.path; }
};

// Reads `path` (empty: defaults only), then applies each override "section.key=value", where
// value is TOML ("log.fsync=\"batch\"", "sources.udp.threads=4"); bare words are taken as
// strings ("log.fsync=batch").
Result<Config> LoadConfig(const std::string& path, const std::vector<std::string>& overrides = {});

// The effective configuration as TOML, every key present (for --print-config).
std::string FormatConfig(const Config& config);

}  // namespace mare
