#include "sinks/elasticsearch/elasticsearch_sink.h"

#include <fmt/format.h>
#include <simdjson.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <map>
#include <vector>

#include "common/json_writer.h"
#include "common/time.h"
#include "sinks/elasticsearch/bulk_response.h"
#include "sinks/elasticsearch/document.h"
#include "sinks/elasticsearch/elasticsearch_sink_metrics.h"
#include "sinks/http_client.h"
#include "sinks/log_follower.h"

namespace mare::sinks {
namespace {

namespace esm = elasticsearch_sink_metrics;

// Each item's answer cut to what ReadBulkResponse reads, its status and error (response filtering,
// in Elasticsearch 7, 8 and OpenSearch alike): about an eighth of the bytes to receive and parse;
// and how long an item may wait for its shard (`timeout`: an unassigned primary answers 503
// unavailable_shards_exception after it), below the request's own timeout so that the other
// items' outcomes come back instead of the request failing whole.
std::string BulkPath(const ElasticsearchSinkOptions& o) {
  int64_t item_wait_us = o.bulk_timeout_us > 0 ? o.bulk_timeout_us : o.timeout_us / 3 * 2;
  return fmt::format("/_bulk?filter_path=items.*.status,items.*.error&timeout={}ms", std::max<int64_t>(1, item_wait_us / 1000));
}

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

// A batch of documents and the records they came from (for the dead-letter file): docs[0, made),
// document k made from record record_of[k] (a forecast issue makes several). Kept from batch to
// batch, so that their buffers are reused.
struct DocumentBatch {
  std::vector<Document> docs;
  size_t made = 0;
  std::vector<size_t> record_of;
  std::string raws;
  std::vector<size_t> raw_ends;  // per record

  std::string_view Raw(size_t doc) const {
    size_t r = record_of[doc];
    size_t from = r == 0 ? 0 : raw_ends[r - 1];
    return std::string_view(raws).substr(from, raw_ends[r] - from);
  }
  void Clear() {
    made = 0;
    record_of.clear();
    raws.clear();
    raw_ends.clear();
  }
};

// One topic into Elasticsearch. Pipelined: the next batch's documents are made (Add) while
// Elasticsearch takes the sealed batches (Flush), each as one bulk request of a slot of its own
// (options.in_flight of them at once, each on its own connection): the items answered 429 or 5xx
// (alone or with their whole request) stay unacknowledged and are sent again at the slot's next
// Flush, the others are done or dead-lettered. The follower saves the positions after a batch only once it and every batch
// before it are done.
class IndexDestination : public Destination {
 public:
  IndexDestination(const ElasticsearchSinkOptions& o, std::string topic, std::unique_ptr<DocumentMaker> maker,
                   DeadLetter* dl, metrics::Registry* r)
      : options(o),
        topic(std::move(topic)),
        maker(std::move(maker)),
        dead_letter(dl),
        client(ClientOptions(o)),
        positions_index(o.index_prefix + "-sink-offsets"),
        bulk_path(BulkPath(o)),
        written(r->GetCounter(esm::kDocumentsWritten, {{"topic", this->topic}})),
        dead_lettered(r->GetCounter(esm::kDocumentsDeadLettered, {{"topic", this->topic}})),
        retried(r->GetCounter(esm::kItemsRetried, {{"topic", this->topic}})),
        already_there(r->GetCounter(esm::kDocumentsAlreadyThere, {{"topic", this->topic}})),
        up(r->GetGauge(esm::kUp, {{"topic", this->topic}})),
        request_bytes(r->GetCounter(esm::kRequestBytes, {{"topic", this->topic}})) {
    for (int k = 0; k < std::max(1, o.in_flight); ++k) slots.push_back(std::make_unique<Slot>(ClientOptions(o)));
  }

