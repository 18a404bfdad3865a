#include "sinks/mariadb/rollup_writer.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdio>
#include <unordered_map>

#include "sinks/mariadb/stmt_bind.h"

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
const std::vector<ColumnDefinition> kRollupColumns = {
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
    // Who computed the row: the stream, or `mare batch rollups` (a format change of this
    // version; older tables get the column, their rows 'stream').
    {"source", "VARCHAR(8) NOT NULL DEFAULT 'stream'"},
};

// A prepared upsert into one table. A stream row changes a stored stream row for a revision at
// least as high (replays are harmless), and a stored batch row only for a higher revision (the
// stream counted readings the batch did not see): at an equal or lower revision the batch's
// result stands. A batch row always replaces what is stored. Columns are assigned in order and
// later assignments see earlier results, so the condition is computed before `source` and
// `revision` change, and those two come last.
std::string UpsertSql(const std::string& table, const std::string& source) {
  std::string sql = fmt::format(
      "INSERT INTO `{}` (`sensor_id`,`field`,`window_start`,`count`,`min`,`max`,`mean`,`stddev`,`first`,`last`,"
      "`revision`,`updated_at`,`source`) VALUES (?,?,?,?,?,?,?,?,?,?,?,NOW(6),'{}') ON DUPLICATE KEY UPDATE ",
      table, source);
  if (source == "batch") {
    for (const char* c : {"count", "min", "max", "mean", "stddev", "first", "last", "revision"}) {
      sql += fmt::format("`{0}` = VALUES(`{0}`), ", c);
    }
    sql += "`updated_at` = NOW(6), `source` = 'batch'";
    return sql;
  }
  std::string wins = "(VALUES(`revision`) > `revision` OR (VALUES(`revision`) = `revision` AND `source` <> 'batch'))";
  std::string keep = "`{0}` = IF(" + wins + ", VALUES(`{0}`), `{0}`)";
  for (const char* c : {"count", "min", "max", "mean", "stddev", "first", "last"}) {
    sql += fmt::format(fmt::runtime(keep), c) + ", ";
  }
  sql += "`updated_at` = IF(VALUES(`revision`) > `revision`, NOW(6), `updated_at`), ";
  sql += "`source` = IF(VALUES(`revision`) > `revision`, 'stream', `source`), ";
  sql += "`revision` = IF(" + wins + ", VALUES(`revision`), `revision`)";
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
  MARE_RETURN_IF_ERROR(conn_->EnsureTable(table, kRollupColumns, "PRIMARY KEY (`sensor_id`, `field`, `window_start`)", "ENGINE=InnoDB"));
  auto stmt = conn_->Prepare(UpsertSql(table, source_));
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
  BindUInt32(b[0], &first.sensor_id);
  BindText(b[1], first.field, &first.field_indicator);
  BindText(b[2], first.start, &first.start_indicator);
  BindInt64(b[3], &first.count);
  for (int i = 0; i < 6; ++i) BindDouble(b[4 + i], &first.values[i]);
  BindInt64(b[10], &first.revision);
  return ExecuteBulk(stmt, b, bulk_.size(), sizeof(BulkRow), "upsert");
}

Status RollupWriter::Upsert(const std::vector<const RollupMessage*>& messages) {
  std::map<std::string, std::vector<const RollupMessage*>> by_table;
  for (const RollupMessage* m : messages) by_table[RollupTable(m->resolution)].push_back(m);
  for (const auto& [table, rows] : by_table) {
    MARE_RETURN_IF_ERROR(EnsureTable(table));
    MARE_RETURN_IF_ERROR(ExecuteUpserts(upserts_[table], rows));
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
  std::vector<const RollupMessage*> messages;
  messages.reserve(newest.size());
  for (const auto& [key, msg] : newest) messages.push_back(&msg);
  MARE_RETURN_IF_ERROR(Upsert(messages));
  *rows += newest.size();
  return Status::OK();
}

}  // namespace mare::sinks
