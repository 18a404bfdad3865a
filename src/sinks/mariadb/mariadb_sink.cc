#include "sinks/mariadb/mariadb_sink.h"

#include <fmt/format.h>
#include <mysql.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <map>
#include <mutex>
#include <set>
#include <thread>
#include <unordered_map>
#include <vector>

#include "common/time.h"
#include "reading/timestamp.h"
#include "sinks/mariadb/rollup_message.h"

namespace mare::sinks {

std::string RollupTable(const std::string& resolution) {
  if (resolution == "1m") return "rollup_minute";
  if (resolution == "1h") return "rollup_hour";
  if (resolution == "1d") return "rollup_day";
  return "rollup_" + resolution;
}

namespace {

// The columns every rollup table has, in order, with their definitions (also used to add a
// missing column to an older table).
const std::vector<std::pair<std::string, std::string>> kColumns = {
    {"sensor_id", "INT UNSIGNED NOT NULL"},
    {"field", "VARCHAR(64) NOT NULL"},
    {"window_start", "DATETIME(6) NOT NULL"},
    {"count", "BIGINT NOT NULL"},
    {"min", "DOUBLE"},
    {"max", "DOUBLE"},
    {"mean", "DOUBLE"},
    {"stddev", "DOUBLE"},
    {"first", "DOUBLE"},
    {"last", "DOUBLE"},
    {"revision", "BIGINT NOT NULL"},
    {"updated_at", "TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6)"},
};

// A prepared upsert into one table. Rows change only for a revision at least as high as the
// stored one (replays are harmless); `revision` is assigned last because MariaDB evaluates the
// assignments in order and later ones see earlier results.
std::string UpsertSql(const std::string& table) {
  std::string keep = "`{0}` = IF(VALUES(`revision`) >= `revision`, VALUES(`{0}`), `{0}`)";
  std::string sql = fmt::format(
      "INSERT INTO `{}` (`sensor_id`,`field`,`window_start`,`count`,`min`,`max`,`mean`,`stddev`,`first`,`last`,"
      "`revision`,`updated_at`) VALUES (?,?,?,?,?,?,?,?,?,?,?,NOW(6)) ON DUPLICATE KEY UPDATE ",
      table);
  for (const char* c : {"count", "min", "max", "mean", "stddev", "first", "last"}) {
    sql += fmt::format(fmt::runtime(keep), c) + ", ";
  }
  sql += "`updated_at` = IF(VALUES(`revision`) > `revision`, NOW(6), `updated_at`), ";
  sql += "`revision` = GREATEST(`revision`, VALUES(`revision`))";
  return sql;
}

}  // namespace

struct MariaDbSink::Impl {
  MariaDbSinkOptions options;
  log::Log* log;
  std::unique_ptr<log::Consumer> consumer;
  int32_t partitions = 0;
  std::atomic<bool> stop{false};
  std::thread thread;

  MYSQL* conn = nullptr;
  std::map<std::string, MYSQL_STMT*> upserts;  // by table
  MYSQL_STMT* offsets_stmt = nullptr;
  std::set<std::string> tables_ready;
  RollupReader reader;
  std::map<int32_t, int64_t> committed;  // next offset per partition, as committed in MariaDB

  metrics::Counter& records_read;
  metrics::Counter& rows_written;
  metrics::Counter& errors;
  metrics::Gauge& connected;
  metrics::Gauge& lag;
  metrics::Histogram& commit_seconds;

