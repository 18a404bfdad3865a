// What a block's statistics say about WHERE: whether its rows can all be true, all false, or
// some null, so that the executor skips a block, or answers from its statistics alone.
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

// ---- what statistics say about WHERE ----------------------------------------------------------

constexpr uint8_t kTrue = 1, kFalse = 2, kNull = 4, kAny = 7;

inline uint8_t Not(uint8_t s) { return static_cast<uint8_t>(((s & kTrue) ? kFalse : 0) | ((s & kFalse) ? kTrue : 0) | (s & kNull)); }

inline uint8_t Kleene(bool is_and, uint8_t a, uint8_t b) {
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

inline bool ColumnRange(const BoundExpr& e, const BlockMeta& m, Range* r) {
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

inline uint8_t CompareRange(Op op, const Range& r, double c) {
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

inline Op Flip(Op op) { return op == Op::kLt ? Op::kGt : op == Op::kLe ? Op::kGe : op == Op::kGt ? Op::kLt : op == Op::kGe ? Op::kLe : op; }

inline bool NumericConstant(const BoundExpr& e, double* c) {
  if (e.kind != BoundExpr::Kind::kConstant || e.constant.null || e.type == Type::kText) return false;
  *c = e.constant.AsDouble();
  return true;
}

inline uint8_t Outcomes(const BoundExpr& e, const BlockMeta& m) {
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

}  // namespace mare::query::exec
