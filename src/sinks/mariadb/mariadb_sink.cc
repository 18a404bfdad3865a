#include "sinks/mariadb/mariadb_sink.h"

#include <fmt/format.h>
#include <mysql.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <thread>

#include "common/time.h"
#include "sinks/mariadb/connection.h"
#include "sinks/mariadb/forecast_writer.h"
#include "sinks/mariadb/readings_writer.h"
#include "sinks/mariadb/rollup_writer.h"
#include "sinks/mariadb/sink_metrics.h"
#include "sinks/mariadb/stmt_bind.h"

namespace mare::sinks {
namespace {

// One topic followed into MariaDB, on a thread and connection of its own: the rows of each
// polled batch (its TableWriter's) and the positions after it, in one transaction. On any
// failure it rolls back, reconnects with backoff and resumes from the positions committed in
// MariaDB, so the batch is written again, whole.
class Follower {
 public:
  // `name` labels its metrics (sink="..."); `what` says in log lines what the log keeps meanwhile.
  Follower(const MariaDbSinkOptions& o, std::string topic, std::string name, std::string what,
           std::unique_ptr<TableWriter> writer, log::Log* l, metrics::Registry* r, log::DuplicateFilterOptions dedup = {})
      : options(o),
        topic(std::move(topic)),
        what(std::move(what)),
        writer(std::move(writer)),
        log(l),
        duplicates(dedup),
        records_read(r->GetCounter(sink_metrics::kRecordsRead, {{"sink", name}})),
        records_skipped(r->GetCounter(sink_metrics::kRecordsSkipped, {{"sink", name}})),
        duplicates_dropped(r->GetCounter(sink_metrics::kDuplicatesDropped, {{"sink", name}})),
        rows_written(r->GetCounter(sink_metrics::kRowsWritten, {{"sink", name}})),
        errors(r->GetCounter(sink_metrics::kErrors, {{"sink", name}})),
        connected(r->GetGauge(sink_metrics::kOpenConnections, {{"sink", name}})),
        lag(r->GetGauge(sink_metrics::kLagRecords, {{"sink", name}})),
        commit_seconds(r->GetHistogram(sink_metrics::kCommitSeconds, {{"sink", name}})) {}

  ~Follower() {
    Stop();
    Disconnect();
  }

  // Subscribes and starts the thread. Fails only for a topic that does not exist.
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

  SinkHealth health() const { return health_.Get(topic); }

 private:
  void Disconnect() {
    writer->Close();
    if (offsets_stmt) mysql_stmt_close(offsets_stmt);
    offsets_stmt = nullptr;
    conn.Close();
    connected.Set(0);
  }

  Status Connect() {
    Status connected_now = conn.Connect({.host = options.host, .port = options.port, .socket = options.socket,
                                         .user = options.user, .password = options.password, .database = options.database});
    if (!connected_now.ok()) {
      Disconnect();
      return connected_now;
    }
    MARE_RETURN_IF_ERROR(conn.Exec(
        "CREATE TABLE IF NOT EXISTS `mare_sink_offsets` (`consumer` VARCHAR(64) NOT NULL, `topic` VARCHAR(64) NOT NULL, "
        "`partition` INT NOT NULL, `next_offset` BIGINT NOT NULL, `updated_at` TIMESTAMP(6) NOT NULL DEFAULT "
        "CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6), PRIMARY KEY (`consumer`, `topic`, `partition`)) ENGINE=InnoDB"));
    MARE_RETURN_IF_ERROR(writer->Open(&conn));
    if (mysql_autocommit(conn.mysql, 0) != 0) return conn.Error("autocommit off");
    auto stmt = conn.Prepare(
        "INSERT INTO `mare_sink_offsets` (`consumer`,`topic`,`partition`,`next_offset`) VALUES (?,?,?,?) "
        "ON DUPLICATE KEY UPDATE `next_offset` = VALUES(`next_offset`)");
    if (!stmt.ok()) return stmt.status();
    offsets_stmt = *stmt;
    connected.Set(1);
    return LoadPositions();
  }