  Impl(const MariaDbSinkOptions& o, log::Log* l, metrics::Registry* r)
      : options(o),
        log(l),
        records_read(r->GetCounter("mare_sink_records_read_total", "Records read from the log (a batch read again after a failed transaction counts again)", {{"sink", "mariadb"}})),
        rows_written(r->GetCounter("mare_sink_rows_written_total", "Rows upserted", {{"sink", "mariadb"}})),
        errors(r->GetCounter("mare_sink_errors_total", "Failed connections or transactions (retried)", {{"sink", "mariadb"}})),
        connected(r->GetGauge("mare_sink_connected", "1 while connected to the database", {{"sink", "mariadb"}})),
        lag(r->GetGauge("mare_sink_lag_records", "Records in the topic not yet committed by the sink", {{"sink", "mariadb"}})),
        commit_seconds(r->GetHistogram("mare_sink_commit_seconds", "Time to write and commit one batch", {{"sink", "mariadb"}})) {}

  ~Impl() { Disconnect(); }

  Status Error(const std::string& what) {
    return Status::Unavailable(fmt::format("mariadb: {}: {}", what, conn ? mysql_error(conn) : "not connected"));
  }
  Status StmtError(MYSQL_STMT* stmt, const std::string& what) {
    return Status::Unavailable(fmt::format("mariadb: {}: {}", what, mysql_stmt_error(stmt)));
  }

  void Disconnect() {
    for (auto& [t, s] : upserts) mysql_stmt_close(s);
    upserts.clear();
    if (offsets_stmt) mysql_stmt_close(offsets_stmt);
    offsets_stmt = nullptr;
    tables_ready.clear();
    if (conn) mysql_close(conn);
    conn = nullptr;
    connected.Set(0);
  }

  Status Exec(const std::string& sql) {
    if (mysql_real_query(conn, sql.data(), sql.size()) != 0) return Error(sql.substr(0, 80));
    return Status::OK();
  }

  Status Connect() {
    conn = mysql_init(nullptr);
    unsigned timeout = 5;
    mysql_options(conn, MYSQL_OPT_CONNECT_TIMEOUT, &timeout);
    mysql_options(conn, MYSQL_OPT_READ_TIMEOUT, &timeout);
    mysql_options(conn, MYSQL_OPT_WRITE_TIMEOUT, &timeout);
    const char* socket = options.socket.empty() ? nullptr : options.socket.c_str();
    if (!mysql_real_connect(conn, socket ? nullptr : options.host.c_str(), options.user.c_str(), options.password.c_str(),
                            nullptr, static_cast<unsigned>(options.port), socket, 0)) {
      Status s = Error(fmt::format("connect {}", socket ? options.socket : options.host + ":" + std::to_string(options.port)));
      Disconnect();
      return s;
    }
    MARE_RETURN_IF_ERROR(Exec("SET time_zone = '+00:00'"));
    MARE_RETURN_IF_ERROR(Exec(fmt::format("CREATE DATABASE IF NOT EXISTS `{}`", options.database)));
    if (mysql_select_db(conn, options.database.c_str()) != 0) return Error("use " + options.database);
    MARE_RETURN_IF_ERROR(Exec(
        "CREATE TABLE IF NOT EXISTS `mare_sink_offsets` (`consumer` VARCHAR(64) NOT NULL, `topic` VARCHAR(64) NOT NULL, "
        "`partition` INT NOT NULL, `next_offset` BIGINT NOT NULL, `updated_at` TIMESTAMP(6) NOT NULL DEFAULT "
        "CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6), PRIMARY KEY (`consumer`, `topic`, `partition`)) ENGINE=InnoDB"));
    for (const char* res : {"1m", "1h", "1d"}) MARE_RETURN_IF_ERROR(EnsureTable(RollupTable(res)));
    if (mysql_autocommit(conn, 0) != 0) return Error("autocommit off");
    offsets_stmt = mysql_stmt_init(conn);
    std::string sql =
        "INSERT INTO `mare_sink_offsets` (`consumer`,`topic`,`partition`,`next_offset`) VALUES (?,?,?,?) "
        "ON DUPLICATE KEY UPDATE `next_offset` = VALUES(`next_offset`)";
    if (mysql_stmt_prepare(offsets_stmt, sql.data(), sql.size()) != 0) return StmtError(offsets_stmt, "prepare offsets");
    connected.Set(1);
    return LoadPositions();
  }