  // The index template, the positions' index, and the positions.
  Status Prepare(int32_t partitions, std::map<int32_t, int64_t>* next) override {
    auto put = Request(client, "PUT", "/_index_template/" + maker->name(), maker->Template(options.replicas), {200});
    if (!put.ok()) return put.status();
    std::string settings = fmt::format(R"({{"settings":{{"number_of_shards":1,"number_of_replicas":{}}},)"
                                       R"("mappings":{{"properties":{{"consumer":{{"type":"keyword"}},"topic":{{"type":"keyword"}},)"
                                       R"("partition":{{"type":"integer"}},"next_offset":{{"type":"long"}},"updated_at":{{"type":"date"}}}}}}}})",
                                       options.replicas);
    // 400 resource_already_exists_exception: made by an earlier start.
    auto created = Request(client, "PUT", "/" + positions_index, settings, {200, 400});
    if (!created.ok()) return created.status();
    if (created->status == 400 && created->body.find("resource_already_exists_exception") == std::string::npos) {
      return Status::Unavailable("create " + positions_index + ": " + created->body.substr(0, 300));
    }
    for (int32_t p = 0; p < partitions; ++p) {
      auto got = Request(client, "GET", fmt::format("/{}/_doc/{}", positions_index, PositionId(p)), "", {200, 404});
      if (!got.ok()) return got.status();
      int64_t n = got->status == 200 ? NextOffsetOf(got->body) : 0;
      if (n < 0) return Status::Corruption("position " + PositionId(p) + ": no next_offset in " + got->body.substr(0, 300));
      (*next)[p] = n;
    }
    return Status::OK();
  }

  void Add(const std::vector<log::ConsumedRecord>& records) override {
    DocumentBatch& b = adding;
    for (const log::ConsumedRecord& r : records) {
      Status s = maker->Make(r, &b.docs, &b.made);
      if (!s.ok()) {
        DeadLetterRecord(r.value, "unreadable", s.message());
        continue;
      }
      b.record_of.resize(b.made, b.raw_ends.size());
      b.raws.append(r.value);
      b.raw_ends.push_back(b.raws.size());
    }
  }

  bool Pipelined() const override { return true; }
  int Slots() const override { return static_cast<int>(slots.size()); }

  void Seal(int slot) override {
    Slot& w = *slots[slot];
    w.sealed.Clear();  // flushed: nothing of it is left to send
    std::swap(adding, w.sealed);
  }

  void Forget(int slot) override {
    Slot& w = *slots[slot];
    w.sending = false;
    w.unacknowledged.clear();
    w.sealed.Clear();
  }

  Status Flush(int slot) override {
    Slot& w = *slots[slot];
    if (!w.sending) {
      w.sending = true;
      w.unacknowledged.clear();
      for (size_t i = 0; i < w.sealed.made; ++i) w.unacknowledged.push_back(i);
    }
    if (!w.unacknowledged.empty()) {
      w.body.clear();
      for (size_t i : w.unacknowledged) {
        const Document& d = w.sealed.docs[i];
        w.body.append(d.create ? R"({"create":{"_index":)" : R"({"index":{"_index":)");
        AppendJsonString(&w.body, d.index);
        w.body.append(R"(,"_id":)");
        AppendJsonString(&w.body, d.id);
        if (d.version >= 0) fmt::format_to(std::back_inserter(w.body), R"(,"version":{},"version_type":"external_gte")", d.version);
        w.body.append("}}\n");
        w.body.append(d.source);
        w.body.push_back('\n');
      }
      auto r = Send(w.client, "POST", bulk_path, w.body, "application/x-ndjson");
      Status s = r.ok() ? ReadBulkAnswer(r->status, r->body, w.unacknowledged.size(), &w.outcomes) : r.status();
      if (!s.ok()) return s;
      w.still.clear();
      size_t first_refused = 0;
      for (size_t k = 0; k < w.unacknowledged.size(); ++k) {
        size_t i = w.unacknowledged[k];
        switch (FateOf(w.outcomes[k].status)) {
          case BulkItemFate::kDone:
            written.Add();
            if (w.outcomes[k].status == 409) already_there.Add();
            break;
          case BulkItemFate::kRetry:
            if (w.still.empty()) first_refused = k;
            w.still.push_back(i);
            break;
          case BulkItemFate::kRejected:
            DeadLetterRecord(w.sealed.Raw(i), "elasticsearch_rejected",
                             fmt::format("{} {} {}: {}", w.outcomes[k].status, w.sealed.docs[i].index,
                                         w.sealed.docs[i].id, w.outcomes[k].error));
            break;
        }
      }
      if (!w.still.empty()) {
        retried.Add(w.still.size());
        s = Status::Unavailable(fmt::format("{} of {} bulk items refused for now (the first: {} {}: {})", w.still.size(),
                                            w.unacknowledged.size(), w.outcomes[first_refused].status,
                                            w.sealed.docs[w.still[0]].index, w.outcomes[first_refused].error));
        w.unacknowledged.swap(w.still);
        return s;
      }
      w.unacknowledged.clear();
    }
    w.sending = false;
    w.sealed.Clear();
    return Status::OK();
  }