  // Moves the consumer to the positions committed in MariaDB (the beginning when there are none).
  Status LoadPositions() {
    MARE_RETURN_IF_ERROR(conn.Exec(fmt::format(
        "SELECT `partition`, `next_offset` FROM `mare_sink_offsets` WHERE `consumer` = '{}' AND `topic` = '{}'",
        options.consumer, topic)));
    MYSQL_RES* res = mysql_store_result(conn.mysql);
    if (!res) return conn.Error("read positions");
    std::map<int32_t, int64_t> positions;
    while (MYSQL_ROW row = mysql_fetch_row(res)) positions[std::atoi(row[0])] = std::atoll(row[1]);
    mysql_free_result(res);
    MARE_RETURN_IF_ERROR(conn.Exec("COMMIT"));
    for (int32_t p = 0; p < partitions; ++p) {
      auto it = positions.find(p);
      committed[p] = it == positions.end() ? 0 : it->second;
      MARE_RETURN_IF_ERROR(consumer->Seek(p, committed[p]));
    }
    if (!duplicates.enabled()) return Status::OK();
    std::vector<std::pair<int32_t, int64_t>> from;
    for (int32_t p = 0; p < partitions; ++p) from.emplace_back(p, consumer->Position(p));
    return duplicates.Rebuild(log, topic, from);
  }

  Status ExecuteOffset(int32_t partition, int64_t next_offset) {
    unsigned long consumer_len = options.consumer.size(), topic_len = topic.size();
    MYSQL_BIND b[4] = {};
    BindText(b[0], const_cast<char*>(options.consumer.data()), &consumer_len, consumer_len);
    BindText(b[1], const_cast<char*>(topic.data()), &topic_len, topic_len);
    BindInt32(b[2], &partition);
    BindInt64(b[3], &next_offset);
    if (mysql_stmt_bind_param(offsets_stmt, b) != 0 || mysql_stmt_execute(offsets_stmt) != 0) {
      return Connection::StmtError(offsets_stmt, "save position");
    }
    return Status::OK();
  }

  // Writes one polled batch: its rows, and the positions after it, in one transaction.
  Status WriteBatch(const std::vector<log::ConsumedRecord>& records) {
    std::map<int32_t, int64_t> next;
    for (const log::ConsumedRecord& r : records) next[r.partition] = r.offset + 1;
    int64_t start = MonotonicMicros();
    uint64_t rows = 0, skipped = 0, dropped = 0;
    if (duplicates.enabled()) {
      // Read (the positions move past them) but not written: the first copy was. A failed
      // transaction reconnects, which rebuilds the filter at the committed positions.
      kept.clear();
      for (const log::ConsumedRecord& r : records) {
        if (!duplicates.Drop(r)) kept.push_back(r);
      }
      dropped = records.size() - kept.size();
    }
    MARE_RETURN_IF_ERROR(writer->Write(duplicates.enabled() ? kept : records, &rows, &skipped));
    for (const auto& [p, n] : next) MARE_RETURN_IF_ERROR(ExecuteOffset(p, n));
    if (mysql_commit(conn.mysql) != 0) return conn.Error("commit");
    commit_seconds.Observe(static_cast<double>(MonotonicMicros() - start) / 1e6);
    rows_written.Add(rows);
    records_skipped.Add(skipped);
    duplicates_dropped.Add(dropped);
    for (const auto& [p, n] : next) {
      committed[p] = n;
      // Only for `mare log groups` (the sink's own position is in MariaDB); refused when the
      // log is open read-only, which is not an error here.
      (void)consumer->Commit(p, n);
    }
    return Status::OK();
  }

  void UpdateLag() {
    // The consumer's own idea of the end: asking the log could wait on a broker that is away.
    // committed holds partitions 0..n-1 once the positions are loaded, none before.
    int64_t behind = consumer->Lag(static_cast<int32_t>(committed.size()),
                                   [&](int32_t p) { return std::max<int64_t>(committed.at(p), 0); });
    if (behind >= 0) {
      lag.Set(static_cast<double>(behind));
      health_.SetLag(behind);
    }
  }

