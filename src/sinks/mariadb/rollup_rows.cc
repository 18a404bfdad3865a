#include "sinks/mariadb/rollup_rows.h"

#include <fmt/format.h>
#include <mysqld_error.h>

#include <cstring>

#include "reading/timestamp.h"
#include "sinks/mariadb/rollup_writer.h"
#include "sinks/mariadb/stmt_bind.h"

namespace mare::sinks {
namespace {

int64_t MicrosOf(const MYSQL_TIME& t) {
  std::string text = fmt::format("{:04d}-{:02d}-{:02d} {:02d}:{:02d}:{:02d}.{:06d}", t.year, t.month, t.day, t.hour, t.minute,
                                 t.second, t.second_part);
  int64_t us = 0;
  std::string why;
  ParseTimestampText(text, &us, &why);  // the server's own DATETIME: always well formed
  return us;
}

}  // namespace

Status ReadRollupRows(Connection* conn, const std::string& resolution, int64_t from_us, int64_t to_us,
                      const std::vector<uint32_t>& sensors, std::vector<RollupMessage>* out) {
  std::string table = RollupTable(resolution);
  std::string sql = fmt::format(
      "SELECT `sensor_id`,`field`,`window_start`,`count`,`min`,`max`,`mean`,`stddev`,`first`,`last`,`revision`,`source` "
      "FROM `{}` WHERE `window_start` >= '{}' AND `window_start` < '{}'",
      table, FormatReadingTime(from_us), FormatReadingTime(to_us));
  if (!sensors.empty()) {
    sql += " AND `sensor_id` IN (";
    for (size_t i = 0; i < sensors.size(); ++i) sql += (i ? "," : "") + std::to_string(sensors[i]);
    sql += ")";
  }
  MYSQL_STMT* stmt = mysql_stmt_init(conn->mysql);
  if (!stmt) return conn->Error("statement");
  if (mysql_stmt_prepare(stmt, sql.data(), sql.size()) != 0) {
    bool missing = mysql_stmt_errno(stmt) == ER_NO_SUCH_TABLE;
    Status s = Connection::StmtError(stmt, "read " + table);
    mysql_stmt_close(stmt);
    return missing ? Status::OK() : s;
  }
  uint32_t sensor_id = 0;
  char field[65] = {};
  unsigned long field_len = 0;
  MYSQL_TIME start{};
  int64_t count = 0, revision = 0;
  double values[6] = {};
  my_bool nulls[6] = {};
  char source[9] = {};
  unsigned long source_len = 0;
  MYSQL_BIND b[12] = {};
  BindUInt32(b[0], &sensor_id);
  BindText(b[1], field, &field_len, sizeof field - 1);
  BindDateTime(b[2], &start);
  BindInt64(b[3], &count);
  for (int i = 0; i < 6; ++i) {
    BindDouble(b[4 + i], &values[i]);
    b[4 + i].is_null = &nulls[i];
  }
  BindInt64(b[10], &revision);
  BindText(b[11], source, &source_len, sizeof source - 1);
  if (mysql_stmt_execute(stmt) != 0 || mysql_stmt_bind_result(stmt, b) != 0) {
    Status s = Connection::StmtError(stmt, "read " + table);
    mysql_stmt_close(stmt);
    return s;
  }
  int rc;
  while ((rc = mysql_stmt_fetch(stmt)) == 0 || rc == MYSQL_DATA_TRUNCATED) {
    RollupMessage m;
    m.sensor_id = sensor_id;
    m.field.assign(field, std::min<unsigned long>(field_len, sizeof field - 1));
    m.resolution = resolution;
    m.window_start_us = MicrosOf(start);
    m.count = count;
    m.min = values[0];
    m.max = values[1];
    m.mean = values[2];
    m.stddev = values[3];
    m.first = values[4];
    m.last = values[5];
    m.revision = revision;
    m.source.assign(source, std::min<unsigned long>(source_len, sizeof source - 1));
    out->push_back(std::move(m));
  }
  Status s = rc == MYSQL_NO_DATA ? Status::OK() : Connection::StmtError(stmt, "read " + table);
  mysql_stmt_close(stmt);
  return s;
}

}  // namespace mare::sinks
