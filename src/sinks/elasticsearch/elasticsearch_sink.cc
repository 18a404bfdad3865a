#include "sinks/elasticsearch/elasticsearch_sink.h"

#include <fmt/format.h>
#include <simdjson.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <map>
#include <thread>
#include <vector>

#include "common/json_writer.h"
#include "common/time.h"
#include "sinks/elasticsearch/bulk_response.h"
#include "sinks/elasticsearch/document.h"
#include "sinks/elasticsearch/elasticsearch_sink_metrics.h"
#include "sinks/elasticsearch/http_client.h"

namespace mare::sinks {
namespace {

namespace esm = elasticsearch_sink_metrics;

// The "next_offset" of a GET <index>/_doc/<id> answer; -1 when it has none.
int64_t NextOffsetOf(std::string_view body) {
  simdjson::ondemand::parser parser;
  simdjson::padded_string padded(body);
  simdjson::ondemand::document doc;
  int64_t next = -1;
  if (parser.iterate(padded).get(doc)) return -1;
  auto source = doc["_source"];
  if (source.error()) return -1;
  if (source["next_offset"].get_int64().get(next)) return -1;
  return next;
}

// One topic followed into Elasticsearch, on a thread and connection of its own: each polled
// batch is sent as bulk requests until every item is acknowledged (or dead-lettered), then its
// positions are saved. A failure anywhere before that keeps the batch and tries again, so the
// positions never run ahead of the documents.
class Follower {
 public:
  Follower(const ElasticsearchSinkOptions& o, std::string topic, std::unique_ptr<DocumentMaker> maker, log::Log* l,
           DeadLetter* dl, metrics::Registry* r)
      : options(o),
        topic(std::move(topic)),
        maker(std::move(maker)),
        log(l),
        dead_letter(dl),
        client({.url = o.url, .user = o.user, .password = o.password, .timeout_us = o.timeout_us, .gzip = o.gzip}),
        positions_index(o.index_prefix + "-sink-offsets"),
        records_read(r->GetCounter(esm::kRecordsRead, {{"topic", this->topic}})),
        written(r->GetCounter(esm::kDocumentsWritten, {{"topic", this->topic}})),
        dead_lettered(r->GetCounter(esm::kDocumentsDeadLettered, {{"topic", this->topic}})),
        retried(r->GetCounter(esm::kItemsRetried, {{"topic", this->topic}})),
        errors(r->GetCounter(esm::kErrors, {{"topic", this->topic}})),
        up(r->GetGauge(esm::kUp, {{"topic", this->topic}})),
        lag(r->GetGauge(esm::kLagRecords, {{"topic", this->topic}})),
        bulk_seconds(r->GetHistogram(esm::kBulkSeconds, {{"topic", this->topic}})),
        request_bytes(r->GetCounter(esm::kRequestBytes, {{"topic", this->topic}})) {}

  ~Follower() { Stop(); }

  Status Start() {
    partitions = log->Partitions(topic);
    if (partitions == 0) return Status::NotFound("no topic " + topic + " in the log");
    auto subscribed = log->Subscribe(options.consumer, topic);
    if (!subscribed.ok()) return subscribed.status();
    consumer = std::move(*subscribed);
    thread = std::thread([this] { Run(); });
    return Status::OK();
  }

  void Stop() {
    stop.store(true);
    if (thread.joinable()) thread.join();
  }

 private:
  // One request; a transport failure or an HTTP status outside `ok_statuses` is an error.
  Result<ElasticsearchClient::Response> Request(std::string_view method, std::string_view path, std::string_view body,
                                                std::initializer_list<long> ok_statuses,
                                                std::string_view content_type = "application/json") {
    uint64_t before = client.bytes_sent();
    auto r = client.Send(method, path, body, content_type);
    request_bytes.Add(client.bytes_sent() - before);
    if (!r.ok()) {
      up.Set(0);
      return r.status();
    }
    up.Set(1);
    if (std::find(ok_statuses.begin(), ok_statuses.end(), r->status) == ok_statuses.end()) {
      return Status::Unavailable(fmt::format("{} {}: HTTP {}: {}", method, path, r->status, r->body.substr(0, 300)));
    }
    return r;
  }

