#include "sinks/elasticsearch/document.h"

#include <fmt/format.h>
#include <simdjson.h>

#include <algorithm>
#include <charconv>
#include <iterator>
#include <utility>

#include "common/json_writer.h"
#include "common/time.h"
#include "reading/forecast_row.h"
#include "reading/timestamp.h"
#include "sinks/raw_reading.h"

namespace mare::sinks {
namespace {

// Dynamic fields: every number a double (an integer reading first would otherwise make the field
// a long, and truncate later fractions), every text a keyword (exact values, for filters and
// terms aggregations); no guessing of dates or numbers inside text.
constexpr const char* kDynamic =
    R"("date_detection":false,"numeric_detection":false,"dynamic_templates":[)"
    R"({"integers_as_double":{"match_mapping_type":"long","mapping":{"type":"double"}}},)"
    R"({"numbers_as_double":{"match_mapping_type":"double","mapping":{"type":"double"}}},)"
    R"({"text_as_keyword":{"match_mapping_type":"string","mapping":{"type":"keyword","ignore_above":1024}}}])";

// The next free document of a batch, its buffers kept from an earlier batch.
Document& NextDocument(std::vector<Document>* docs, size_t made) {
  if (docs->size() <= made) docs->resize(made + 1);
  return (*docs)[made];
}

class ReadingDocuments : public DocumentMaker {
 public:
  ReadingDocuments(const std::string& prefix, size_t max_reading_bytes, bool data_stream)
      : DocumentMaker(prefix + (data_stream ? "-readings-stream" : "-readings"),
                      R"("@timestamp":{"type":"date"},"sensor_id":{"type":"keyword"},"location":{"type":"geo_point"})",
                      data_stream),
        reader_(max_reading_bytes) {}

  Status Make(const log::ConsumedRecord& record, std::vector<Document>* docs, size_t* made) override {
    auto read = reader_.Read(record);  // from the numbers the log carries, when it does
    if (!read.ok()) return read.status();
    Fill(**read, &NextDocument(docs, *made));
    ++*made;
    return Status::OK();
  }

 private:
  void Fill(const Reading& r, Document* out) {
    Document& d = *out;
    if (data_stream()) {
      d.index = name();
    } else {
      // Readings of a batch mostly fall on one day: its index name is made once.
      if (!have_day_ || r.timestamp_us < day_start_ || r.timestamp_us - day_start_ >= kMicrosPerDay) {
        have_day_ = true;
        day_start_ = r.timestamp_us - ((r.timestamp_us % kMicrosPerDay) + kMicrosPerDay) % kMicrosPerDay;
        day_index_ = DailyIndex(name(), day_start_);
      }
      d.index = day_index_;
    }
    d.create = data_stream();
    char sensor[16];
    size_t sensor_size = static_cast<size_t>(std::to_chars(sensor, sensor + sizeof(sensor), r.sensor_id).ptr - sensor);
    char micros[24];
    size_t micros_size = static_cast<size_t>(std::to_chars(micros, micros + sizeof(micros), r.timestamp_us).ptr - micros);
    d.id.assign(sensor, sensor_size).append(1, '-').append(micros, micros_size);
    d.version = -1;
    std::string& s = d.source;
    s.assign(R"({"@timestamp":")");
    AppendTimestamp(&s, r.timestamp_us);
    s.append(R"(","sensor_id":")").append(sensor, sensor_size).push_back('"');
    if (r.has_location) {
      s.append(R"(,"location":{"lat":)");
      AppendJsonNumber(&s, r.lat);
      s.append(R"(,"lon":)");
      AppendJsonNumber(&s, r.lon);
      s.push_back('}');
    }
    for (const NumberField& n : r.numbers) {
      s.push_back(',');
      AppendJsonString(&s, n.name);
      s.push_back(':');
      AppendJsonNumber(&s, n.value);
    }
    for (const TextField& t : r.texts) {
      s.push_back(',');
      AppendJsonString(&s, t.name);
      s.push_back(':');
      AppendJsonString(&s, t.value);
    }
    s.push_back('}');
  }