  // Creates the table, or adds the columns an older version of it lacks.
  Status EnsureTable(const std::string& table) {
    if (tables_ready.count(table)) return Status::OK();
    std::string create = fmt::format("CREATE TABLE IF NOT EXISTS `{}` (", table);
    for (const auto& [name, def] : kColumns) create += fmt::format("`{}` {}, ", name, def);
    create += "PRIMARY KEY (`sensor_id`, `field`, `window_start`)) ENGINE=InnoDB";
    MARE_RETURN_IF_ERROR(Exec(create));
    MARE_RETURN_IF_ERROR(Exec(fmt::format(
        "SELECT COLUMN_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = '{}' AND TABLE_NAME = '{}'",
        options.database, table)));
    MYSQL_RES* res = mysql_store_result(conn);
    if (!res) return Error("columns of " + table);
    std::set<std::string> present;
    while (MYSQL_ROW row = mysql_fetch_row(res)) present.insert(row[0]);
    mysql_free_result(res);
    for (const auto& [name, def] : kColumns) {
      if (present.count(name)) continue;
      spdlog::info("mariadb: adding column {}.{}", table, name);
      std::string definition = def;
      if (definition.find("NOT NULL") != std::string::npos && definition.find("DEFAULT") == std::string::npos) {
        definition += " DEFAULT 0";  // existing rows need a value
      }
      MARE_RETURN_IF_ERROR(Exec(fmt::format("ALTER TABLE `{}` ADD COLUMN `{}` {}", table, name, definition)));
    }
    MYSQL_STMT* stmt = mysql_stmt_init(conn);
    std::string sql = UpsertSql(table);
    if (mysql_stmt_prepare(stmt, sql.data(), sql.size()) != 0) {
      Status s = StmtError(stmt, "prepare upsert into " + table);
      mysql_stmt_close(stmt);
      return s;
    }
    upserts[table] = stmt;
    tables_ready.insert(table);
    return Status::OK();
  }

  // Moves the consumer to the positions committed in MariaDB (the beginning when there are none).
  Status LoadPositions() {
    MARE_RETURN_IF_ERROR(Exec(fmt::format(
        "SELECT `partition`, `next_offset` FROM `mare_sink_offsets` WHERE `consumer` = '{}' AND `topic` = '{}'",
        options.consumer, options.topic)));
    MYSQL_RES* res = mysql_store_result(conn);
    if (!res) return Error("read positions");
    std::map<int32_t, int64_t> positions;
    while (MYSQL_ROW row = mysql_fetch_row(res)) positions[std::atoi(row[0])] = std::atoll(row[1]);
    mysql_free_result(res);
    MARE_RETURN_IF_ERROR(Exec("COMMIT"));
    for (int32_t p = 0; p < partitions; ++p) {
      auto it = positions.find(p);
      committed[p] = it == positions.end() ? 0 : it->second;
      MARE_RETURN_IF_ERROR(consumer->Seek(p, committed[p]));
    }
    return Status::OK();
  }

  // One row of a bulk upsert, bound row-wise (STMT_ATTR_ROW_SIZE): the connector sends all rows
  // of a table in one execution of the prepared statement.
  struct BulkRow {
    uint32_t sensor_id;
    char field[65];  // field names are at most 64 bytes (docs/formats/reading.md)
    char field_indicator;
    char start[kReadingTimeLength + 1];
    char start_indicator;
    int64_t count;
    double values[6];  // min, max, mean, stddev, first, last
    int64_t revision;
  };
  std::vector<BulkRow> bulk;

