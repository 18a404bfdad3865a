#include "sinks/mariadb/forecast_writer.h"

#include <spdlog/spdlog.h>

#include <cstdio>

#include "reading/timestamp.h"

namespace mare::sinks {

namespace {

const std::vector<ColumnDefinition> kForecastColumns = {
    {"sensor_id", "INT UNSIGNED NOT NULL"},
    {"field", "VARCHAR(64) NOT NULL"},
    {"issued_at", "DATETIME(6) NOT NULL"},
    {"target_hour", "DATETIME(6) NOT NULL"},
    {"value", "DOUBLE NULL"},
    {"lower", "DOUBLE NULL"},
    {"upper", "DOUBLE NULL"},
    {"model", "VARCHAR(32) NOT NULL"},
    {"day_ahead", "TINYINT(1) NOT NULL"},
    {"updated_at", "TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6)"},
};

constexpr const char* kUpsert =
    "INSERT INTO `forecast_hour` (`sensor_id`,`field`,`issued_at`,`target_hour`,`value`,`lower`,`upper`,`model`,"
    "`day_ahead`,`updated_at`) VALUES (?,?,?,?,?,?,?,?,?,NOW(6)) ON DUPLICATE KEY UPDATE `value` = VALUES(`value`), "
    "`lower` = VALUES(`lower`), `upper` = VALUES(`upper`), `model` = VALUES(`model`), `day_ahead` = VALUES(`day_ahead`)";

}  // namespace

Status ForecastWriter::Open(Connection* conn) {
  conn_ = conn;
  MARE_RETURN_IF_ERROR(conn_->EnsureTable("forecast_hour", kForecastColumns,
                                          "PRIMARY KEY (`sensor_id`, `field`, `issued_at`, `target_hour`)", "ENGINE=InnoDB"));
  auto stmt = conn_->Prepare(kUpsert);
  if (!stmt.ok()) return stmt.status();
  upsert_ = *stmt;
  return Status::OK();
}

void ForecastWriter::Close() {
  if (upsert_ != nullptr) mysql_stmt_close(upsert_);
  upsert_ = nullptr;
  conn_ = nullptr;
}

Status ForecastWriter::Write(const std::vector<log::ConsumedRecord>& records, uint64_t* rows, uint64_t* skipped) {
  bulk_.clear();
  for (const log::ConsumedRecord& r : records) {
    Status s = ReadForecastRows(r.value, &rows_);
    if (!s.ok()) {
      spdlog::warn("mariadb: skipping forecasts record p{}@{}: {}", r.partition, r.offset, s.message());
      ++*skipped;
      continue;
    }
    for (const ForecastRow& f : rows_) {
      BulkRow b{};
      b.sensor_id = f.sensor_id;
      std::snprintf(b.field, sizeof b.field, "%s", f.field.c_str());
      b.field_indicator = STMT_INDICATOR_NTS;
      FormatReadingTime(f.issued_at_us, b.issued_at);
      b.issued_at[kReadingTimeLength] = '\0';
      b.issued_indicator = STMT_INDICATOR_NTS;
      FormatReadingTime(f.target_hour_us, b.target_hour);
      b.target_hour[kReadingTimeLength] = '\0';
      b.target_indicator = STMT_INDICATOR_NTS;
      const double v[3] = {f.value, f.lower, f.upper};
      const bool present[3] = {f.has_value, f.has_lower, f.has_upper};
      for (int i = 0; i < 3; ++i) {
        b.values[i] = v[i];
        b.value_indicators[i] = present[i] ? STMT_INDICATOR_NONE : STMT_INDICATOR_NULL;
      }
      std::snprintf(b.model, sizeof b.model, "%s", f.model.c_str());
      b.model_indicator = STMT_INDICATOR_NTS;
      b.day_ahead = f.day_ahead ? 1 : 0;
      bulk_.push_back(b);
    }
  }
  if (bulk_.empty()) return Status::OK();
  BulkRow& first = bulk_[0];
  MYSQL_BIND b[9] = {};
  b[0].buffer_type = MYSQL_TYPE_LONG;
  b[0].buffer = &first.sensor_id;
  b[0].is_unsigned = 1;
  b[1].buffer_type = MYSQL_TYPE_STRING;
  b[1].buffer = first.field;
  b[1].u.indicator = &first.field_indicator;
  b[2].buffer_type = MYSQL_TYPE_STRING;
  b[2].buffer = first.issued_at;
  b[2].u.indicator = &first.issued_indicator;
  b[3].buffer_type = MYSQL_TYPE_STRING;
  b[3].buffer = first.target_hour;
  b[3].u.indicator = &first.target_indicator;
  for (int i = 0; i < 3; ++i) {
    b[4 + i].buffer_type = MYSQL_TYPE_DOUBLE;
    b[4 + i].buffer = &first.values[i];
    b[4 + i].u.indicator = &first.value_indicators[i];
  }
  b[7].buffer_type = MYSQL_TYPE_STRING;
  b[7].buffer = first.model;
  b[7].u.indicator = &first.model_indicator;
  b[8].buffer_type = MYSQL_TYPE_TINY;
  b[8].buffer = &first.day_ahead;
  unsigned int n = static_cast<unsigned int>(bulk_.size());
  size_t row_size = sizeof(BulkRow);
  if (mysql_stmt_attr_set(upsert_, STMT_ATTR_ARRAY_SIZE, &n) != 0 ||
      mysql_stmt_attr_set(upsert_, STMT_ATTR_ROW_SIZE, &row_size) != 0 || mysql_stmt_bind_param(upsert_, b) != 0 ||
      mysql_stmt_execute(upsert_) != 0) {
    return Connection::StmtError(upsert_, "upsert forecast_hour");
  }
  *rows += bulk_.size();
  return Status::OK();
}

}  // namespace mare::sinks