  std::string PositionId(int32_t p) const { return fmt::format("{}.{}.{}", options.consumer, topic, p); }

  // On start, until it succeeds: the index template, the positions' index, and the positions.
  Status Prepare() {
    auto put = Request("PUT", "/_index_template/" + maker->name(), maker->Template(options.replicas), {200});
    if (!put.ok()) return put.status();
    std::string settings = fmt::format(R"({{"settings":{{"number_of_shards":1,"number_of_replicas":{}}},)"
                                       R"("mappings":{{"properties":{{"consumer":{{"type":"keyword"}},"topic":{{"type":"keyword"}},)"
                                       R"("partition":{{"type":"integer"}},"next_offset":{{"type":"long"}},"updated_at":{{"type":"date"}}}}}}}})",
                                       options.replicas);
    // 400 resource_already_exists_exception: made by an earlier start.
    auto created = Request("PUT", "/" + positions_index, settings, {200, 400});
    if (!created.ok()) return created.status();
    if (created->status == 400 && created->body.find("resource_already_exists_exception") == std::string::npos) {
      return Status::Unavailable("create " + positions_index + ": " + created->body.substr(0, 300));
    }
    committed.clear();
    for (int32_t p = 0; p < partitions; ++p) {
      auto got = Request("GET", fmt::format("/{}/_doc/{}", positions_index, PositionId(p)), "", {200, 404});
      if (!got.ok()) return got.status();
      int64_t next = got->status == 200 ? NextOffsetOf(got->body) : 0;
      if (next < 0) return Status::Corruption("position " + PositionId(p) + ": no next_offset in " + got->body.substr(0, 300));
      committed[p] = next;
      MARE_RETURN_IF_ERROR(consumer->Seek(p, next));
    }
    return Status::OK();
  }

  void DeadLetterRecord(const log::ConsumedRecord& r, std::string_view reason, std::string_view detail) {
    dead_lettered.Add();
    if (dead_letter) dead_letter->Add("elasticsearch", reason, detail, r.value);
  }

