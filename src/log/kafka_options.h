// KafkaLogOptions: how mare connects to a Kafka cluster ([log.kafka] in mare.toml) and reads
// event times from other producers' records; shared by the Kafka log and its parts.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/metrics.h"

namespace mare::log {

// Finds the event time of a record whose producer gave none. One per consumer: may keep state.
class EventTimeReader {
 public:
  virtual ~EventTimeReader() = default;
  virtual bool Read(std::string_view value, int64_t* event_time_us) = 0;
};

struct KafkaLogOptions {
  std::string brokers = "127.0.0.1:9092";  // bootstrap.servers
  int32_t replication_factor = 3;          // for topics mare creates
  std::string compression = "lz4";         // none, gzip, snappy, lz4, zstd
  std::string topic_prefix;                // Kafka topic and group names are prefix + mare's name
  std::string client_id = "mare";
  // Kafka's transactional.id (without the prefix) of the producer that appends several
  // partitions together (Log::AppendTogether): stable across restarts of one process on one node,
  // distinct between processes. Empty: "<client_id>-<host>".
  std::string transactional_id;
  // HTTP ingest's requests (Log::AppendTogether) all or nothing, each in a Kafka transaction
  // (kafka_transactions.h); off: their partitions appended one by one, a failure can keep some.
  // The cost of each mode: docs/formats/kafka.md, "HTTP requests".
  bool atomic_ingest = true;
  int64_t delivery_timeout_us = 30'000'000;  // an Append not acknowledged by then fails
  int64_t request_timeout_us = 10'000'000;   // admin requests, metadata, commits
  // How long a long-running command (run, ingest, stream, store, sink, forecast run) waits at
  // start for brokers it cannot reach: Kafka started beside mare (docker compose, a reboot) is
  // not up yet. 0: fail at once, as the one-shot commands (log, batch) always do.
  int64_t startup_wait_us = 120'000'000;
  // librdkafka settings passed through to every client (security.protocol, sasl.*, ssl.*, ...);
  // they win over mare's own choices except the producer's idempotence and acks.
  std::vector<std::pair<std::string, std::string>> client;
  // Per topic; null or returning null: records without the header keep Kafka's timestamp.
  std::function<std::unique_ptr<EventTimeReader>(std::string_view topic)> event_time_reader;
  metrics::Registry* metrics = nullptr;  // defaults to Registry::Global()
};

}  // namespace mare::log
