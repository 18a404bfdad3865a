// ForecastWriter: the forecasts topic (docs/formats/forecasts.md) into table forecast_hour,
// one row per issue and target hour (docs/formats/mariadb-tables.md). Rows are upserted by
// (sensor_id, field, issued_at, target_hour): a record appended again after a crash of the
// forecast processor has the same content, so writing it twice changes nothing.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "reading/forecast_row.h"
#include "reading/timestamp.h"
#include "sinks/mariadb/table_writer.h"

namespace mare::sinks {

class ForecastWriter : public TableWriter {
 public:
  ~ForecastWriter() override { Close(); }
  Status Open(Connection* conn) override;
  void Close() override;
  Status Write(const std::vector<log::ConsumedRecord>& records, uint64_t* rows, uint64_t* skipped) override;

 private:
  struct BulkRow {  // bound row-wise, as RollupWriter's
    uint32_t sensor_id;
    char field[65];
    char field_indicator;
    char issued_at[kReadingTimeLength + 1];
    char issued_indicator;
    char target_hour[kReadingTimeLength + 1];
    char target_indicator;
    double values[3];  // value, lower, upper
    char value_indicators[3];
    char model[33];
    char model_indicator;
    int8_t day_ahead;
  };

  Connection* conn_ = nullptr;
  MYSQL_STMT* upsert_ = nullptr;
  std::vector<ForecastRow> rows_;
  std::vector<BulkRow> bulk_;
};

}  // namespace mare::sinks