  void Run() {
    int64_t backoff = options.retry_initial_us;
    int64_t last_warning = 0;
    std::vector<log::ConsumedRecord> records;
    auto fail = [&](const Status& s) {
      errors.Add();
      health_.Failed(s.message());
      int64_t now = MonotonicMicros();
      if (now - last_warning > 10'000'000) {  // at most one line per 10 s while it lasts
        spdlog::warn("{} (retrying every {}, the log keeps the {} meanwhile)", s.message(), FormatDuration(backoff), what);
        last_warning = now;
      }
      if (conn.mysql) mysql_rollback(conn.mysql);
      Disconnect();
      UpdateLag();
      for (int64_t slept = 0; slept < backoff && !stop.load(); slept += 50'000) {
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
      }
      backoff = std::min(backoff * 2, options.retry_max_us);
    };
    int64_t last_lag = 0;
    while (!stop.load()) {
      if (!conn.mysql) {
        Status s = Connect();
        if (!s.ok()) {
          fail(s);
          continue;
        }
        health_.Succeeded();
        if (last_warning) spdlog::info("mariadb: connected again, catching up on {}", topic);
        last_warning = 0;
      }
      Status s = consumer->Poll(&records, options.batch, std::chrono::milliseconds(100));
      if (!s.ok()) {
        spdlog::error("mariadb: reading {}: {}", topic, s.ToString());
        std::this_thread::sleep_for(std::chrono::milliseconds(500));
        continue;
      }
      if (!records.empty()) {
        records_read.Add(records.size());
        s = WriteBatch(records);
        if (!s.ok()) {
          fail(s);  // reconnecting reloads the committed positions: the batch is read again
          continue;
        }
        backoff = options.retry_initial_us;
      }
      if (MonotonicMicros() - last_lag > 1'000'000) {
        UpdateLag();
        last_lag = MonotonicMicros();
      }
    }
  }

  const MariaDbSinkOptions options;
  const std::string topic;
  const std::string what;
  std::unique_ptr<TableWriter> writer;
  log::Log* log;
  std::unique_ptr<log::Consumer> consumer;
  int32_t partitions = 0;
  std::atomic<bool> stop{false};
  std::thread thread;

  Connection conn;
  MYSQL_STMT* offsets_stmt = nullptr;
  std::map<int32_t, int64_t> committed;  // next offset per partition, as committed in MariaDB
  log::DuplicateFilter duplicates;        // the readings topic's (raw): rebuilt at LoadPositions
  std::vector<log::ConsumedRecord> kept;  // a batch less its duplicates
  HealthRecorder health_;

  metrics::Counter& records_read;
  metrics::Counter& records_skipped;
  metrics::Counter& duplicates_dropped;
  metrics::Counter& rows_written;
  metrics::Counter& errors;
  metrics::Gauge& connected;
  metrics::Gauge& lag;
  metrics::Histogram& commit_seconds;
};

}  // namespace

struct MariaDbSink::Impl {
  std::vector<std::unique_ptr<Follower>> followers;  // rollups, forecasts, then raw
  bool stopped = false;
};

MariaDbSink::MariaDbSink(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Result<std::unique_ptr<MariaDbSink>> MariaDbSink::Start(const MariaDbSinkOptions& options, log::Log* log,
                                                        metrics::Registry* registry) {
  auto impl = std::make_unique<Impl>();
  // Both topics must exist before either thread starts.
  if (log->Partitions(options.topic) == 0) return Status::NotFound("no topic " + options.topic + " in the log");
  if (options.readings && log->Partitions(options.readings_topic) == 0) {
    return Status::NotFound("no topic " + options.readings_topic + " in the log");
  }
  impl->followers.push_back(std::make_unique<Follower>(options, options.topic, "mariadb", "rollups",
                                                       std::make_unique<RollupWriter>(options.resolutions), log, registry));
  if (options.forecasts && log->Partitions(options.forecasts_topic) > 0) {
    impl->followers.push_back(std::make_unique<Follower>(options, options.forecasts_topic, "mariadb_forecasts",
                                                         "forecasts", std::make_unique<ForecastWriter>(), log, registry));
  }
  if (options.readings) {
    impl->followers.push_back(std::make_unique<Follower>(
        options, options.readings_topic, "mariadb_readings", "readings",
        std::make_unique<ReadingsWriter>(options.numeric_fields, options.max_reading_bytes), log, registry,
        options.raw_dedup));
  }
  for (auto& f : impl->followers) MARE_RETURN_IF_ERROR(f->Start());  // the destructor stops those started
  return std::unique_ptr<MariaDbSink>(new MariaDbSink(std::move(impl)));
}

void MariaDbSink::Stop() {
  if (impl_->stopped) return;
  impl_->stopped = true;
  for (auto& f : impl_->followers) f->Stop();
}

MariaDbSink::~MariaDbSink() { Stop(); }

std::vector<SinkHealth> MariaDbSink::health() const {
  std::vector<SinkHealth> out;
  for (const auto& f : impl_->followers) out.push_back(f->health());
  return out;
}

}  // namespace mare::sinks
