#include "query/executor.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <thread>
#include <unordered_map>

#include <fmt/format.h>

#include "common/time.h"
#include "query/eval.h"
#include "query/planner.h"

namespace mare::query {
namespace {

using store::BlockMeta;
using store::ColumnMeta;
using store::ColumnValues;
using store::FieldType;
using store::RowBuffer;
using store::Segment;

struct ExecError {
  std::string message;
};

// ---- chunks ---------------------------------------------------------------------------------

void PointAt(const ColumnValues& v, FieldType type, size_t rows, Vec* out) {
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

void FillSensor(uint32_t sensor, size_t rows, Vec* out) {
  out->type = Type::kInteger;
  out->n = rows;
  out->own_i.assign(rows, sensor);
  out->i = out->own_i.data();
  out->valid = nullptr;
}

// A segment block, decoded column by column as expressions ask.
class BlockChunk : public ChunkSource {
 public:
  BlockChunk(const Segment& seg, size_t block) : seg_(seg), meta_(seg.blocks()[block]) {
    Status s = seg.ReadBlock(block, &bytes_);
    if (s.ok()) s = store::DecodeBlockTimestamps(meta_, bytes_, &ts_);
    if (!s.ok()) throw ExecError{s.ToString()};
  }
  size_t rows() const override { return meta_.rows; }
  const int64_t* ts() const { return ts_.data(); }
  void Column(int32_t column, FieldType type, Vec* out) override {
    if (column == kTsColumn) {
      out->type = Type::kTimestamp;
      out->n = meta_.rows;
      out->i = ts_.data();
      out->valid = nullptr;
      return;
    }
    if (column == kSensorColumn) return FillSensor(meta_.sensor_id, meta_.rows, out);
    auto it = decoded_.find(column);
    if (it == decoded_.end()) {
      it = decoded_.emplace(column, ColumnValues()).first;
      Status s = store::DecodeBlockColumn(meta_, bytes_, static_cast<uint32_t>(column), type, &it->second);
      if (!s.ok()) throw ExecError{fmt::format("{}: {}", seg_.path(), s.ToString())};
    }
    PointAt(it->second, type, meta_.rows, out);
  }
  void Slot(int32_t, Vec*) override {}

 private:
  const Segment& seg_;
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
  void Column(int32_t column, FieldType type, Vec* out) override {
    size_t n = rows_.size();
    if (column == kTsColumn) {
      out->type = Type::kTimestamp;
      out->n = n;
      out->i = rows_.ts().data();
      out->valid = nullptr;
      return;
    }
    if (column == kSensorColumn) return FillSensor(rows_.sensor_id(), n, out);
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
      return;
    }
    const auto& c = cols[static_cast<size_t>(column)];
    out->valid = c.present.data();
    if (type == FieldType::kNumber) {
      out->d = c.numbers.data();
    } else {
      out->own_s.assign(c.texts.begin(), c.texts.end());
      out->s = out->own_s.data();
    }
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
  void Column(int32_t column, FieldType type, Vec* out) override {
    if (column == kTsColumn) {
      out->type = Type::kTimestamp;
      out->n = 1;
      out->own_i.assign(1, ts_);
      out->i = out->own_i.data();
      out->valid = nullptr;
      return;
    }
    if (column == kSensorColumn) return FillSensor(meta_.sensor_id, 1, out);
    const ColumnMeta* c = meta_.Column(static_cast<uint32_t>(column));
    bool known = c != nullptr && c->stats.count > 0 && (last_ ? c->stats.last_ts : c->stats.first_ts) == ts_;
    Value v = Value::Null(type == FieldType::kNumber ? Type::kDouble : Type::kText);
    if (known && type == FieldType::kNumber) v = Value::Double(last_ ? c->stats.last : c->stats.first);
    if (known && type == FieldType::kText) v = Value::Text(last_ ? c->stats.last_text : c->stats.first_text);
    out->n = 1;
    out->type = v.type;
    out->own_valid.assign(1, v.null ? 0 : 1);
    out->valid = out->own_valid.data();
    out->own_d.assign(1, v.d);
    out->d = out->own_d.data();
    out->own_text = v.s;
    out->own_s.assign(1, std::string_view(out->own_text));
    out->s = out->own_s.data();
  }
  void Slot(int32_t, Vec*) override {}

 private:
  const BlockMeta& meta_;
  int64_t ts_;
  bool last_;
};

// ---- what statistics say about WHERE ----------------------------------------------------------

constexpr uint8_t kTrue = 1, kFalse = 2, kNull = 4, kAny = 7;

uint8_t Not(uint8_t s) { return static_cast<uint8_t>(((s & kTrue) ? kFalse : 0) | ((s & kFalse) ? kTrue : 0) | (s & kNull)); }

uint8_t Kleene(bool is_and, uint8_t a, uint8_t b) {
  uint8_t out = 0;
  for (uint8_t x : {kTrue, kFalse, kNull}) {
    if (!(a & x)) continue;
    for (uint8_t y : {kTrue, kFalse, kNull}) {
      if (!(b & y)) continue;
      if (is_and) {
        out |= (x == kFalse || y == kFalse) ? kFalse : (x == kTrue && y == kTrue) ? kTrue : kNull;
      } else {
        out |= (x == kTrue || y == kTrue) ? kTrue : (x == kFalse && y == kFalse) ? kFalse : kNull;
      }
    }
  }
  return out;
}

struct Range {
  double lo = 0, hi = 0;
  bool some_null = false;
  bool all_null = false;
};

bool ColumnRange(const BoundExpr& e, const BlockMeta& m, Range* r) {
  if (e.kind != BoundExpr::Kind::kColumn) return false;
  if (e.column == kTsColumn) {
    *r = Range{static_cast<double>(m.min_ts), static_cast<double>(m.max_ts)};
    return true;
  }
  if (e.column == kSensorColumn) {
    *r = Range{static_cast<double>(m.sensor_id), static_cast<double>(m.sensor_id)};
    return true;
  }
  const ColumnMeta* c = m.Column(static_cast<uint32_t>(e.column));
  if (c == nullptr || c->stats.count == 0) {
    r->all_null = true;
    return true;
  }
  if (e.field_type != FieldType::kNumber) return false;
  *r = Range{c->stats.min, c->stats.max, c->stats.count < m.rows, false};
  return true;
}

uint8_t CompareRange(Op op, const Range& r, double c) {
  if (r.all_null) return kNull;
  uint8_t s = 0;
  switch (op) {
    case Op::kEq: s = (r.lo == c && r.hi == c) ? kTrue : (c < r.lo || c > r.hi) ? kFalse : kTrue | kFalse; break;
    case Op::kNe: s = Not((r.lo == c && r.hi == c) ? kTrue : (c < r.lo || c > r.hi) ? kFalse : kTrue | kFalse); break;
    case Op::kLt: s = r.hi < c ? kTrue : r.lo >= c ? kFalse : kTrue | kFalse; break;
    case Op::kLe: s = r.hi <= c ? kTrue : r.lo > c ? kFalse : kTrue | kFalse; break;
    case Op::kGt: s = r.lo > c ? kTrue : r.hi <= c ? kFalse : kTrue | kFalse; break;
    case Op::kGe: s = r.lo >= c ? kTrue : r.hi < c ? kFalse : kTrue | kFalse; break;
    default: return kAny;
  }
  return static_cast<uint8_t>(s | (r.some_null ? kNull : 0));
}

Op Flip(Op op) { return op == Op::kLt ? Op::kGt : op == Op::kLe ? Op::kGe : op == Op::kGt ? Op::kLt : op == Op::kGe ? Op::kLe : op; }

bool NumericConstant(const BoundExpr& e, double* c) {
  if (e.kind != BoundExpr::Kind::kConstant || e.constant.null || e.type == Type::kText) return false;
  *c = e.constant.AsDouble();
  return true;
}

uint8_t Outcomes(const BoundExpr& e, const BlockMeta& m) {
  if (e.kind == BoundExpr::Kind::kConstant) return e.constant.null ? kNull : e.constant.i ? kTrue : kFalse;
  if (e.kind != BoundExpr::Kind::kCall) return kAny;
  Range r;
  double c;
  switch (e.op) {
    case Op::kAnd: return Kleene(true, Outcomes(*e.args[0], m), Outcomes(*e.args[1], m));
    case Op::kOr: return Kleene(false, Outcomes(*e.args[0], m), Outcomes(*e.args[1], m));
    case Op::kNot: return Not(Outcomes(*e.args[0], m));
    case Op::kEq:
    case Op::kNe:
    case Op::kLt:
    case Op::kLe:
    case Op::kGt:
    case Op::kGe:
      if (ColumnRange(*e.args[0], m, &r) && (r.all_null || NumericConstant(*e.args[1], &c))) return CompareRange(e.op, r, r.all_null ? 0 : c);
      if (ColumnRange(*e.args[1], m, &r) && (r.all_null || NumericConstant(*e.args[0], &c))) return CompareRange(Flip(e.op), r, r.all_null ? 0 : c);
      return kAny;
    case Op::kBetween: {
      double lo, hi;
      if (!ColumnRange(*e.args[0], m, &r) || (!r.all_null && (!NumericConstant(*e.args[1], &lo) || !NumericConstant(*e.args[2], &hi)))) return kAny;
      if (r.all_null) return kNull;
      uint8_t s = Kleene(true, CompareRange(Op::kGe, r, lo), CompareRange(Op::kLe, r, hi));
      return e.negated ? Not(s) : s;
    }
    case Op::kIn: {
      if (e.args[0]->kind != BoundExpr::Kind::kColumn || e.args[0]->column != kSensorColumn) return kAny;
      uint8_t s = kFalse;
      for (size_t k = 1; k < e.args.size(); ++k) {
        if (!NumericConstant(*e.args[k], &c)) return kAny;
        if (c == m.sensor_id) s = kTrue;
      }
      return e.negated ? Not(s) : s;
    }
    case Op::kIsNull: {
      if (!ColumnRange(*e.args[0], m, &r)) {
        const BoundExpr& x = *e.args[0];
        if (x.kind != BoundExpr::Kind::kColumn) return kAny;
        const ColumnMeta* col = m.Column(static_cast<uint32_t>(x.column));
        if (col == nullptr) return e.negated ? kFalse : kTrue;
        r.all_null = false;
        r.some_null = col->stats.count < m.rows;
      }
      uint8_t s = r.all_null ? kTrue : r.some_null ? kTrue | kFalse : kFalse;
      return e.negated ? Not(s) : s;
    }
    default:
      return kAny;
  }
}

// ---- aggregation ------------------------------------------------------------------------------

struct Acc {
  int64_t count = 0;
  double sum = 0;
  double mean = 0;
  double m2 = 0;
  double min = std::numeric_limits<double>::infinity();
  double max = -std::numeric_limits<double>::infinity();
  bool has_first = false;
  int64_t first_ts = 0, last_ts = 0;
  double first = 0, last = 0;
  std::string first_text, last_text;
};

struct Partial {  // a block's statistics for one aggregate argument
  int64_t count;
  double sum, m2, min, max, first, last;
  int64_t first_ts, last_ts;
  const std::string* first_text;
  const std::string* last_text;
};

void Merge(Acc& a, const Partial& p, bool need_m2) {
  if (p.count == 0) return;
  if (need_m2) {
    // Equal values: the mean is exactly that value and there is no spread. sum / count can be
    // a few ulps off it, which would give a constant column a tiny non-zero stddev.
    bool equal = p.min == p.max;
    double mean_b = equal ? p.min : p.sum / static_cast<double>(p.count);
    double m2_b = equal ? 0 : p.m2;
    if (a.count == 0) {
      a.mean = mean_b;
      a.m2 = m2_b;
    } else {
      double n = static_cast<double>(a.count + p.count);
      double delta = mean_b - a.mean;
      a.mean += delta * static_cast<double>(p.count) / n;
      a.m2 += m2_b + delta * delta * static_cast<double>(a.count) * static_cast<double>(p.count) / n;
    }
  }
  a.count += p.count;
  a.sum += p.sum;
  a.min = std::min(a.min, p.min);
  a.max = std::max(a.max, p.max);
  if (!a.has_first || p.first_ts < a.first_ts) {
    a.first_ts = p.first_ts;
    a.first = p.first;
    if (p.first_text) a.first_text = *p.first_text;
  }
  if (!a.has_first || p.last_ts >= a.last_ts) {
    a.last_ts = p.last_ts;
    a.last = p.last;
    if (p.last_text) a.last_text = *p.last_text;
  }
  a.has_first = true;
}

Value Finish(const Aggregate& agg, const Acc& a) {
  switch (agg.func) {
    case AggFunc::kCountStar:
    case AggFunc::kCount:
      return Value::Int(Type::kInteger, a.count);
    default:
      break;
  }
  if (a.count == 0) return Value::Null(agg.type);
  auto typed = [&](double x, const std::string& text) {
    if (agg.type == Type::kDouble) return Value::Double(x);
    if (agg.type == Type::kText) return Value::Text(text);
    return Value::Int(agg.type, static_cast<int64_t>(std::llround(x)));
  };
  switch (agg.func) {
    case AggFunc::kSum: return agg.type == Type::kInteger ? Value::Int(Type::kInteger, static_cast<int64_t>(std::llround(a.sum))) : Value::Double(a.sum);
    case AggFunc::kAvg: return Value::Double(a.sum / static_cast<double>(a.count));
    case AggFunc::kMin: return typed(a.min, "");
    case AggFunc::kMax: return typed(a.max, "");
    case AggFunc::kFirst: return typed(a.first, a.first_text);
    case AggFunc::kLast: return typed(a.last, a.last_text);
    case AggFunc::kStddevSamp:
      return a.count > 1 ? Value::Double(std::sqrt(std::max(0.0, a.m2) / static_cast<double>(a.count - 1))) : Value::Null(Type::kDouble);
    case AggFunc::kStddevPop: return Value::Double(std::sqrt(std::max(0.0, a.m2) / static_cast<double>(a.count)));
    default: return Value::Null(agg.type);
  }
}

// The slot scope: group keys, then aggregate results, one row per group.
class GroupChunk : public ChunkSource {
 public:
  explicit GroupChunk(std::vector<Vec>* slots, size_t rows) : slots_(slots), rows_(rows) {}
  size_t rows() const override { return rows_; }
  void Column(int32_t, FieldType, Vec*) override {}
  void Slot(int32_t slot, Vec* out) override {
    const Vec& v = (*slots_)[static_cast<size_t>(slot)];
    out->type = v.type;
    out->n = v.n;
    out->i = v.i;
    out->d = v.d;
    out->s = v.s;
    out->valid = v.valid;
  }

 private:
  std::vector<Vec>* slots_;
  size_t rows_;
};

// Column vectors of values (the results of a group table) as a Vec.
void ToVec(const std::vector<Value>& values, Type type, Vec* out) {
  size_t n = values.size();
  out->type = type;
  out->n = n;
  out->own_valid.resize(n);
  out->own_i.resize(n);
  out->own_d.resize(n);
  out->own_s.resize(n);
  for (size_t r = 0; r < n; ++r) {
    const Value& v = values[r];
    out->own_valid[r] = !v.null;
    out->own_i[r] = v.i;
    out->own_d[r] = v.d;
    out->own_s[r] = v.s;
  }
  out->i = out->own_i.data();
  out->d = out->own_d.data();
  out->s = out->own_s.data();
  out->valid = out->own_valid.data();
}

void AppendKey(const Vec& v, size_t r, std::string* key) {
  if (!v.IsValid(r)) {
    key->push_back('\0');
    return;
  }
  key->push_back('\1');
  if (v.type == Type::kDouble) {
    key->append(reinterpret_cast<const char*>(&v.d[r]), 8);
  } else if (v.type == Type::kText) {
    uint32_t len = static_cast<uint32_t>(v.s[r].size());
    key->append(reinterpret_cast<const char*>(&len), 4);
    key->append(v.s[r]);
  } else {
    key->append(reinterpret_cast<const char*>(&v.i[r]), 8);
  }
}

// AppendKey's encoding for a single value (the two must agree: groups from statistics and
// from decoded rows meet in one table).
void AppendKeyValue(const Value& v, std::string* key) {
  if (v.null) {
    key->push_back('\0');
    return;
  }
  key->push_back('\1');
  if (v.type == Type::kDouble) {
    key->append(reinterpret_cast<const char*>(&v.d), 8);
  } else if (v.type == Type::kText) {
    uint32_t len = static_cast<uint32_t>(v.s.size());
    key->append(reinterpret_cast<const char*>(&len), 4);
    key->append(v.s);
  } else {
    key->append(reinterpret_cast<const char*>(&v.i), 8);
  }
}

class Executor {
 public:
  Executor(const Plan& plan, const store::Snapshot& snap, const QueryOptions& options, QueryResult* result)
      : plan_(plan), snap_(snap), options_(options), result_(result) {}

  void Run() {
    for (const auto& c : plan_.columns) {
      if (c.hidden) continue;
      result_->names.push_back(c.name);
      result_->types.push_back(c.type);
    }
    CollectSources();
    if (plan_.latest) {
      RunLatest();
    } else if (plan_.aggregate) {
      RunAggregate();
    } else {
      RunRows();
    }
    SortAndLimit();
  }

 private:
  struct Source {
    uint32_t sensor;
    int64_t min_ts, max_ts;
    const Segment* seg = nullptr;
    size_t block = 0;
    const RowBuffer* mem = nullptr;
  };

  bool SensorWanted(uint32_t id) const {
    return !plan_.sensors_set || std::find(plan_.sensors.begin(), plan_.sensors.end(), id) != plan_.sensors.end();
  }

  void CollectSources() {
    if (plan_.empty) return;
    for (const auto& seg : snap_.segments) {
      for (size_t b = 0; b < seg->blocks().size(); ++b) {
        const BlockMeta& m = seg->blocks()[b];
        if (!SensorWanted(m.sensor_id) || m.max_ts < plan_.min_ts || m.min_ts > plan_.max_ts) continue;
        sources_.push_back(Source{m.sensor_id, m.min_ts, m.max_ts, seg.get(), b, nullptr});
      }
    }
    for (const auto& rows : snap_.memtable) {
      if (rows.size() == 0 || !SensorWanted(rows.sensor_id())) continue;
      if (rows.ts().back() < plan_.min_ts || rows.ts().front() > plan_.max_ts) continue;
      sources_.push_back(Source{rows.sensor_id(), rows.ts().front(), rows.ts().back(), nullptr, 0, &rows});
    }
    if (plan_.latest) return;  // RunLatest orders what it needs
    std::sort(sources_.begin(), sources_.end(), [](const Source& a, const Source& b) {
      return a.sensor != b.sensor ? a.sensor < b.sensor : a.min_ts < b.min_ts;
    });
  }

  // WHERE over a chunk: the selected rows.
  void Select(ChunkSource& chunk, bool all, std::vector<uint32_t>* sel) {
    sel->clear();
    size_t n = chunk.rows();
    if (all || !plan_.where) {
      sel->resize(n);
      for (size_t r = 0; r < n; ++r) (*sel)[r] = static_cast<uint32_t>(r);
      return;
    }
    Vec where;
    Evaluate(*plan_.where, chunk, &where);
    for (size_t r = 0; r < n; ++r) {
      if (where.Selected(r)) sel->push_back(static_cast<uint32_t>(r));
    }
  }

  uint8_t BlockOutcome(const Source& s) const {
    if (!plan_.where) return kTrue;
    if (s.seg == nullptr) return kAny;
    return Outcomes(*plan_.where, s.seg->blocks()[s.block]);
  }

  // ---- plain rows ----
  void RunRows() {
    bool early_stop = plan_.order.empty();
    size_t wanted = plan_.limit == std::numeric_limits<int64_t>::max() ? SIZE_MAX : static_cast<size_t>(plan_.offset + plan_.limit);
    std::vector<uint32_t> sel;
    std::vector<Vec> cols(plan_.columns.size());
    for (const Source& s : sources_) {
      if (early_stop && rows_.size() >= wanted) break;
      uint8_t outcome = BlockOutcome(s);
      if (!(outcome & kTrue)) {
        ++result_->stats.blocks_skipped;
        continue;
      }
      auto chunk = MakeChunk(s);
      Select(*chunk, outcome == kTrue, &sel);
      for (size_t k = 0; k < plan_.columns.size(); ++k) Evaluate(*plan_.columns[k].expr, *chunk, &cols[k]);
      for (uint32_t r : sel) {
        std::vector<Value> row;
        row.reserve(cols.size());
        for (const auto& c : cols) row.push_back(c.Get(r));
        AddRow(std::move(row));
        if (early_stop && rows_.size() >= wanted) break;
      }
    }
  }

  bool Less(const std::vector<Value>& a, const std::vector<Value>& b) const {
    for (const auto& k : plan_.order) {
      const Value& x = a[static_cast<size_t>(k.column)];
      const Value& y = b[static_cast<size_t>(k.column)];
      if (x.null != y.null) return y.null;  // NULLs last, either direction
      int c = CompareValues(x, y);
      if (c != 0) return k.descending ? c > 0 : c < 0;
    }
    return false;
  }

  void AddRow(std::vector<Value> row) {
    rows_.push_back(std::move(row));
    bool limited = plan_.limit != std::numeric_limits<int64_t>::max();
    if (limited && !plan_.order.empty()) {
      // Top-k: keep the rows that can still make it past OFFSET + LIMIT.
      size_t keep = static_cast<size_t>(plan_.offset + plan_.limit);
      if (rows_.size() >= 2 * keep + 65'536) {
        std::partial_sort(rows_.begin(), rows_.begin() + static_cast<std::ptrdiff_t>(keep), rows_.end(),
                          [&](const auto& a, const auto& b) { return Less(a, b); });
        rows_.resize(keep);
      }
    } else if (!limited && rows_.size() > options_.max_rows + static_cast<size_t>(plan_.offset)) {
      throw ExecError{fmt::format("the result has more than {} rows; add a LIMIT or narrow the WHERE clause", options_.max_rows)};
    }
  }

  std::unique_ptr<ChunkSource> MakeChunk(const Source& s, QueryStats* stats = nullptr) {
    if (stats == nullptr) stats = &result_->stats;
    if (s.seg != nullptr) {
      ++stats->blocks_decoded;
      stats->rows_scanned += s.seg->blocks()[s.block].rows;
      return std::make_unique<BlockChunk>(*s.seg, s.block);
    }
    stats->memtable_rows += static_cast<int64_t>(s.mem->size());
    stats->rows_scanned += static_cast<int64_t>(s.mem->size());
    return std::make_unique<MemChunk>(*s.mem);
  }

  // ---- LATEST ON ts PARTITION BY sensor_id ----
  void RunLatest() {
    std::vector<Source> by_newest;
    if (!plan_.where) {
      // Every row counts: each sensor's newest block (or memtable rows) holds its latest
      // reading. One pass, no sort over all blocks (a year of hours is ~10k blocks a sensor).
      std::unordered_map<uint32_t, size_t> newest;
      for (size_t i = 0; i < sources_.size(); ++i) {
        auto [it, inserted] = newest.try_emplace(sources_[i].sensor, i);
        if (!inserted && sources_[i].max_ts > sources_[it->second].max_ts) it->second = i;
      }
      for (const auto& [sensor, i] : newest) by_newest.push_back(sources_[i]);
    } else {
      by_newest = sources_;
    }
    std::stable_sort(by_newest.begin(), by_newest.end(), [](const Source& a, const Source& b) {
      return a.sensor != b.sensor ? a.sensor < b.sensor : a.max_ts > b.max_ts;
    });
    std::vector<uint32_t> sel;
    std::vector<Vec> cols(plan_.columns.size());
    size_t i = 0;
    while (i < by_newest.size()) {
      uint32_t sensor = by_newest[i].sensor;
      bool found = false;
      int64_t best_ts = 0;
      std::vector<Value> best;
      for (; i < by_newest.size() && by_newest[i].sensor == sensor; ++i) {
        const Source& s = by_newest[i];
        if (found && s.max_ts <= best_ts) continue;
        uint8_t outcome = BlockOutcome(s);
        if (!(outcome & kTrue)) {
          ++result_->stats.blocks_skipped;
          continue;
        }
        if (outcome == kTrue && s.seg != nullptr) {
          ++result_->stats.blocks_from_stats;
          StatsRow row(s.seg->blocks()[s.block], s.max_ts, true);
          best.clear();
          for (size_t k = 0; k < plan_.columns.size(); ++k) {
            Evaluate(*plan_.columns[k].expr, row, &cols[k]);
            best.push_back(cols[k].Get(0));
          }
          best_ts = s.max_ts;
          found = true;
          continue;
        }
        auto chunk = MakeChunk(s);
        Select(*chunk, outcome == kTrue, &sel);
        if (sel.empty()) continue;
        Vec ts;
        chunk->Column(kTsColumn, FieldType::kNumber, &ts);
        uint32_t pick = sel[0];
        for (uint32_t r : sel) {
          if (ts.i[r] >= ts.i[pick]) pick = r;
        }
        if (found && ts.i[pick] <= best_ts) continue;
        best.clear();
        for (size_t k = 0; k < plan_.columns.size(); ++k) {
          Evaluate(*plan_.columns[k].expr, *chunk, &cols[k]);
          best.push_back(cols[k].Get(pick));
        }
        best_ts = ts.i[pick];
        found = true;
      }
      if (found) AddRow(std::move(best));
    }
  }

  // ---- aggregation ----
  // Whether a block's statistics can stand for its rows in this aggregation.
  bool StatsUsable() const {
    for (const auto& a : plan_.aggregates) {
      if (a.func == AggFunc::kCountStar) continue;
      if (a.arg->kind != BoundExpr::Kind::kColumn) return false;
      if (a.arg->column == kTsColumn && (a.func == AggFunc::kSum || a.func == AggFunc::kAvg || a.func == AggFunc::kStddevPop ||
                                         a.func == AggFunc::kStddevSamp)) {
        return false;
      }
    }
    return true;
  }

  // 0: the key depends on the sensor and constants only; 1: time_bucket(width, ts); -1: other.
  static int KeyKind(const BoundExpr& e) {
    if (e.kind == BoundExpr::Kind::kConstant) return 0;
    if (e.kind == BoundExpr::Kind::kColumn) return e.column == kSensorColumn ? 0 : -1;
    if (e.kind == BoundExpr::Kind::kCall && e.op == Op::kTimeBucket && e.args[0]->kind == BoundExpr::Kind::kConstant &&
        e.args[1]->kind == BoundExpr::Kind::kColumn && e.args[1]->column == kTsColumn) {
      return 1;
    }
    if (e.kind != BoundExpr::Kind::kCall) return -1;
    int kind = 0;
    for (const auto& a : e.args) {
      int k = KeyKind(*a);
      if (k != 0) return -1;
      kind = std::max(kind, k);
    }
    return kind;
  }

  Partial StatsFor(const Aggregate& a, const BlockMeta& m) const {
    Partial p{};
    if (a.func == AggFunc::kCountStar) {
      p.count = m.rows;
      return p;
    }
    const BoundExpr& col = *a.arg;
    if (col.column == kTsColumn) {
      double lo = static_cast<double>(m.min_ts), hi = static_cast<double>(m.max_ts);
      return Partial{m.rows, 0, 0, lo, hi, lo, hi, m.min_ts, m.max_ts, nullptr, nullptr};
    }
    if (col.column == kSensorColumn) {
      double id = m.sensor_id;
      return Partial{m.rows, id * m.rows, 0, id, id, id, id, m.min_ts, m.max_ts, nullptr, nullptr};
    }
    const ColumnMeta* c = m.Column(static_cast<uint32_t>(col.column));
    if (c == nullptr || c->type != col.field_type) return p;
    const auto& s = c->stats;
    return Partial{s.count, s.sum, s.m2, s.min, s.max, s.first, s.last, s.first_ts, s.last_ts, &s.first_text, &s.last_text};
  }

  // One thread's share of an aggregation: its groups and their accumulators.
  struct Groups {
    std::unordered_map<std::string, size_t> index;
    std::vector<std::vector<Value>> keys;
    std::vector<Acc> accs;  // keys.size() x aggregates
    QueryStats stats;
    std::string error;

    size_t For(const std::string& key, std::vector<Value> values, size_t aggregates) {
      auto [it, inserted] = index.try_emplace(key, keys.size());
      if (inserted) {
        keys.push_back(std::move(values));
        accs.resize(accs.size() + aggregates);
      }
      return it->second;
    }
  };

  // True when the chunk's rows all fall in one group (so it can be aggregated column-wise).
  bool KeysConstantOver(const Source& s) const {
    for (const auto& k : plan_.keys) {
      int kind = KeyKind(*k);
      if (kind < 0) return false;
      if (kind == 1) {
        int64_t width = k->args[0]->constant.i;
        if (TimeBucket(width, s.min_ts) != TimeBucket(width, s.max_ts)) return false;
      }
    }
    return true;
  }

  // Folds the selected rows of one argument column into a Partial (rows are in time order).
  static void ColumnPartial(const Vec& v, const std::vector<uint32_t>& sel, const int64_t* ts, bool need_m2, Partial* p,
                            std::string* first_text, std::string* last_text) {
    *p = Partial{0, 0, 0, std::numeric_limits<double>::infinity(), -std::numeric_limits<double>::infinity(), 0, 0, 0, 0, nullptr, nullptr};
    int64_t count = 0;
    uint32_t first = 0, last = 0;
    if (v.type == Type::kText) {
      for (uint32_t r : sel) {
        if (!v.IsValid(r)) continue;
        if (count == 0) first = r;
        last = r;
        ++count;
      }
      if (count == 0) return;
      first_text->assign(v.s[first]);
      last_text->assign(v.s[last]);
      *p = Partial{count, 0, 0, 0, 0, 0, 0, ts[first], ts[last], first_text, last_text};
      return;
    }
    double sum = 0, lo = p->min, hi = p->max;
    if (v.type == Type::kDouble && v.valid == nullptr) {
      const double* d = v.d;
      for (uint32_t r : sel) {
        double x = d[r];
        sum += x;
        lo = std::min(lo, x);
        hi = std::max(hi, x);
      }
      count = static_cast<int64_t>(sel.size());
      if (count > 0) {
        first = sel.front();
        last = sel.back();
      }
    } else {
      for (uint32_t r : sel) {
        if (!v.IsValid(r)) continue;
        double x = v.AsDouble(r);
        if (count == 0) first = r;
        last = r;
        ++count;
        sum += x;
        lo = std::min(lo, x);
        hi = std::max(hi, x);
      }
    }
    if (count == 0) return;
    double m2 = 0;
    if (need_m2) {
      double mean = sum / static_cast<double>(count);
      for (uint32_t r : sel) {
        if (!v.IsValid(r)) continue;
        double d = v.AsDouble(r) - mean;
        m2 += d * d;
      }
    }
    *p = Partial{count, sum, m2, lo, hi, v.AsDouble(first), v.AsDouble(last), ts[first], ts[last], nullptr, nullptr};
  }

  // Aggregates sources [begin, end) into *g.
  void AggregateRange(size_t begin, size_t end, bool stats_usable, const std::vector<bool>& need_m2, Groups* g) {
    std::vector<uint32_t> sel;
    std::vector<Vec> keys(plan_.keys.size());
    std::vector<Vec> args(plan_.aggregates.size());
    std::string key, first_text, last_text;
    std::vector<Value> key_values;
    const size_t n_aggs = plan_.aggregates.size();
    for (size_t i = begin; i < end; ++i) {
      const Source& s = sources_[i];
      uint8_t outcome = BlockOutcome(s);
      if (!(outcome & kTrue)) {
        ++g->stats.blocks_skipped;
        continue;
      }
      bool constant_keys = KeysConstantOver(s);
      if (stats_usable && outcome == kTrue && s.seg != nullptr && constant_keys) {
        const BlockMeta& m = s.seg->blocks()[s.block];
        ++g->stats.blocks_from_stats;
        key.clear();
        key_values.clear();
        for (size_t k = 0; k < plan_.keys.size(); ++k) {
          // The usual keys (sensor_id, time_bucket of ts) straight from the block; others evaluated.
          const BoundExpr& e = *plan_.keys[k];
          Value v;
          if (e.kind == BoundExpr::Kind::kColumn && e.column == kSensorColumn) {
            v = Value::Int(Type::kInteger, m.sensor_id);
          } else if (KeyKind(e) == 1 && e.kind == BoundExpr::Kind::kCall) {
            v = Value::Int(Type::kTimestamp, TimeBucket(e.args[0]->constant.i, m.min_ts));
          } else {
            StatsRow row(m, m.min_ts, false);
            Evaluate(e, row, &keys[k]);
            v = keys[k].Get(0);
          }
          AppendKeyValue(v, &key);
          key_values.push_back(std::move(v));
        }
        size_t group = g->For(key, std::move(key_values), n_aggs);
        for (size_t a = 0; a < n_aggs; ++a) Merge(g->accs[group * n_aggs + a], StatsFor(plan_.aggregates[a], m), need_m2[a]);
        continue;
      }
      auto chunk = MakeChunk(s, &g->stats);
      Select(*chunk, outcome == kTrue, &sel);
      if (sel.empty()) continue;
      for (size_t k = 0; k < plan_.keys.size(); ++k) Evaluate(*plan_.keys[k], *chunk, &keys[k]);
      for (size_t a = 0; a < n_aggs; ++a) {
        if (plan_.aggregates[a].arg) Evaluate(*plan_.aggregates[a].arg, *chunk, &args[a]);
      }
      Vec ts;
      chunk->Column(kTsColumn, FieldType::kNumber, &ts);
      if (constant_keys) {
        // Every selected row is in one group: fold each argument column in one tight loop.
        key.clear();
        key_values.clear();
        for (const auto& k : keys) {
          AppendKey(k, sel[0], &key);
          key_values.push_back(k.Get(sel[0]));
        }
        size_t group = g->For(key, std::move(key_values), n_aggs);
        for (size_t a = 0; a < n_aggs; ++a) {
          Partial p;
          if (plan_.aggregates[a].func == AggFunc::kCountStar) {
            p = Partial{static_cast<int64_t>(sel.size()), 0, 0, 0, 0, 0, 0, 0, 0, nullptr, nullptr};
            g->accs[group * n_aggs + a].count += p.count;
            continue;
          }
          ColumnPartial(args[a], sel, ts.i, need_m2[a], &p, &first_text, &last_text);
          Merge(g->accs[group * n_aggs + a], p, need_m2[a]);
        }
        continue;
      }
      std::string last_key = "\xff";
      size_t group = 0;
      for (uint32_t r : sel) {
        key.clear();
        for (const auto& k : keys) AppendKey(k, r, &key);
        if (key != last_key) {
          key_values.clear();
          for (const auto& k : keys) key_values.push_back(k.Get(r));
          group = g->For(key, std::move(key_values), n_aggs);
          last_key = key;
        }
        for (size_t a = 0; a < n_aggs; ++a) {
          Acc& acc = g->accs[group * n_aggs + a];
          const Aggregate& agg = plan_.aggregates[a];
          if (agg.func == AggFunc::kCountStar) {
            ++acc.count;
            continue;
          }
          const Vec& v = args[a];
          if (!v.IsValid(r)) continue;
          double x = v.type == Type::kText ? 0 : v.AsDouble(r);
          ++acc.count;
          acc.sum += x;
          acc.min = std::min(acc.min, x);
          acc.max = std::max(acc.max, x);
          if (need_m2[a]) {
            double delta = x - acc.mean;
            acc.mean += delta / static_cast<double>(acc.count);
            acc.m2 += delta * (x - acc.mean);
          }
          int64_t t = ts.i[r];
          if (!acc.has_first || t < acc.first_ts) {
            acc.first_ts = t;
            acc.first = x;
            if (v.type == Type::kText) acc.first_text.assign(v.s[r]);
          }
          if (!acc.has_first || t >= acc.last_ts) {
            acc.last_ts = t;
            acc.last = x;
            if (v.type == Type::kText) acc.last_text.assign(v.s[r]);
          }
          acc.has_first = true;
        }
      }
    }
  }

  static Partial PartialOf(const Acc& a) {
    return Partial{a.count, a.sum, a.m2, a.min, a.max, a.first, a.last, a.first_ts, a.last_ts, &a.first_text, &a.last_text};
  }

  void RunAggregate() {
    bool stats_usable = StatsUsable();
    for (const auto& k : plan_.keys) stats_usable = stats_usable && KeyKind(*k) >= 0;
    std::vector<bool> need_m2;
    for (const auto& a : plan_.aggregates) need_m2.push_back(a.func == AggFunc::kStddevPop || a.func == AggFunc::kStddevSamp);
    const size_t n_aggs = plan_.aggregates.size();

    // Two threads when there is enough to read: split the sources at half the rows.
    int64_t total_rows = 0;
    for (const Source& s : sources_) total_rows += s.seg ? s.seg->blocks()[s.block].rows : static_cast<int64_t>(s.mem->size());
    Groups main_groups, other_groups;
    size_t split = sources_.size();
    if (options_.threads > 1 && total_rows >= 200'000 && sources_.size() >= 8) {
      int64_t half = 0;
      for (split = 0; split < sources_.size() && half < total_rows / 2; ++split) {
        const Source& s = sources_[split];
        half += s.seg ? s.seg->blocks()[s.block].rows : static_cast<int64_t>(s.mem->size());
      }
    }
    std::thread other;
    if (split < sources_.size()) {
      other = std::thread([&] {
        try {
          AggregateRange(split, sources_.size(), stats_usable, need_m2, &other_groups);
        } catch (const ExecError& e) {
          other_groups.error = e.message;
        }
      });
    }
    try {
      AggregateRange(0, split, stats_usable, need_m2, &main_groups);
    } catch (...) {
      if (other.joinable()) other.join();
      throw;
    }
    if (other.joinable()) other.join();
    if (!other_groups.error.empty()) throw ExecError{other_groups.error};
    // Merge the other thread's groups into the main ones.
    main_groups.index.reserve(main_groups.index.size() + other_groups.index.size());
    for (auto& [key, index] : other_groups.index) {
      size_t into = main_groups.For(key, std::move(other_groups.keys[index]), n_aggs);
      for (size_t a = 0; a < n_aggs; ++a) {
        Merge(main_groups.accs[into * n_aggs + a], PartialOf(other_groups.accs[index * n_aggs + a]), need_m2[a]);
      }
    }
    for (const QueryStats* st : {&main_groups.stats, &other_groups.stats}) {
      result_->stats.blocks_skipped += st->blocks_skipped;
      result_->stats.blocks_from_stats += st->blocks_from_stats;
      result_->stats.blocks_decoded += st->blocks_decoded;
      result_->stats.memtable_rows += st->memtable_rows;
      result_->stats.rows_scanned += st->rows_scanned;
    }
    std::vector<Value> no_values;
    if (plan_.keys.empty() && main_groups.keys.empty()) main_groups.For("", no_values, n_aggs);  // one row, even over no rows

    // Groups in the order of their keys (deterministic whatever the threads did).
    std::vector<size_t> order(main_groups.keys.size());
    for (size_t g = 0; g < order.size(); ++g) order[g] = g;
    std::sort(order.begin(), order.end(), [&](size_t x, size_t y) {
      const auto& a = main_groups.keys[x];
      const auto& b = main_groups.keys[y];
      for (size_t k = 0; k < a.size(); ++k) {
        if (a[k].null != b[k].null) return b[k].null;
        int c = CompareValues(a[k], b[k]);
        if (c != 0) return c < 0;
      }
      return false;
    });
    group_keys_.clear();
    accs_.clear();
    for (size_t g : order) {
      group_keys_.push_back(std::move(main_groups.keys[g]));
      accs_.insert(accs_.end(), main_groups.accs.begin() + static_cast<std::ptrdiff_t>(g * n_aggs),
                   main_groups.accs.begin() + static_cast<std::ptrdiff_t>((g + 1) * n_aggs));
    }

    // The slot scope: keys, then aggregate results.
    size_t n = group_keys_.size();
    std::vector<Vec> slots(plan_.keys.size() + plan_.aggregates.size());
    // The slots' text values are views into these: they live as long as the slots.
    std::vector<std::vector<Value>> columns(slots.size(), std::vector<Value>(n));
    for (size_t k = 0; k < plan_.keys.size(); ++k) {
      for (size_t g = 0; g < n; ++g) columns[k][g] = group_keys_[g][k];
      ToVec(columns[k], plan_.keys[k]->type, &slots[k]);
    }
    for (size_t a = 0; a < plan_.aggregates.size(); ++a) {
      auto& column = columns[plan_.keys.size() + a];
      for (size_t g = 0; g < n; ++g) column[g] = Finish(plan_.aggregates[a], accs_[g * plan_.aggregates.size() + a]);
      ToVec(column, plan_.aggregates[a].type, &slots[plan_.keys.size() + a]);
    }
    GroupChunk chunk(&slots, n);
    Vec having;
    if (plan_.having) Evaluate(*plan_.having, chunk, &having);
    std::vector<Vec> cols(plan_.columns.size());
    for (size_t k = 0; k < plan_.columns.size(); ++k) Evaluate(*plan_.columns[k].expr, chunk, &cols[k]);
    for (size_t g = 0; g < n; ++g) {
      if (plan_.having && !having.Selected(g)) continue;
      std::vector<Value> row;
      for (const auto& c : cols) row.push_back(c.Get(g));
      AddRow(std::move(row));
    }
  }

  void SortAndLimit() {
    if (!plan_.order.empty()) {
      // Rows often come in order already (one sensor's blocks are read in time order).
      auto less = [&](const auto& a, const auto& b) { return Less(a, b); };
      if (!std::is_sorted(rows_.begin(), rows_.end(), less)) std::stable_sort(rows_.begin(), rows_.end(), less);
    }
    size_t begin = std::min(rows_.size(), static_cast<size_t>(plan_.offset));
    size_t end = plan_.limit == std::numeric_limits<int64_t>::max() ? rows_.size()
                                                                     : std::min(rows_.size(), begin + static_cast<size_t>(plan_.limit));
    if (end - begin > options_.max_rows) {
      throw ExecError{fmt::format("the result has more than {} rows; add a LIMIT or narrow the WHERE clause", options_.max_rows)};
    }
    size_t visible = result_->names.size();
    result_->rows.reserve(end - begin);
    for (size_t r = begin; r < end; ++r) {
      rows_[r].resize(visible);
      result_->rows.push_back(std::move(rows_[r]));
    }
  }

  const Plan& plan_;
  const store::Snapshot& snap_;
  const QueryOptions& options_;
  QueryResult* result_;
  std::vector<Source> sources_;
  std::vector<std::vector<Value>> rows_;
  std::vector<std::vector<Value>> group_keys_;
  std::vector<Acc> accs_;
};

}  // namespace

int CompareValues(const Value& a, const Value& b) {
  if (a.null || b.null) return a.null == b.null ? 0 : (a.null ? 1 : -1);
  if (a.type == Type::kText || b.type == Type::kText) return a.s < b.s ? -1 : (a.s > b.s ? 1 : 0);
  if (a.type == Type::kDouble || b.type == Type::kDouble) {
    double x = a.AsDouble(), y = b.AsDouble();
    return x < y ? -1 : (x > y ? 1 : 0);
  }
  return a.i < b.i ? -1 : (a.i > b.i ? 1 : 0);
}

const char* TypeName(Type type) {
  switch (type) {
    case Type::kNull: return "null";
    case Type::kBoolean: return "boolean";
    case Type::kInteger: return "integer";
    case Type::kDouble: return "double";
    case Type::kTimestamp: return "timestamp";
    case Type::kInterval: return "interval";
    case Type::kText: return "text";
  }
  return "?";
}

bool RunQuery(store::Store& store, std::string_view sql, const QueryOptions& options, QueryResult* result, SqlError* error) {
  SelectStatement statement;
  if (!Parse(sql, &statement, error)) return false;
  Plan plan;
  int64_t now = options.now_us != 0 ? options.now_us : NowMicros();
  // The snapshot's schema binds names; its rows are then read for the plan's sensors and times.
  std::vector<store::Field> fields = store.schema().Fields();
  if (!BuildPlan(statement, fields, now, &plan, error)) return false;
  store::SnapshotFilter filter;
  if (plan.sensors_set) filter.sensors = plan.sensors;
  if (plan.sensors_set && plan.sensors.empty()) plan.empty = true;
  filter.min_ts = plan.min_ts;
  filter.max_ts = plan.max_ts;
  filter.latest_only = plan.latest && !plan.where;
  auto snap = plan.empty ? std::make_shared<store::Snapshot>() : store.GetSnapshot(filter);
  try {
    Executor(plan, *snap, options, result).Run();
  } catch (const ExecError& e) {
    *error = SqlError{e.message, Position{0, 0}};
    return false;
  }
  return true;
}

}  // namespace mare::query
