// ElasticsearchSink: keeps Elasticsearch (7.x, 8.x) or OpenSearch indices equal to the log, for
// Kibana and other search-side tools. It follows the raw topic into daily indices
// <prefix>-readings-YYYY.MM.DD or the data stream <prefix>-readings-stream (and, optionally, the
// rollups topic into <prefix>-rollups-*, the forecasts topic into <prefix>-forecasts-*) through
// the `_bulk` API. Index templates are put on start. Every document has a deterministic
// id, and the sink's position is written to Elasticsearch (index <prefix>-sink-offsets) only
// once every item of a batch, and of every batch before it, was acknowledged (several bulk
// requests may be in flight at once: in_flight), so a crash or an outage neither drops nor
// doubles a reading: the batch after the last position is sent again and overwrites itself.
// Items answered 429 or 5xx, alone or with their whole request, are sent again with backoff;
// items Elasticsearch rejects (a mapping error) go to the dead-letter file with its reason.
// docs/formats/elasticsearch.md has the documents and the position.
#pragma once

#include <vector>

#include <cstdint>
#include <memory>
#include <string>

#include "common/metrics.h"
#include "common/status.h"
#include "log/duplicate_filter.h"
#include "log/log.h"
#include "reading/dead_letter.h"
#include "sinks/sink_health.h"

namespace mare::sinks {

// Where readings go: daily indices, or one data stream (append-only: `create`s, and a resend of
// a document already there is answered 409 and counted as done).
enum class ElasticsearchIndexMode { kDaily, kDataStream };

struct ElasticsearchSinkOptions {
  bool enabled = false;                       // `mare run` runs the sink
  // Raw records repeating the sensor and timestamp of one appended within the horizon before are
  // not written (log/duplicate_filter.h). Set by config/ from [log] dedup.
  log::DuplicateFilterOptions raw_dedup;
  std::string url = "http://127.0.0.1:9200";  // one node; scheme, host and port
  std::string user;                           // basic authentication when set
  std::string password;
  std::string index_prefix = "mare";  // <prefix>-readings-*, <prefix>-rollups-*, <prefix>-sink-offsets
  int replicas = 1;                   // number_of_replicas of the indices it creates (0 on one node)
  bool readings = true;               // the raw topic into <prefix>-readings-*
  bool rollups = false;               // the rollups topic into <prefix>-rollups-*
  bool forecasts = false;             // the forecasts topic into <prefix>-forecasts-*
  ElasticsearchIndexMode index_mode = ElasticsearchIndexMode::kDaily;  // readings' (index_mode)
  std::string consumer = "elasticsearch";  // its positions' name, in <prefix>-sink-offsets and the log's groups
  size_t batch = 5000;                     // records per bulk request at most (forecasts: batch / 168)
  // Bulk requests in flight at once, each on a connection of its own; the position still moves
  // only past batches that, with every one before them, were acknowledged.
  int in_flight = 2;
  bool gzip = true;                        // compress request bodies
  int64_t timeout_us = 30'000'000;         // one request
  // How long an item of a bulk request may wait for its shard (the bulk API's `timeout`): an
  // item whose primary is not assigned by then is answered 503 and sent again. Below timeout_us;
  // 0: two thirds of timeout_us (20 s of the default 30 s), so a shorter timeout alone stays valid.
  int64_t bulk_timeout_us = 0;
  int64_t retry_initial_us = 100'000;
  int64_t retry_max_us = 5'000'000;
  // On Kafka: how long giving partitions up waits for what was read to be written (LogFollowerOptions).
  int64_t revoke_timeout_us = 30'000'000;
  // The longest raw record it parses (ingest.max_reading_bytes, at least 1 MiB).
  size_t max_reading_bytes = 1 << 20;
};

class ElasticsearchSink {
 public:
  // Starts one thread per followed topic. Fails only for a topic that does not exist; an
  // unreachable Elasticsearch is retried in the background. `dead_letter` outlives the sink.
  static Result<std::unique_ptr<ElasticsearchSink>> Start(const ElasticsearchSinkOptions& options, log::Log* log,
                                                          DeadLetter* dead_letter, metrics::Registry* registry);
  ~ElasticsearchSink();
  void Stop();
  // Each followed topic's delivery (for /readyz).
  std::vector<SinkHealth> health() const;

 private:
  struct Impl;
  explicit ElasticsearchSink(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace mare::sinks
