#include "sinks/mariadb/rollup_writer.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdio>
#include <unordered_map>

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
const std::vector<ColumnDefinition> kColumns = {
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

Status RollupWriter::Open(Connection* conn) {
  conn_ = conn;
  for (const std::string& res : resolutions_) MARE_RETURN_IF_ERROR(EnsureTable(RollupTable(res)));
  return Status::OK();
}

void RollupWriter::Close() {
  for (auto& [t, s] : upserts_) mysql_stmt_close(s);
  upserts_.clear();
  tables_ready_.clear();
  conn_ = nullptr;
}

// Creates the table, or adds the columns an older version of it lacks, and prepares its upsert.
Status RollupWriter::EnsureTable(const std::string& table) {
  if (tables_ready_.count(table)) return Status::OK();
  MARE_RETURN_IF_ERROR(conn_->EnsureTable(table, kColumns, "PRIMARY KEY (`sensor_id`, `field`, `window_start`)", "ENGINE=InnoDB"));
  auto stmt = conn_->Prepare(UpsertSql(table));
  if (!stmt.ok()) return stmt.status();
  upserts_[table] = *stmt;
  tables_ready_.insert(table);
  return Status::OK();
}

Status RollupWriter::ExecuteUpserts(MYSQL_STMT* stmt, const std::vector<const RollupMessage*>& messages) {
  bulk_.assign(messages.size(), BulkRow{});
  for (size_t i = 0; i < messages.size(); ++i) {
    const RollupMessage& m = *messages[i];
    BulkRow& r = bulk_[i];
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
  BulkRow& first = bulk_[0];
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
  unsigned int rows = static_cast<unsigned int>(bulk_.size());
  size_t row_size = sizeof(BulkRow);
  if (mysql_stmt_attr_set(stmt, STMT_ATTR_ARRAY_SIZE, &rows) != 0 ||
      mysql_stmt_attr_set(stmt, STMT_ATTR_ROW_SIZE, &row_size) != 0 || mysql_stmt_bind_param(stmt, b) != 0 ||
      mysql_stmt_execute(stmt) != 0) {
    return Connection::StmtError(stmt, "upsert");
  }
  return Status::OK();
}

// The newest revision of each window of the batch.
Status RollupWriter::Write(const std::vector<log::ConsumedRecord>& records, uint64_t* rows, uint64_t* skipped) {
  std::unordered_map<std::string, RollupMessage> newest;  // by key
  RollupMessage m;
  for (const log::ConsumedRecord& r : records) {
    Status s = reader_.Read(r.value, &m);
    if (!s.ok()) {
      // Not ours to fix and not worth stopping for: say so and go on.
      spdlog::warn("mariadb: skipping rollups record p{}@{}: {}", r.partition, r.offset, s.message());
      ++*skipped;
      continue;
    }
    auto [it, inserted] = newest.try_emplace(std::string(r.key), m);
    if (!inserted && m.revision >= it->second.revision) it->second = m;
  }
  std::map<std::string, std::vector<const RollupMessage*>> by_table;
  for (const auto& [key, msg] : newest) by_table[RollupTable(msg.resolution)].push_back(&msg);
  for (const auto& [table, messages] : by_table) {
    MARE_RETURN_IF_ERROR(EnsureTable(table));
    MARE_RETURN_IF_ERROR(ExecuteUpserts(upserts_[table], messages));
  }
  *rows += newest.size();
  return Status::OK();
}

}  // namespace mare::sinks
