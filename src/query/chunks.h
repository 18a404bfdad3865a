// The executor's chunk sources: a store block's decoded columns, the memtable's rows, and a
// block's statistics as one row, each the ChunkSource the evaluator reads a batch of rows from.
// In a header, with the executor its one user, so that its per-row calls stay inlined.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "common/time.h"
#include "query/eval.h"
#include "query/planner.h"
#include "query/exec_names.h"

namespace mare::query::exec {

// ---- chunks ---------------------------------------------------------------------------------

inline void PointAt(const ColumnValues& v, FieldType type, size_t rows, Vec* out) {
  out->n = rows;
  out->valid = v.valid.empty() ? nullptr : v.valid.data();
  if (type == FieldType::kNumber) {
    out->type = Type::kDouble;
    out->d = v.numbers.data();
  } else {
    out->type = Type::kText;
    out->s = v.texts.data();
  }
}

inline void FillSensor(uint32_t sensor, size_t rows, Vec* out) {
  out->type = Type::kInteger;
  out->n = rows;
  out->own_i.assign(rows, sensor);
  out->i = out->own_i.data();
  out->valid = nullptr;
}

// The store's failure as the statement's error (no position: not the statement's fault).
inline bool StoreFailed(std::string message, SqlError* error) {
  *error = SqlError{std::move(message), Position{0, 0}, SqlError::Kind::kStore};
  return false;
}

// A segment block, decoded column by column as expressions ask. Read() before anything else.
class BlockChunk : public ChunkSource {
 public:
  BlockChunk(const Segment& seg, size_t block) : seg_(seg), block_(block), meta_(seg.blocks()[block]) {}
  // Reads the block's bytes and decodes its timestamps.
  [[nodiscard]] bool Read(SqlError* error) {
    Status s = seg_.ReadBlock(block_, &bytes_);
    if (s.ok()) s = store::DecodeBlockTimestamps(meta_, bytes_, &ts_);
    return s.ok() || StoreFailed(s.ToString(), error);
  }
  size_t rows() const override { return meta_.rows; }
  const int64_t* ts() const { return ts_.data(); }
  bool Column(int32_t column, FieldType type, Vec* out, SqlError* error) override {
    if (column == kTsColumn) {
      out->type = Type::kTimestamp;
      out->n = meta_.rows;
      out->i = ts_.data();
      out->valid = nullptr;
      return true;
    }
    if (column == kSensorColumn) {
      FillSensor(meta_.sensor_id, meta_.rows, out);
      return true;
    }
    auto it = decoded_.find(column);
    if (it == decoded_.end()) {
      it = decoded_.emplace(column, ColumnValues()).first;
      Status s = store::DecodeBlockColumn(meta_, bytes_, static_cast<uint32_t>(column), type, &it->second);
      if (!s.ok()) return StoreFailed(fmt::format("{}: {}", seg_.path(), s.ToString()), error);
    }
    PointAt(it->second, type, meta_.rows, out);
    return true;
  }
  void Slot(int32_t, Vec*) override {}

 private:
  const Segment& seg_;
  size_t block_;
  const BlockMeta& meta_;
  std::string bytes_;
  std::vector<int64_t> ts_;
  std::unordered_map<int32_t, ColumnValues> decoded_;
};

// Memtable rows of one sensor and hour.
class MemChunk : public ChunkSource {
 public:
  explicit MemChunk(const RowBuffer& rows) : rows_(rows) {}
  size_t rows() const override { return rows_.size(); }
  const int64_t* ts() const { return rows_.ts().data(); }
  bool Column(int32_t column, FieldType type, Vec* out, SqlError*) override {
    size_t n = rows_.size();
    if (column == kTsColumn) {
      out->type = Type::kTimestamp;
      out->n = n;
      out->i = rows_.ts().data();
      out->valid = nullptr;
      return true;
    }
    if (column == kSensorColumn) {
      FillSensor(rows_.sensor_id(), n, out);
      return true;
    }
    out->n = n;
    out->type = type == FieldType::kNumber ? Type::kDouble : Type::kText;
    const auto& cols = rows_.columns();
    if (static_cast<size_t>(column) >= cols.size() || !cols[static_cast<size_t>(column)].used ||
        cols[static_cast<size_t>(column)].type != type) {
      out->own_valid.assign(n, 0);
      out->valid = out->own_valid.data();
      out->own_d.assign(n, 0);
      out->d = out->own_d.data();
      out->own_s.assign(n, std::string_view());
      out->s = out->own_s.data();
      return true;
    }
    const auto& c = cols[static_cast<size_t>(column)];
    out->valid = c.present.data();
    if (type == FieldType::kNumber) {
      out->d = c.numbers.data();
    } else {
      out->own_s.assign(c.texts.begin(), c.texts.end());
      out->s = out->own_s.data();
    }
    return true;
  }
  void Slot(int32_t, Vec*) override {}

 private:
  const RowBuffer& rows_;
};

// One row made from a block's statistics: ts and sensor, and for fields the value at `ts`
// when the statistics know it (their first or last row is at ts), else NULL.
class StatsRow : public ChunkSource {
 public:
  StatsRow(const BlockMeta& meta, int64_t ts, bool last) : meta_(meta), ts_(ts), last_(last) {}
  size_t rows() const override { return 1; }
  bool Column(int32_t column, FieldType type, Vec* out, SqlError*) override {
    if (column == kTsColumn) {
      out->type = Type::kTimestamp;
      out->n = 1;
      out->own_i.assign(1, ts_);
      out->i = out->own_i.data();
      out->valid = nullptr;
      return true;
    }
    if (column == kSensorColumn) {
      FillSensor(meta_.sensor_id, 1, out);
      return true;
    }
    const ColumnMeta* c = meta_.Column(static_cast<uint32_t>(column));
    bool known = c != nullptr && c->stats.count > 0 && (last_ ? c->stats.last_ts : c->stats.first_ts) == ts_;
    Value v = Value::Null(type == FieldType::kNumber ? Type::kDouble : Type::kText);
    if (known && type == FieldType::kNumber) v = Value::Double(last_ ? c->stats.last : c->stats.first);
    if (known && type == FieldType::kText) v = Value::Text(last_ ? c->stats.last_text() : c->stats.first_text());
    out->n = 1;
    out->type = v.type;
    out->own_valid.assign(1, v.null ? 0 : 1);
    out->valid = out->own_valid.data();
    out->own_d.assign(1, v.d);
    out->d = out->own_d.data();
    out->own_text = v.s;
    out->own_s.assign(1, std::string_view(out->own_text));
    out->s = out->own_s.data();
    return true;
  }
  void Slot(int32_t, Vec*) override {}

 private:
  const BlockMeta& meta_;
  int64_t ts_;
  bool last_;
};

}  // namespace mare::query::exec