  Status ExecuteUpserts(MYSQL_STMT* stmt, const std::vector<const RollupMessage*>& messages) {
    bulk.assign(messages.size(), BulkRow{});
    for (size_t i = 0; i < messages.size(); ++i) {
      const RollupMessage& m = *messages[i];
      BulkRow& r = bulk[i];
      r.sensor_id = m.sensor_id;
      std::snprintf(r.field, sizeof r.field, "%s", m.field.c_str());
      r.field_indicator = STMT_INDICATOR_NTS;
      FormatReadingTime(m.window_start_us, r.start);
      r.start[kReadingTimeLength] = '\0';
      r.start_indicator = STMT_INDICATOR_NTS;
      r.count = m.count;
      double v[6] = {m.min, m.max, m.mean, m.stddev, m.first, m.last};
      std::copy(v, v + 6, r.values);
      r.revision = m.revision;
    }
    BulkRow& first = bulk[0];
    MYSQL_BIND b[11] = {};
    b[0].buffer_type = MYSQL_TYPE_LONG;
    b[0].buffer = &first.sensor_id;
    b[0].is_unsigned = 1;
    b[1].buffer_type = MYSQL_TYPE_STRING;
    b[1].buffer = first.field;
    b[1].u.indicator = &first.field_indicator;
    b[2].buffer_type = MYSQL_TYPE_STRING;
    b[2].buffer = first.start;
    b[2].u.indicator = &first.start_indicator;
    b[3].buffer_type = MYSQL_TYPE_LONGLONG;
    b[3].buffer = &first.count;
    for (int i = 0; i < 6; ++i) {
      b[4 + i].buffer_type = MYSQL_TYPE_DOUBLE;
      b[4 + i].buffer = &first.values[i];
    }
    b[10].buffer_type = MYSQL_TYPE_LONGLONG;
    b[10].buffer = &first.revision;
    unsigned int rows = static_cast<unsigned int>(bulk.size());
    size_t row_size = sizeof(BulkRow);
    if (mysql_stmt_attr_set(stmt, STMT_ATTR_ARRAY_SIZE, &rows) != 0 ||
        mysql_stmt_attr_set(stmt, STMT_ATTR_ROW_SIZE, &row_size) != 0 || mysql_stmt_bind_param(stmt, b) != 0 ||
        mysql_stmt_execute(stmt) != 0) {
      return StmtError(stmt, "upsert");
    }
    return Status::OK();
  }

  Status ExecuteOffset(int32_t partition, int64_t next_offset) {
    unsigned long consumer_len = options.consumer.size(), topic_len = options.topic.size();
    MYSQL_BIND b[4] = {};
    b[0].buffer_type = MYSQL_TYPE_STRING;
    b[0].buffer = const_cast<char*>(options.consumer.data());
    b[0].buffer_length = consumer_len;
    b[0].length = &consumer_len;
    b[1].buffer_type = MYSQL_TYPE_STRING;
    b[1].buffer = const_cast<char*>(options.topic.data());
    b[1].buffer_length = topic_len;
    b[1].length = &topic_len;
    b[2].buffer_type = MYSQL_TYPE_LONG;
    b[2].buffer = &partition;
    b[3].buffer_type = MYSQL_TYPE_LONGLONG;
    b[3].buffer = &next_offset;
    if (mysql_stmt_bind_param(offsets_stmt, b) != 0 || mysql_stmt_execute(offsets_stmt) != 0) {
      return StmtError(offsets_stmt, "save position");
    }
    return Status::OK();
  }