  RawReadingReader reader_;
  // The day of the last reading (UTC, its first microsecond) and its index's name.
  bool have_day_ = false;
  int64_t day_start_ = 0;
  std::string day_index_;
};

class RollupDocuments : public DocumentMaker {
 public:
  explicit RollupDocuments(const std::string& prefix)
      : DocumentMaker(prefix + "-rollups",
                      R"("@timestamp":{"type":"date"},"window_start":{"type":"date"},"window_end":{"type":"date"},)"
                      R"("sensor_id":{"type":"keyword"},"field":{"type":"keyword"},"resolution":{"type":"keyword"},)"
                      R"("count":{"type":"long"},"revision":{"type":"long"},"final":{"type":"boolean"})") {}

  Status Make(const log::ConsumedRecord& record, std::vector<Document>* docs, size_t* made) override {
    std::string_view json = record.value;
    auto bad = [&](std::string_view why) {
      return Status::Corruption(fmt::format("rollup record: {}: {}", why, json.substr(0, 200)));
    };
    if (json.empty() || json.front() != '{') return bad("not an object");
    padded_ = simdjson::padded_string(json);
    simdjson::ondemand::document doc;
    simdjson::ondemand::object o;
    if (parser_.iterate(padded_).get(doc) || doc.get_object().get(o)) return bad("not a JSON object");
    uint64_t sensor = 0;
    int64_t revision = -1;
    std::string field, resolution, start;
    for (auto f : o) {
      std::string_view key;
      if (f.unescaped_key().get(key)) return bad("unreadable key");
      std::string_view text;
      if (key == "sensor_id") {
        if (f.value().get_uint64().get(sensor)) return bad("sensor_id is not an integer");
      } else if (key == "field") {
        if (f.value().get_string().get(text)) return bad("field is not text");
        field = text;
      } else if (key == "resolution") {
        if (f.value().get_string().get(text)) return bad("resolution is not text");
        resolution = text;
      } else if (key == "window_start") {
        if (f.value().get_string().get(text)) return bad("window_start is not text");
        start = text;
      } else if (key == "revision") {
        if (f.value().get_int64().get(revision)) return bad("revision is not an integer");
      }
    }
    if (field.empty() || resolution.empty() || start.empty() || revision < 0) return bad("missing fields");
    int64_t start_us = 0;
    std::string why;
    if (!ParseTimestampText(start, &start_us, &why)) return bad("window_start: " + why);
    Document* out = &NextDocument(docs, *made);
    out->index = DailyIndex(name(), start_us);
    out->id = fmt::format("{}/{}/{}/{}", sensor, field, resolution, start_us);
    out->version = revision;
    out->create = false;
    out->source.assign(R"({"@timestamp":)");
    AppendJsonString(&out->source, start);
    out->source.push_back(',');
    out->source.append(json.substr(1));
    ++*made;
    return Status::OK();
  }

 private:
  simdjson::ondemand::parser parser_;
  simdjson::padded_string padded_;
};

class ForecastDocuments : public DocumentMaker {
 public:
  explicit ForecastDocuments(const std::string& prefix)
      : DocumentMaker(prefix + "-forecasts",
                      R"("@timestamp":{"type":"date"},"issued_at":{"type":"date"},"target_hour":{"type":"date"},)"
                      R"("sensor_id":{"type":"keyword"},"field":{"type":"keyword"},"model":{"type":"keyword"},)"
                      R"("lead_hours":{"type":"integer"},"value":{"type":"double"},"lower":{"type":"double"},)"
                      R"("upper":{"type":"double"},"day_ahead":{"type":"boolean"})") {}

