#include "sinks/mariadb/readings_writer.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <set>

#include "reading/timestamp.h"
#include "sinks/mariadb/stmt_bind.h"

namespace mare::sinks {
namespace {

// The columns the sink writes, in the insert's order.
const std::vector<ColumnDefinition> kStoredColumns = {
    {"sensor_id", "INT UNSIGNED NOT NULL"},
    {"ts", "DATETIME(6) NOT NULL"},
    {"lat", "DOUBLE NULL"},
    {"lon", "DOUBLE NULL"},
    {"fields", "JSON NOT NULL"},
    {"log_partition", "INT NOT NULL"},
    {"log_offset", "BIGINT NOT NULL"},
};

// A bulk execution carries at most about this much: well under MariaDB's max_allowed_packet
// (16 MiB by default), whatever the batch size and the readings' size.
constexpr size_t kChunkBytes = 4 << 20;
constexpr size_t kRowOverheadBytes = 64;  // the fixed columns, on the wire

bool IsPlainName(const std::string& name) {
  if (name.empty() || name.size() > 64) return false;
  for (size_t i = 0; i < name.size(); ++i) {
    char c = name[i];
    bool letter = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
    if (!letter && !(i > 0 && c >= '0' && c <= '9')) return false;
  }
  return true;
}

std::string Lower(std::string s) {
  for (char& c : s) c = (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
  return s;
}

}  // namespace

std::vector<ColumnDefinition> ReadingsColumns(const std::vector<std::string>& numeric_fields) {
  std::vector<ColumnDefinition> columns = kStoredColumns;
  std::set<std::string> taken;  // MariaDB's column names ignore case
  for (const auto& [name, def] : columns) taken.insert(name);
  for (const std::string& field : numeric_fields) {
    if (!IsPlainName(field) || !taken.insert(Lower(field)).second) continue;
    columns.emplace_back(field, fmt::format("DOUBLE AS (JSON_VALUE(`fields`, '$.{}')) VIRTUAL", field));
  }
  return columns;
}

std::string ReadingsInsertSql() {
  std::string names, marks;
  for (const auto& [name, def] : kStoredColumns) {
    names += (names.empty() ? "`" : ",`") + name + "`";
    marks += marks.empty() ? "?" : ",?";
  }
  // A row already there (same reading, same place in the log) stays as it is.
  return fmt::format("INSERT INTO `{}` ({}) VALUES ({}) ON DUPLICATE KEY UPDATE `log_offset` = `log_offset`", kReadingsTable,
                     names, marks);
}

ReadingsWriter::ReadingsWriter(std::vector<std::string> numeric_fields, size_t max_reading_bytes)
    : numeric_fields_(std::move(numeric_fields)), reader_(max_reading_bytes) {}

ReadingsWriter::~ReadingsWriter() { Close(); }

Status ReadingsWriter::Open(Connection* conn) {
  conn_ = conn;
  // Clustered by sensor and time: the website's question (one sensor, a time range) reads
  // neighbouring rows. The log position makes the key unique (a sensor may repeat a timestamp).
  MARE_RETURN_IF_ERROR(conn->EnsureTable(kReadingsTable, ReadingsColumns(numeric_fields_),
                                         "PRIMARY KEY (`sensor_id`, `ts`, `log_partition`, `log_offset`)",
                                         "ENGINE=InnoDB DEFAULT CHARSET=utf8mb4"));
  auto stmt = conn->Prepare(ReadingsInsertSql());
  if (!stmt.ok()) return stmt.status();
  insert_ = *stmt;
  return Status::OK();
}

void ReadingsWriter::Close() {
  if (insert_) mysql_stmt_close(insert_);
  insert_ = nullptr;
  conn_ = nullptr;
}

Status ReadingsWriter::Write(const std::vector<log::ConsumedRecord>& records, uint64_t* rows, uint64_t* skipped) {
  if (rows_.size() < records.size()) {
    rows_.resize(records.size());
    partitions_.resize(records.size());
    offsets_.resize(records.size());
  }
  used_ = 0;
  for (const log::ConsumedRecord& r : records) {
    Status s = reader_.Read(r.value, &rows_[used_]);
    if (!s.ok()) {
      // Ingest validated it, so this should not happen; if it does, it is not worth stopping for.
      spdlog::warn("mariadb: skipping raw record p{}@{}: {}", r.partition, r.offset, s.message());
      ++*skipped;
      continue;
    }
    partitions_[used_] = r.partition;
    offsets_[used_] = r.offset;
    ++used_;
  }
  size_t begin = 0, bytes = 0;
  for (size_t i = 0; i < used_; ++i) {
    bytes += rows_[i].fields.size() + kRowOverheadBytes;
    if (bytes >= kChunkBytes) {
      MARE_RETURN_IF_ERROR(Insert(begin, i + 1));
      begin = i + 1;
      bytes = 0;
    }
  }
  if (begin < used_) MARE_RETURN_IF_ERROR(Insert(begin, used_));
  *rows += used_;
  return Status::OK();
}

Status ReadingsWriter::Insert(size_t begin, size_t end) {
  size_t n = end - begin;
  sensor_ids_.resize(n);
  times_.resize(n * kReadingTimeLength);
  time_ptrs_.resize(n);
  time_lengths_.assign(n, kReadingTimeLength);
  fields_ptrs_.resize(n);
  fields_lengths_.resize(n);
  lats_.resize(n);
  lons_.resize(n);
  location_indicators_.resize(n);
  for (size_t i = 0; i < n; ++i) {
    const ReadingRow& row = rows_[begin + i];
    sensor_ids_[i] = row.sensor_id;
    char* time = times_.data() + i * kReadingTimeLength;
    FormatReadingTime(row.timestamp_us, time);
    time_ptrs_[i] = time;
    fields_ptrs_[i] = row.fields.data();
    fields_lengths_[i] = row.fields.size();
    lats_[i] = row.lat;
    lons_[i] = row.lon;
    location_indicators_[i] = row.has_location ? STMT_INDICATOR_NONE : STMT_INDICATOR_NULL;
  }
  // Column-wise array binding: each parameter's buffer holds n values (n pointers for strings).
  MYSQL_BIND b[7] = {};
  BindUInt32(b[0], sensor_ids_.data());
  BindText(b[1], time_ptrs_.data(), time_lengths_.data());
  BindDouble(b[2], lats_.data(), location_indicators_.data());
  BindDouble(b[3], lons_.data(), location_indicators_.data());
  BindText(b[4], fields_ptrs_.data(), fields_lengths_.data());
  BindInt32(b[5], partitions_.data() + begin);
  BindInt64(b[6], offsets_.data() + begin);
  return ExecuteBulk(insert_, b, n, /*row_size=*/0, "insert readings");
}

}  // namespace mare::sinks