  Status SavePositions(const std::map<int32_t, int64_t>& next) override {
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
    auto r = Send(client, "POST", bulk_path, body, "application/x-ndjson");
    Status s = r.ok() ? ReadBulkAnswer(r->status, r->body, next.size(), &outcomes) : r.status();
    if (s.ok()) {
      for (const BulkItemOutcome& o : outcomes) {
        if (FateOf(o.status) != BulkItemFate::kDone) s = Status::Unavailable("save position: " + o.error);
      }
    }
    return s;
  }

 private:
  // A bulk request in flight: its batch, its connection, and which of its documents are not yet
  // acknowledged. Seal's (the reader thread's), then, once sealed, its writer thread's.
  struct Slot {
    explicit Slot(HttpClientOptions o) : client(std::move(o)) {}
    DocumentBatch sealed;
    HttpClient client;
    bool sending = false;  // Flush began on the sealed batch
    std::vector<size_t> unacknowledged, still;
    std::vector<BulkItemOutcome> outcomes;
    std::string body;
  };

  static HttpClientOptions ClientOptions(const ElasticsearchSinkOptions& o) {
    return {.url = o.url, .user = o.user, .password = o.password, .timeout_us = o.timeout_us, .gzip = o.gzip};
  }

  // One request; a transport failure is an error, any HTTP answer a Response (`up`: answered).
  Result<HttpClient::Response> Send(HttpClient& on, std::string_view method, std::string_view path, std::string_view body,
                                    std::string_view content_type) {
    uint64_t before = on.bytes_sent();
    auto r = on.Send(method, path, body, content_type);
    request_bytes.Add(on.bytes_sent() - before);
    up.Set(r.ok() ? 1 : 0);
    return r;
  }

  // One request; a transport failure or an HTTP status outside `ok_statuses` is an error.
  Result<HttpClient::Response> Request(HttpClient& on, std::string_view method, std::string_view path,
                                       std::string_view body, std::initializer_list<long> ok_statuses,
                                       std::string_view content_type = "application/json") {
    auto r = Send(on, method, path, body, content_type);
    if (!r.ok()) return r.status();
    if (std::find(ok_statuses.begin(), ok_statuses.end(), r->status) == ok_statuses.end()) {
      return Status::Unavailable(fmt::format("{} {}: HTTP {}: {}", method, path, r->status, r->body.substr(0, 300)));
    }
    return r;
  }

  std::string PositionId(int32_t p) const { return fmt::format("{}.{}.{}", options.consumer, topic, p); }

  void DeadLetterRecord(std::string_view raw, std::string_view reason, std::string_view detail) {
    dead_lettered.Add();
    if (dead_letter) dead_letter->Add("elasticsearch", reason, detail, raw);
  }

  const ElasticsearchSinkOptions options;
  const std::string topic;
  std::unique_ptr<DocumentMaker> maker;
  DeadLetter* dead_letter;
  // Prepare's and SavePositions' (one caller at a time), beside the slots' own.
  HttpClient client;
  const std::string positions_index;
  const std::string bulk_path;