  // Sleeps the backoff (cut short by Stop) and doubles it. The lag goes on growing meanwhile.
  void Backoff() {
    if (!committed.empty()) UpdateLag();
    for (int64_t slept = 0; slept < backoff && !stop.load(); slept += 50'000) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    backoff = std::min(backoff * 2, options.retry_max_us);
  }

  void Warn(const Status& s) {
    errors.Add();
    int64_t now = MonotonicMicros();
    if (now - last_warning > 10'000'000) {  // at most one line per 10 s while it lasts
      spdlog::warn("elasticsearch sink: {} (retrying every {}, the log keeps the {} meanwhile)", s.message(),
                   FormatDuration(backoff), topic);
      last_warning = now;
    }
  }

  // Sends the batch's documents until each is acknowledged or dead-lettered. Unavailable only
  // when stopped first.
  Status Deliver(const std::vector<log::ConsumedRecord>& records) {
    docs.resize(std::max(docs.size(), records.size()));
    pending.clear();
    for (size_t i = 0; i < records.size(); ++i) {
      Status s = maker->Make(records[i].value, &docs[i]);
      if (s.ok()) {
        pending.push_back(i);
      } else {
        DeadLetterRecord(records[i], "unreadable", s.message());
      }
    }
    while (!pending.empty()) {
      if (stop.load()) return Status::Unavailable("stopped");
      body.clear();
      for (size_t i : pending) {
        const Document& d = docs[i];
        body.append(R"({"index":{"_index":)");
        AppendJsonString(&body, d.index);
        body.append(R"(,"_id":)");
        AppendJsonString(&body, d.id);
        if (d.version >= 0) fmt::format_to(std::back_inserter(body), R"(,"version":{},"version_type":"external_gte")", d.version);
        body.append("}}\n");
        body.append(d.source);
        body.push_back('\n');
      }
      auto r = Request("POST", "/_bulk", body, {200}, "application/x-ndjson");
      Status s = r.ok() ? ReadBulkResponse(r->body, &outcomes) : r.status();
      if (s.ok() && outcomes.size() != pending.size()) {
        s = Status::Corruption(fmt::format("bulk answer has {} items for {} sent", outcomes.size(), pending.size()));
      }
      if (!s.ok()) {
        Warn(s);
        Backoff();
        continue;
      }
      still.clear();
      for (size_t k = 0; k < pending.size(); ++k) {
        switch (FateOf(outcomes[k].status)) {
          case BulkItemFate::kDone:
            written.Add();
            break;
          case BulkItemFate::kRetry:
            still.push_back(pending[k]);
            break;
          case BulkItemFate::kRejected:
            DeadLetterRecord(records[pending[k]], "elasticsearch_rejected",
                             fmt::format("{} {} {}: {}", outcomes[k].status, docs[pending[k]].index, docs[pending[k]].id,
                                         outcomes[k].error));
            break;
        }
      }
      if (!still.empty()) {
        retried.Add(still.size());
        Warn(Status::Unavailable(fmt::format("{} of {} bulk items refused for now ({}: {})", still.size(), pending.size(),
                                             outcomes[0].status, outcomes[0].error)));
        Backoff();
      } else {
        backoff = options.retry_initial_us;
      }
      pending.swap(still);
    }
    return Status::OK();
  }

  // Writes the positions after a delivered batch, until Elasticsearch acknowledges them.
  Status SavePositions(const std::map<int32_t, int64_t>& next) {
    body.clear();
    std::string now = FormatTimestamp(NowMicros());
    for (const auto& [p, n] : next) {
      body.append(R"({"index":{"_index":)");
      AppendJsonString(&body, positions_index);
      body.append(R"(,"_id":)");
      AppendJsonString(&body, PositionId(p));
      body.append("}}\n{\"consumer\":");
      AppendJsonString(&body, options.consumer);
      body.append(",\"topic\":");
      AppendJsonString(&body, topic);
      fmt::format_to(std::back_inserter(body), R"(,"partition":{},"next_offset":{},"updated_at":"{}"}})", p, n, now);
      body.push_back('\n');
    }
    for (;;) {
      if (stop.load()) return Status::Unavailable("stopped");
      auto r = Request("POST", "/_bulk", body, {200}, "application/x-ndjson");
      Status s = r.ok() ? ReadBulkResponse(r->body, &outcomes) : r.status();
      if (s.ok()) {
        for (const BulkItemOutcome& o : outcomes) {
          if (FateOf(o.status) != BulkItemFate::kDone) s = Status::Unavailable("save position: " + o.error);
        }
      }
      if (s.ok()) return s;
      Warn(s);
      Backoff();
    }
  }

  void UpdateLag() {
    // The consumer's own idea of the end: asking the log could wait on a broker that is away.
    int64_t behind = consumer->Lag(static_cast<int32_t>(committed.size()),
                                   [&](int32_t p) { return std::max<int64_t>(committed.at(p), 0); });
    if (behind >= 0) lag.Set(static_cast<double>(behind));
  }

  void Run() {
    backoff = options.retry_initial_us;
    bool prepared = false;
    int64_t last_lag = 0;
    std::vector<log::ConsumedRecord> records;
    while (!stop.load()) {
      if (!prepared) {
        Status s = Prepare();
        if (!s.ok()) {
          Warn(s);
          Backoff();
          continue;
        }
        prepared = true;
        backoff = options.retry_initial_us;
        if (last_warning) spdlog::info("elasticsearch sink: {} reachable again, catching up on {}", options.url, topic);
        last_warning = 0;
      }
      Status s = consumer->Poll(&records, options.batch, std::chrono::milliseconds(100));
      if (!s.ok()) {
        spdlog::error("elasticsearch sink: reading {}: {}", topic, s.ToString());
        std::this_thread::sleep_for(std::chrono::milliseconds(500));
        continue;
      }
      if (!records.empty()) {
        records_read.Add(records.size());
        int64_t start = MonotonicMicros();
        std::map<int32_t, int64_t> next;
        for (const log::ConsumedRecord& r : records) next[r.partition] = r.offset + 1;
        if (!Deliver(records).ok() || !SavePositions(next).ok()) break;  // stopped
        bulk_seconds.Observe(static_cast<double>(MonotonicMicros() - start) / 1e6);
        if (last_warning) {
          spdlog::info("elasticsearch sink: {} reachable again, catching up on {}", options.url, topic);
          last_warning = 0;
        }
        for (const auto& [p, n] : next) {
          committed[p] = n;
          // For `mare log groups`; refused when the log is open read-only, which is fine: the
          // position that counts is the one in Elasticsearch.
          Status c = consumer->Commit(p, n);
          if (!c.ok()) spdlog::debug("elasticsearch sink: log position of {}/{}: {}", topic, p, c.ToString());
        }
      }
      if (MonotonicMicros() - last_lag > 1'000'000 && !committed.empty()) {
        UpdateLag();
        last_lag = MonotonicMicros();
      }
    }
  }

  const ElasticsearchSinkOptions options;
  const std::string topic;
  std::unique_ptr<DocumentMaker> maker;
  log::Log* log;
  DeadLetter* dead_letter;
  ElasticsearchClient client;
  const std::string positions_index;
  std::unique_ptr<log::Consumer> consumer;
  int32_t partitions = 0;
  std::atomic<bool> stop{false};
  std::thread thread;

  std::map<int32_t, int64_t> committed;  // next offset per partition, as saved in Elasticsearch
  int64_t backoff = 0;
  int64_t last_warning = 0;
  // Reused from batch to batch.
  std::vector<Document> docs;
  std::vector<size_t> pending, still;
  std::vector<BulkItemOutcome> outcomes;
  std::string body;

  metrics::Counter& records_read;
  metrics::Counter& written;
  metrics::Counter& dead_lettered;
  metrics::Counter& retried;
  metrics::Counter& errors;
  metrics::Gauge& up;
  metrics::Gauge& lag;
  metrics::Histogram& bulk_seconds;
  metrics::Counter& request_bytes;
};

}  // namespace

struct ElasticsearchSink::Impl {
  std::vector<std::unique_ptr<Follower>> followers;  // raw, then rollups
  bool stopped = false;
};

ElasticsearchSink::ElasticsearchSink(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Result<std::unique_ptr<ElasticsearchSink>> ElasticsearchSink::Start(const ElasticsearchSinkOptions& options, log::Log* log,
                                                                    DeadLetter* dead_letter, metrics::Registry* registry) {
  if (!options.readings && !options.rollups) {
    return Status::InvalidArgument("sink.elasticsearch: neither readings nor rollups is on: nothing to follow");
  }
  // Every topic must exist before any thread starts.
  if (options.readings && log->Partitions("raw") == 0) return Status::NotFound("no topic raw in the log");
  if (options.rollups && log->Partitions("rollups") == 0) return Status::NotFound("no topic rollups in the log");
  auto impl = std::make_unique<Impl>();
  if (options.readings) {
    impl->followers.push_back(std::make_unique<Follower>(
        options, "raw", MakeReadingDocuments(options.index_prefix, options.max_reading_bytes), log, dead_letter, registry));
  }
  if (options.rollups) {
    impl->followers.push_back(std::make_unique<Follower>(options, "rollups", MakeRollupDocuments(options.index_prefix),
                                                         log, dead_letter, registry));
  }
  for (auto& f : impl->followers) MARE_RETURN_IF_ERROR(f->Start());  // the destructor stops those started
  return std::unique_ptr<ElasticsearchSink>(new ElasticsearchSink(std::move(impl)));
}

void ElasticsearchSink::Stop() {
  if (impl_->stopped) return;
  impl_->stopped = true;
  for (auto& f : impl_->followers) f->Stop();
}

ElasticsearchSink::~ElasticsearchSink() { Stop(); }

}  // namespace mare::sinks