  // Writes one polled batch: the newest revision of each window, and the positions after it,
  // in one transaction.
  Status WriteBatch(const std::vector<log::ConsumedRecord>& records) {
    std::unordered_map<std::string, RollupMessage> newest;  // by key
    std::map<int32_t, int64_t> next;
    RollupMessage m;
    for (const log::ConsumedRecord& r : records) {
      next[r.partition] = r.offset + 1;
      Status s = reader.Read(r.value, &m);
      if (!s.ok()) {
        // Not ours to fix and not worth stopping for: say so and go on.
        spdlog::warn("mariadb: skipping rollups record p{}@{}: {}", r.partition, r.offset, s.message());
        continue;
      }
      auto [it, inserted] = newest.try_emplace(std::string(r.key), m);
      if (!inserted && m.revision >= it->second.revision) it->second = m;
    }
    int64_t start = MonotonicMicros();
    std::map<std::string, std::vector<const RollupMessage*>> by_table;
    for (const auto& [key, msg] : newest) by_table[RollupTable(msg.resolution)].push_back(&msg);
    for (const auto& [table, messages] : by_table) {
      MARE_RETURN_IF_ERROR(EnsureTable(table));
      MARE_RETURN_IF_ERROR(ExecuteUpserts(upserts[table], messages));
    }
    for (const auto& [p, n] : next) MARE_RETURN_IF_ERROR(ExecuteOffset(p, n));
    if (mysql_commit(conn) != 0) return Error("commit");
    commit_seconds.Observe(static_cast<double>(MonotonicMicros() - start) / 1e6);
    rows_written.Add(newest.size());
    for (const auto& [p, n] : next) {
      committed[p] = n;
      consumer->Commit(p, n);  // for `mare log groups`; refused when the log is open read-only
    }
    return Status::OK();
  }

  void UpdateLag() {
    auto info = log->Describe(options.topic);
    if (!info.ok()) return;
    int64_t behind = 0;
    for (const auto& p : *info) behind += std::max<int64_t>(0, p.end_offset - std::max(committed[p.partition], p.start_offset));
    lag.Set(static_cast<double>(behind));
  }

  void Run() {
    int64_t backoff = options.retry_initial_us;
    int64_t last_warning = 0;
    std::vector<log::ConsumedRecord> records;
    auto fail = [&](const Status& s) {
      errors.Add();
      int64_t now = MonotonicMicros();
      if (now - last_warning > 10'000'000) {  // at most one line per 10 s while it lasts
        spdlog::warn("{} (retrying every {}, the log keeps the rollups meanwhile)", s.message(), FormatDuration(backoff));
        last_warning = now;
      }
      if (conn) mysql_rollback(conn);
      Disconnect();
      UpdateLag();
      for (int64_t slept = 0; slept < backoff && !stop.load(); slept += 50'000) {
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
      }
      backoff = std::min(backoff * 2, options.retry_max_us);
    };
    int64_t last_lag = 0;
    while (!stop.load()) {
      if (!conn) {
        Status s = Connect();
        if (!s.ok()) {
          fail(s);
          continue;
        }
        if (last_warning) spdlog::info("mariadb: connected again, catching up");
        last_warning = 0;
      }
      Status s = consumer->Poll(&records, options.batch, std::chrono::milliseconds(100));
      if (!s.ok()) {
        spdlog::error("mariadb: reading {}: {}", options.topic, s.ToString());
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
};

MariaDbSink::MariaDbSink(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Result<std::unique_ptr<MariaDbSink>> MariaDbSink::Start(const MariaDbSinkOptions& options, log::Log* log,
                                                        metrics::Registry* registry) {
  auto impl = std::make_unique<Impl>(options, log, registry);
  impl->partitions = log->Partitions(options.topic);
  if (impl->partitions == 0) return Status::NotFound("no topic " + options.topic + " in the log");
  auto consumer = log->Subscribe(options.consumer, options.topic);
  if (!consumer.ok()) return consumer.status();
  impl->consumer = std::move(*consumer);
  Impl* raw = impl.get();
  impl->thread = std::thread([raw] { raw->Run(); });
  return std::unique_ptr<MariaDbSink>(new MariaDbSink(std::move(impl)));
}

void MariaDbSink::Stop() {
  if (impl_->stop.exchange(true)) return;
  if (impl_->thread.joinable()) impl_->thread.join();
}

MariaDbSink::~MariaDbSink() { Stop(); }

}  // namespace mare::sinks
