// Config: everything a mare command reads from its one TOML file (config/mare.toml documents
// every key with its default). Each section is the options struct of the component it
// configures, with that component's own defaults (as a Vector component owns its config): the
// config only maps TOML keys onto their fields, in one table (config.cc) that reading, --set,
// command-line flags and --print-config all use.
//
// Durations are strings such as "500ms", "1s", "7d"; sizes are "64KiB", "32MiB" or plain byte
// counts. Unknown keys are errors, with their line, so a typo never silently falls back to a
// default.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"
#include "log/embedded_log.h"
#include "log/kafka_log.h"
#include "pgwire/pgwire_options.h"
#include "processors/forecast/forecast_processor.h"
#include "processors/rollup/rollup_processor.h"
#include "query/query_api.h"
#include "reading/dead_letter.h"
#include "sinks/clickhouse/clickhouse_sink.h"
#include "sinks/elasticsearch/elasticsearch_sink.h"
#include "sinks/mariadb/mariadb_sink.h"
#include "sources/ingest.h"
#include "sources/line_protocol_ingest.h"
#include "sources/mqtt_source.h"
#include "sources/stream_source.h"
#include "sources/udp_source.h"
#include "server/http_server_options.h"
#include "store/store.h"

namespace mare {

struct Config {
  std::string data_dir = "data";

  // [log]: which log, and the raw topic that commands create in it.
  struct Log {
    std::string kind = "embedded";  // embedded | kafka
    int partitions = 4;
    int64_t retention_us = 7LL * 86'400'000'000;
    int64_t retention_bytes = 0;  // per partition; 0: no size limit
    // The consumers of raw (rollups, store, sinks) drop a record repeating the sensor and event
    // time of one appended within ingest.dedup_horizon before (log/duplicate_filter.h):
    // "auto" on Kafka only (where two `mare ingest` processes can each append a copy), "on", "off".
    std::string dedup = "auto";
    // The embedded log's codec for the raw topic's batches: "none" or "zstd" (rollup.compression
    // is the rollups topic's). Kafka compresses with log.kafka.compression instead.
    std::string compression = "none";
    log::EmbeddedLogOptions embedded;  // fsync, fsync_interval, segment_bytes, segment_age
    log::KafkaLogOptions kafka;        // [log.kafka] and [log.kafka.client]
  } log;

  IngestOptions ingest;            // [ingest]: the reading parser's limits
  DeadLetterOptions dead_letter;   // [ingest] dead_letter_max
  // Every listener on loopback by default: raw ingest carries no token (README, "Security").
  UdpSourceOptions udp{.listen = "127.0.0.1:20001"};                    // [sources.udp]
  StreamSourceOptions tcp{.name = "tcp", .listen = "127.0.0.1:20002"};  // [sources.tcp]
  StreamSourceOptions unix_socket{.name = "unix"};                    // [sources.unix]; listen empty: <data_dir>/ingest.sock
  MqttSourceOptions mqtt;                                             // [sources.mqtt]
  LineProtocolSourceOptions line_protocol;                            // [sources.line_protocol]

  // [http]
  struct Http {
    bool enabled = true;
    std::string listen = "127.0.0.1:8080";
    HttpServerOptions server;  // its limits: connections, deadlines, body sizes
  } http;

  rollup::RollupOptions rollup;           // [rollup]
  forecast::ForecastOptions forecast;     // [forecast]
  store::StoreOptions store;              // [store]
  query::QueryApiOptions query;           // [query]
  pgwire::PgwireOptions pgwire;           // [pgwire]
  sinks::MariaDbSinkOptions sink_mariadb; // [sink.mariadb]
  sinks::ElasticsearchSinkOptions sink_elasticsearch;  // [sink.elasticsearch]
  sinks::ClickHouseSinkOptions sink_clickhouse;        // [sink.clickhouse]

  std::string LogDir() const { return data_dir + "/log"; }
  std::string UnixPath() const { return unix_socket.listen.empty() ? data_dir + "/ingest.sock" : unix_socket.listen; }
};

// Reads `path` (empty: defaults only), then applies each override "section.key=value", where
// value is TOML ("log.fsync=\"batch\"", "sources.udp.threads=4"); bare words are taken as
// strings ("log.fsync=batch"). Then fills in what follows from other keys: the directories under
// data_dir, and the MariaDB sink's typed columns and parse limit from [ingest].
Result<Config> LoadConfig(const std::string& path, const std::vector<std::string>& overrides = {});

// The effective configuration as TOML, every key present (for --print-config), secrets hidden.
std::string FormatConfig(const Config& config);

// One key's value as --print-config writes it ("\"batch\"" for log.fsync); empty for no such key.
std::string FormatConfigValue(const Config& config, const std::string& key);

// Every key's dotted name ("log.fsync", "sources.udp.threads", ...), in the order of
// FormatConfig: for tests that config/mare.toml documents each one.
std::vector<std::string> ConfigKeys();

}  // namespace mare