  DocumentBatch adding;  // Add's (the follower's reader thread)
  std::vector<std::unique_ptr<Slot>> slots;
  std::vector<BulkItemOutcome> outcomes;  // SavePositions'
  std::string body;

  metrics::Counter& written;
  metrics::Counter& dead_lettered;
  metrics::Counter& retried;
  metrics::Counter& already_there;
  metrics::Gauge& up;
  metrics::Counter& request_bytes;
};

}  // namespace

struct ElasticsearchSink::Impl {
  std::vector<std::unique_ptr<LogFollower>> followers;  // raw, rollups, then forecasts
  bool stopped = false;
};

ElasticsearchSink::ElasticsearchSink(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Result<std::unique_ptr<ElasticsearchSink>> ElasticsearchSink::Start(const ElasticsearchSinkOptions& options, log::Log* log,
                                                                    DeadLetter* dead_letter, metrics::Registry* registry) {
  if (!options.readings && !options.rollups && !options.forecasts) {
    return Status::InvalidArgument("sink.elasticsearch: none of readings, rollups, forecasts is on: nothing to follow");
  }
  // Every topic must exist before any thread starts.
  if (options.readings && log->Partitions("raw") == 0) return Status::NotFound("no topic raw in the log");
  if (options.rollups && log->Partitions("rollups") == 0) return Status::NotFound("no topic rollups in the log");
  if (options.forecasts && log->Partitions("forecasts") == 0) {
    return Status::NotFound("no topic forecasts in the log (the forecast processor makes it)");
  }
  const LogFollowerMetrics names{esm::kRecordsRead, esm::kErrors, esm::kLagRecords, esm::kBulkSeconds,
                                 esm::kDuplicatesDropped, esm::kPartitions, esm::kRebalances};
  auto impl = std::make_unique<Impl>();
  auto follow = [&](const std::string& topic, std::unique_ptr<DocumentMaker> maker) {
    const size_t records = RecordsPerBulk(topic, options.batch);  // batch counts documents
    LogFollowerOptions fo{.name = "elasticsearch sink",
                          .topic = topic,
                          .consumer = options.consumer,
                          .server = options.url,
                          .destination = options.url + "/" + options.index_prefix,
                          .batch = records,
                          .max_delay_us = 0,  // each poll one bulk request, as soon as it is read
                          .retry_initial_us = options.retry_initial_us,
                          .retry_max_us = options.retry_max_us,
                          .revoke_timeout_us = options.revoke_timeout_us,
                          .dedup = topic == "raw" ? options.raw_dedup : log::DuplicateFilterOptions{}};
    impl->followers.push_back(std::make_unique<LogFollower>(
        std::move(fo), std::make_unique<IndexDestination>(options, topic, std::move(maker), dead_letter, registry), log,
        names, registry));
  };
  if (options.readings) {
    follow("raw", MakeReadingDocuments(options.index_prefix, options.max_reading_bytes,
                                       options.index_mode == ElasticsearchIndexMode::kDataStream));
  }
  if (options.rollups) follow("rollups", MakeRollupDocuments(options.index_prefix));
  if (options.forecasts) follow("forecasts", MakeForecastDocuments(options.index_prefix));
  for (auto& f : impl->followers) MARE_RETURN_IF_ERROR(f->Start());  // the destructor stops those started
  return std::unique_ptr<ElasticsearchSink>(new ElasticsearchSink(std::move(impl)));
}

void ElasticsearchSink::Stop() {
  if (impl_->stopped) return;
  impl_->stopped = true;
  for (auto& f : impl_->followers) f->Stop();
}

ElasticsearchSink::~ElasticsearchSink() { Stop(); }

std::vector<SinkHealth> ElasticsearchSink::health() const {
  std::vector<SinkHealth> out;
  for (const auto& f : impl_->followers) out.push_back(f->health());
  return out;
}

}  // namespace mare::sinks
