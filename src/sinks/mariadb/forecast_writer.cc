#include "sinks/mariadb/forecast_writer.h"

#include <spdlog/spdlog.h>

#include <cstdio>

#include "reading/timestamp.h"
#include "sinks/mariadb/stmt_bind.h"

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
  BindUInt32(b[0], &first.sensor_id);
  BindText(b[1], first.field, &first.field_indicator);
  BindText(b[2], first.issued_at, &first.issued_indicator);
  BindText(b[3], first.target_hour, &first.target_indicator);
  for (int i = 0; i < 3; ++i) BindDouble(b[4 + i], &first.values[i], &first.value_indicators[i]);
  BindText(b[7], first.model, &first.model_indicator);
  BindTiny(b[8], &first.day_ahead);
  MARE_RETURN_IF_ERROR(ExecuteBulk(upsert_, b, bulk_.size(), sizeof(BulkRow), "upsert forecast_hour"));
  *rows += bulk_.size();
  return Status::OK();
}

}  // namespace mare::sinks
