#include "sinks/clickhouse/tables.h"

#include <fmt/format.h>

#include <algorithm>

#include "sinks/clickhouse/row_binary.h"

namespace mare::sinks::clickhouse {
namespace {

namespace rb = row_binary;

constexpr int64_t kMaxDateTimeMicros = int64_t{0xffffffff} * 1'000'000 + 999'999;

const std::vector<std::pair<std::string, std::string>> kReadingsFixed = {
    {"sensor_id", "UInt32"},          {"ts", "DateTime('UTC')"},         {"ts_us", "Int64"},
    {"lat", "Nullable(Float64)"},     {"lon", "Nullable(Float64)"},
};
const std::vector<std::pair<std::string, std::string>> kReadingsArrays = {
    {"number_names", "Array(String)"}, {"number_values", "Array(Float64)"},
    {"text_names", "Array(String)"},   {"text_values", "Array(String)"},
};

std::string List(const std::vector<std::pair<std::string, std::string>>& columns, bool with_types) {
  std::string out = "(";
  for (size_t i = 0; i < columns.size(); ++i) {
    if (i) out += ", ";
    out += QuoteName(columns[i].first);
    if (with_types) out += " " + columns[i].second;
  }
  return out + ")";
}

const std::vector<std::pair<std::string, std::string>> kRollups = {
    {"sensor_id", "UInt32"}, {"field", "String"},     {"resolution", "String"}, {"window_start", "DateTime('UTC')"},
    {"window_start_us", "Int64"}, {"count", "UInt64"}, {"min", "Float64"},      {"max", "Float64"},
    {"mean", "Float64"},     {"stddev", "Float64"},   {"first", "Float64"},     {"last", "Float64"},
    {"revision", "UInt64"},  {"is_final", "UInt8"},   {"source", "String"},
};

}  // namespace

std::string QuoteName(std::string_view name) {
  std::string out = "`";
  for (char c : name) {
    if (c == '`' || c == '\\') out.push_back('\\');
    out.push_back(c);
  }
  return out + "`";
}

std::string QuoteText(std::string_view text) {
  std::string out = "'";
  for (char c : text) {
    if (c == '\'' || c == '\\') out.push_back('\\');
    out.push_back(c);
  }
  return out + "'";
}

bool FitsDateTime(int64_t micros) { return micros >= 0 && micros <= kMaxDateTimeMicros; }

ReadingsTable::ReadingsTable(std::vector<std::string> numeric_fields) {
  columns_ = kReadingsFixed;
  for (std::string& f : numeric_fields) {
    bool taken = std::any_of(kReadingsFixed.begin(), kReadingsFixed.end(), [&](const auto& c) { return c.first == f; }) ||
                 std::any_of(kReadingsArrays.begin(), kReadingsArrays.end(), [&](const auto& c) { return c.first == f; }) ||
                 std::find(numeric_fields_.begin(), numeric_fields_.end(), f) != numeric_fields_.end();
    if (taken) continue;  // such a field stays in the arrays
    columns_.emplace_back(f, "Nullable(Float64)");
    numeric_fields_.push_back(std::move(f));
  }
  columns_.insert(columns_.end(), kReadingsArrays.begin(), kReadingsArrays.end());
  typed_.resize(numeric_fields_.size());
}

std::string ReadingsTable::Create(std::string_view database) const {
  // ReplacingMergeTree, not MergeTree: a batch sent again after a crash or an outage must leave
  // one row per (sensor_id, ts_us) for FINAL and argMax, and 18.16 deduplicates identical
  // insert blocks only on Replicated tables (docs/formats/clickhouse.md).
  return fmt::format("CREATE TABLE IF NOT EXISTS {}.readings {} ENGINE = ReplacingMergeTree "
                     "PARTITION BY toYYYYMM(ts) ORDER BY (sensor_id, ts, ts_us)",
                     QuoteName(database), List(columns_, true));
}

std::string ReadingsTable::ColumnList() const { return List(columns_, false); }

Status ReadingsTable::Append(const Reading& r, std::string* out) {
  if (!FitsDateTime(r.timestamp_us)) {
    return Status::InvalidArgument(
        fmt::format("timestamp {} us is outside ClickHouse DateTime's range (1970 to 2106)", r.timestamp_us));
  }
  std::fill(typed_.begin(), typed_.end(), nullptr);
  other_.clear();
  // The row's size, counted as its numbers are placed, then its bytes written in one go.
  size_t size = 4 + 4 + 8 + (r.has_location ? 2 * 9 : 2) + typed_.size();
  for (size_t k = 0; k < r.numbers.size(); ++k) {
    const NumberField& n = r.numbers[k];
    // Readings of a feed have the same fields in the same order: the column of the field at
    // this place in the previous reading is tried first.
    if (k >= seen_names_.size()) {
      seen_names_.resize(k + 1);
      seen_columns_.resize(k + 1, kNoColumn);
    }
    if (seen_names_[k] != n.name) {
      auto it = std::find(numeric_fields_.begin(), numeric_fields_.end(), n.name);
      seen_names_[k].assign(n.name);
      seen_columns_[k] = it == numeric_fields_.end() ? kNoColumn : static_cast<size_t>(it - numeric_fields_.begin());
    }
    size_t i = seen_columns_[k];
    if (i == kNoColumn) {
      other_.push_back(&n);
      size += rb::StringSize(n.name) + 8;
    } else {
      if (!typed_[i]) size += 8;  // a field twice: its last value, as before
      typed_[i] = &n;
    }
  }
  size += 2 * rb::VarUIntSize(other_.size()) + 2 * rb::VarUIntSize(r.texts.size());
  for (const TextField& t : r.texts) size += rb::StringSize(t.name) + rb::StringSize(t.value);
  size_t start = out->size();
  out->resize(start + size);
  char* at = out->data() + start;
  rb::PutFixed<uint32_t>(&at, r.sensor_id);
  rb::PutFixed<uint32_t>(&at, static_cast<uint32_t>(r.timestamp_us / 1'000'000));
  rb::PutFixed<int64_t>(&at, r.timestamp_us);
  auto nullable = [&](bool present, double v) {
    *at++ = present ? 0 : 1;
    if (present) rb::PutFixed<double>(&at, v);
  };
  nullable(r.has_location, r.lat);
  nullable(r.has_location, r.lon);
  for (const NumberField* n : typed_) nullable(n != nullptr, n ? n->value : 0);
  rb::PutVarUInt(&at, other_.size());
  for (const NumberField* n : other_) rb::PutString(&at, n->name);
  rb::PutVarUInt(&at, other_.size());
  for (const NumberField* n : other_) rb::PutFixed<double>(&at, n->value);
  rb::PutVarUInt(&at, r.texts.size());
  for (const TextField& t : r.texts) rb::PutString(&at, t.name);
  rb::PutVarUInt(&at, r.texts.size());
  for (const TextField& t : r.texts) rb::PutString(&at, t.value);
  return Status::OK();
}

std::string RollupsTable::Create(std::string_view database) const {
  // The revision as the version: a window's rows collapse to its latest revision, whatever the
  // order they arrived in, and a resend is one more copy of a row already there.
  return fmt::format("CREATE TABLE IF NOT EXISTS {}.rollups {} ENGINE = ReplacingMergeTree(revision) "
                     "PARTITION BY toYYYYMM(window_start) ORDER BY (sensor_id, field, resolution, window_start, window_start_us)",
                     QuoteName(database), List(kRollups, true));
}

std::string RollupsTable::ColumnList() const { return List(kRollups, false); }

const std::vector<std::pair<std::string, std::string>>& RollupsTable::columns() const { return kRollups; }

Status RollupsTable::Append(const RollupMessage& m, std::string* out) const {
  if (!FitsDateTime(m.window_start_us)) {
    return Status::InvalidArgument(
        fmt::format("window_start {} us is outside ClickHouse DateTime's range (1970 to 2106)", m.window_start_us));
  }
  if (m.count < 0 || m.revision < 0) return Status::InvalidArgument("negative count or revision");
  rb::AppendFixed<uint32_t>(out, m.sensor_id);
  rb::AppendString(out, m.field);
  rb::AppendString(out, m.resolution);
  rb::AppendFixed<uint32_t>(out, static_cast<uint32_t>(m.window_start_us / 1'000'000));
  rb::AppendFixed<int64_t>(out, m.window_start_us);
  rb::AppendFixed<uint64_t>(out, static_cast<uint64_t>(m.count));
  for (double v : {m.min, m.max, m.mean, m.stddev, m.first, m.last}) rb::AppendFixed<double>(out, v);
  rb::AppendFixed<uint64_t>(out, static_cast<uint64_t>(m.revision));
  rb::AppendFixed<uint8_t>(out, m.final ? 1 : 0);
  rb::AppendString(out, m.source);
  return Status::OK();
}

std::string CreateSinkOffsets(std::string_view database) {
  return fmt::format("CREATE TABLE IF NOT EXISTS {}.sink_offsets (consumer String, topic String, `partition` UInt32, "
                     "next_offset Int64, updated_at DateTime('UTC')) ENGINE = ReplacingMergeTree(next_offset) "
                     "ORDER BY (consumer, topic, `partition`)",
                     QuoteName(database));
}

}  // namespace mare::sinks::clickhouse
