// Documents: what a record of the log becomes in Elasticsearch (docs/formats/elasticsearch.md).
// A reading (topic raw) goes to the daily index <prefix>-readings-YYYY.MM.DD of its timestamp
// (or, in data-stream mode, to the data stream <prefix>-readings-stream), under the id
// "<sensor_id>-<timestamp_us>"; a rollup (topic rollups) to <prefix>-rollups-YYYY.MM.DD of its
// window's start, under its key "<sensor_id>/<field>/<resolution>/<window_start>", with its
// revision as an external version; a forecast issue (topic forecasts) to one document per target
// hour in <prefix>-forecasts-YYYY.MM.DD of that hour, under
// "<sensor_id>/<field>/<issued_at_us>/<target_hour_us>". The ids are deterministic, so a resend
// overwrites (or, into a data stream, is refused as already there) instead of adding a copy.
// Each maker also knows the index template its documents need.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"
#include "log/log.h"

namespace mare::sinks {

struct Document {
  std::string index;
  std::string id;
  std::string source;    // the document's JSON, one line
  int64_t version = -1;  // an external version (rollups: the revision); -1 for none
  // Sent as a `create` (a data stream takes nothing else: 409 when the id is there already)
  // rather than an `index` (which overwrites).
  bool create = false;
};

class DocumentMaker {
 public:
  virtual ~DocumentMaker() = default;
  // Makes the record's documents into (*docs)[*made], [*made + 1], ..., reusing the buffers
  // there, and moves *made past them: one for a reading or a rollup, one per target hour for a
  // forecast issue. Corruption, with the reason, when the record is not one readable message of
  // its topic; then *made is as it was.
  virtual Status Make(const log::ConsumedRecord& record, std::vector<Document>* docs, size_t* made) = 0;
  // "mare-readings": the template's name, also the prefix of its daily indices (or, in
  // data-stream mode, "mare-readings-stream", the data stream's name).
  const std::string& name() const { return name_; }
  // The body of PUT _index_template/<name()>.
  std::string Template(int replicas) const;

 protected:
  // `properties`: the template's fixed mappings, JSON members without the braces.
  DocumentMaker(std::string name, std::string properties, bool data_stream = false)
      : name_(std::move(name)), properties_(std::move(properties)), data_stream_(data_stream) {}
  bool data_stream() const { return data_stream_; }

 private:
  const std::string name_, properties_;
  const bool data_stream_;
};

// Readings as documents: {"@timestamp":"2024-01-21T10:06:04.095931Z","sensor_id":"1",
// "location":{"lat":42.48,"lon":3.18},"temperature":20.9,...,"status":"ok"}.
// With `data_stream`, into the data stream <prefix>-readings-stream as `create`s.
std::unique_ptr<DocumentMaker> MakeReadingDocuments(const std::string& index_prefix, size_t max_reading_bytes,
                                                    bool data_stream = false);

// Rollup messages as documents: the message's own fields and "@timestamp" (the window's start).
std::unique_ptr<DocumentMaker> MakeRollupDocuments(const std::string& index_prefix);

// Forecast issues as documents, one per target hour: {"@timestamp":"<target_hour>",
// "sensor_id":"7","field":"temperature","issued_at":"...","target_hour":"...","lead_hours":1,
// "value":13.52,"lower":12.9,"upper":14.1,"model":"ensemble","day_ahead":false} (a null value,
// lower or upper left out).
std::unique_ptr<DocumentMaker> MakeForecastDocuments(const std::string& index_prefix);

// "<name>-2024.01.21" for an instant of that UTC day.
std::string DailyIndex(std::string_view name, int64_t micros);

// Records a bulk request of `topic` may carry so that it holds at most `batch` documents: a
// forecast issue makes one a target hour, up to forecast.horizon_hours' bound of 168; any other
// record one. (A full batch of forecasts was up to 168 x batch documents: past Elasticsearch's
// 100 MB http.max_content_length at the default batch, 413 on every try, the copy stuck.)
size_t RecordsPerBulk(std::string_view topic, size_t batch);

}  // namespace mare::sinks
