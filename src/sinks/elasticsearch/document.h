// Documents: what a record of the log becomes in Elasticsearch (docs/formats/elasticsearch.md).
// A reading (topic raw) goes to the daily index <prefix>-readings-YYYY.MM.DD of its timestamp,
// under the id "<sensor_id>-<timestamp_us>"; a rollup (topic rollups) to
// <prefix>-rollups-YYYY.MM.DD of its window's start, under its key
// "<sensor_id>/<field>/<resolution>/<window_start>", with its revision as an external version.
// The ids are deterministic, so a resend overwrites instead of adding a copy. Each maker also
// knows the index template its documents need.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "common/status.h"
#include "log/log.h"

namespace mare::sinks {

struct Document {
  std::string index;
  std::string id;
  std::string source;    // the document's JSON, one line
  int64_t version = -1;  // an external version (rollups: the revision); -1 for none
};

class DocumentMaker {
 public:
  virtual ~DocumentMaker() = default;
  // Corruption, with the reason, when the record is not one readable message of its topic.
  virtual Status Make(const log::ConsumedRecord& record, Document* out) = 0;
  // "mare-readings": the template's name, also the prefix of its daily indices.
  virtual const std::string& name() const = 0;
  // The body of PUT _index_template/<name()>.
  virtual std::string Template(int replicas) const = 0;
};

// Readings as documents: {"@timestamp":"2024-01-21T10:06:04.095931Z","sensor_id":"1",
// "location":{"lat":42.48,"lon":3.18},"temperature":20.9,...,"status":"ok"}.
std::unique_ptr<DocumentMaker> MakeReadingDocuments(const std::string& index_prefix, size_t max_reading_bytes);

// Rollup messages as documents: the message's own fields and "@timestamp" (the window's start).
std::unique_ptr<DocumentMaker> MakeRollupDocuments(const std::string& index_prefix);

// "<name>-2024.01.21" for an instant of that UTC day.
std::string DailyIndex(std::string_view name, int64_t micros);

}  // namespace mare::sinks