  Status Make(const log::ConsumedRecord& record, std::vector<Document>* docs, size_t* made) override {
    Status s = ReadForecastRows(record.value, &rows_);
    if (!s.ok()) return Status::Corruption(s.message());
    for (size_t k = 0; k < rows_.size(); ++k) {
      const ForecastRow& f = rows_[k];
      Document& d = NextDocument(docs, *made + k);
      d.index = DailyIndex(name(), f.target_hour_us);
      d.id = fmt::format("{}/{}/{}/{}", f.sensor_id, f.field, f.issued_at_us, f.target_hour_us);
      d.version = -1;
      d.create = false;
      std::string& j = d.source;
      j.assign(R"({"@timestamp":")");
      AppendTimestamp(&j, f.target_hour_us);
      fmt::format_to(std::back_inserter(j), R"(","sensor_id":"{}","field":)", f.sensor_id);
      AppendJsonString(&j, f.field);
      j.append(R"(,"issued_at":")");
      AppendTimestamp(&j, f.issued_at_us);
      j.append(R"(","target_hour":")");
      AppendTimestamp(&j, f.target_hour_us);
      fmt::format_to(std::back_inserter(j), R"(","lead_hours":{})", (f.target_hour_us - f.issued_at_us) / 3'600'000'000);
      const std::pair<const char*, const double*> numbers[] = {
          {f.has_value ? "value" : nullptr, &f.value}, {f.has_lower ? "lower" : nullptr, &f.lower},
          {f.has_upper ? "upper" : nullptr, &f.upper}};
      for (const auto& [name, v] : numbers) {
        if (name == nullptr) continue;  // null in the issue: left out, as readings' nulls are
        fmt::format_to(std::back_inserter(j), R"(,"{}":)", name);
        AppendJsonNumber(&j, *v);
      }
      j.append(R"(,"model":)");
      AppendJsonString(&j, f.model);
      j.append(f.day_ahead ? R"(,"day_ahead":true})" : R"(,"day_ahead":false})");
    }
    *made += rows_.size();
    return Status::OK();
  }

 private:
  std::vector<ForecastRow> rows_;
};

}  // namespace

// A daily template covers "<name>-*"; a data stream's covers its name alone, with a higher
// priority, so that it wins over a daily template of the same prefix left by an earlier run
// (Elasticsearch refuses two overlapping templates of one priority).
std::string DocumentMaker::Template(int replicas) const {
  return fmt::format(
      R"({{"index_patterns":["{}{}"],{}"priority":{},"template":{{"settings":{{"number_of_shards":1,)"
      R"("number_of_replicas":{},"refresh_interval":"1s"}},"mappings":{{{},"properties":{{{}}}}}}},)"
      R"("_meta":{{"created_by":"mare"}}}})",
      name_, data_stream_ ? "" : "-*", data_stream_ ? R"("data_stream":{},)" : "", data_stream_ ? 210 : 200, replicas,
      kDynamic, properties_);
}

std::string DailyIndex(std::string_view name, int64_t micros) {
  CivilTime t = ToCivil(micros);
  return fmt::format("{}-{:04d}.{:02d}.{:02d}", name, t.year, t.month, t.day);
}

std::unique_ptr<DocumentMaker> MakeReadingDocuments(const std::string& index_prefix, size_t max_reading_bytes,
                                                    bool data_stream) {
  return std::make_unique<ReadingDocuments>(index_prefix, max_reading_bytes, data_stream);
}

std::unique_ptr<DocumentMaker> MakeForecastDocuments(const std::string& index_prefix) {
  return std::make_unique<ForecastDocuments>(index_prefix);
}

std::unique_ptr<DocumentMaker> MakeRollupDocuments(const std::string& index_prefix) {
  return std::make_unique<RollupDocuments>(index_prefix);
}

size_t RecordsPerBulk(std::string_view topic, size_t batch) {
  constexpr size_t kMostDocumentsARecord = 168;
  return topic == "forecasts" ? std::max<size_t>(1, batch / kMostDocumentsARecord) : batch;
}

}  // namespace mare::sinks
