#include "query/eval.h"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

namespace mare::query {
namespace {

constexpr int64_t kOrigin = 946'857'600'000'000;  // 2000-01-03T00:00:00Z

// An empty source for constant folding.
class NoRows : public ChunkSource {
 public:
  size_t rows() const override { return 1; }
  bool Column(int32_t, store::FieldType, Vec*, SqlError*) override { return true; }
  void Slot(int32_t, Vec*) override {}
};

void AllocBool(Vec* out, size_t n) {
  out->type = Type::kBoolean;
  out->n = n;
  out->own_i.assign(n, 0);
  out->i = out->own_i.data();
  out->own_valid.clear();
  out->valid = nullptr;
}

// Rows where both have a value; null pointer when all do.
void MergeValid(const Vec& a, const Vec& b, Vec* out) {
  if (a.valid == nullptr && b.valid == nullptr) {
    out->valid = nullptr;
    return;
  }
  out->own_valid.resize(out->n);
  for (size_t r = 0; r < out->n; ++r) out->own_valid[r] = a.IsValid(r) && b.IsValid(r);
  out->valid = out->own_valid.data();
}

void Constant(const Value& v, size_t n, Vec* out) {
  out->type = v.type;
  out->n = n;
  if (v.null) {
    out->own_valid.assign(n, 0);
    out->valid = out->own_valid.data();
  } else {
    out->valid = nullptr;
  }
  if (v.type == Type::kDouble) {
    out->own_d.assign(n, v.d);
    out->d = out->own_d.data();
  } else if (v.type == Type::kText) {
    out->own_text = v.s;
    out->own_s.assign(n, std::string_view(out->own_text));
    out->s = out->own_s.data();
  } else {
    out->own_i.assign(n, v.i);
    out->i = out->own_i.data();
  }
}

// Doubles of a numeric vector (converting integers into scratch).
const double* Doubles(const Vec& v, std::vector<double>* scratch) {
  if (v.type == Type::kDouble) return v.d;
  scratch->resize(v.n);
  for (size_t r = 0; r < v.n; ++r) (*scratch)[r] = static_cast<double>(v.i[r]);
  return scratch->data();
}

template <typename T>
int Cmp(T a, T b) {
  return a < b ? -1 : (a > b ? 1 : 0);
}

bool Holds(Op op, int c) {
  switch (op) {
    case Op::kEq: return c == 0;
    case Op::kNe: return c != 0;
    case Op::kLt: return c < 0;
    case Op::kLe: return c <= 0;
    case Op::kGt: return c > 0;
    case Op::kGe: return c >= 0;
    default: return false;
  }
}

void Compare(Op op, const Vec& a, const Vec& b, Vec* out) {
  size_t n = a.n;
  AllocBool(out, n);
  MergeValid(a, b, out);
  int64_t* o = out->own_i.data();
  if (a.type == Type::kText) {
    for (size_t r = 0; r < n; ++r) o[r] = Holds(op, a.s[r].compare(b.s[r]) < 0 ? -1 : (a.s[r] == b.s[r] ? 0 : 1));
  } else if (a.type == Type::kDouble || b.type == Type::kDouble) {
    std::vector<double> sa, sb;
    const double* x = Doubles(a, &sa);
    const double* y = Doubles(b, &sb);
    switch (op) {
      case Op::kEq: for (size_t r = 0; r < n; ++r) o[r] = x[r] == y[r]; break;
      case Op::kNe: for (size_t r = 0; r < n; ++r) o[r] = x[r] != y[r]; break;
      case Op::kLt: for (size_t r = 0; r < n; ++r) o[r] = x[r] < y[r]; break;
      case Op::kLe: for (size_t r = 0; r < n; ++r) o[r] = x[r] <= y[r]; break;
      case Op::kGt: for (size_t r = 0; r < n; ++r) o[r] = x[r] > y[r]; break;
      case Op::kGe: for (size_t r = 0; r < n; ++r) o[r] = x[r] >= y[r]; break;
      default: break;
    }
  } else {
    for (size_t r = 0; r < n; ++r) o[r] = Holds(op, Cmp(a.i[r], b.i[r]));
  }
}

// Kleene logic on booleans.
void Logic(Op op, const Vec& a, const Vec& b, Vec* out) {
  size_t n = a.n;
  AllocBool(out, n);
  bool any_null = a.valid != nullptr || b.valid != nullptr;
  if (any_null) out->own_valid.assign(n, 1);
  for (size_t r = 0; r < n; ++r) {
    bool av = a.IsValid(r), bv = b.IsValid(r);
    bool at = av && a.i[r], bt = bv && b.i[r];
    bool af = av && !a.i[r], bf = bv && !b.i[r];
    if (op == Op::kAnd) {
      if (af || bf) {
        out->own_i[r] = 0;
      } else if (at && bt) {
        out->own_i[r] = 1;
      } else {
        out->own_valid[r] = 0;
      }
    } else {
      if (at || bt) {
        out->own_i[r] = 1;
      } else if (af && bf) {
        out->own_i[r] = 0;
      } else {
        out->own_valid[r] = 0;
      }
    }
  }
  if (any_null) out->valid = out->own_valid.data();
}

const char* OpName(Op op) {
  switch (op) {
    case Op::kAdd: return "+";
    case Op::kSub: return "-";
    case Op::kMul: return "*";
    case Op::kDiv: return "/";
    case Op::kMod: return "%";
    case Op::kNeg: return "unary -";
    case Op::kAbs: return "abs()";
    default: return "?";
  }
}

// Integer results that do not fit 64 bits are an error, never wrapped around.
bool Overflow(Op op, const Position& pos, SqlError* error) {
  *error = SqlError{fmt::format("integer overflow in {} (the result does not fit a 64-bit integer)", OpName(op)), pos,
                    SqlError::Kind::kStatement};
  return false;
}

// A double rounded to an integer, or false when out of the 64-bit range (or NaN).
bool ToInt64(double x, int64_t* out) {
  double r = std::nearbyint(x);
  if (!(r >= -9223372036854775808.0 && r < 9223372036854775808.0)) return false;
  *out = static_cast<int64_t>(r);
  return true;
}

bool Arithmetic(Op op, Type type, const Position& pos, const Vec& a, const Vec& b, Vec* out, SqlError* error) {
  size_t n = a.n;
  out->type = type;
  out->n = n;
  MergeValid(a, b, out);
  if (type == Type::kDouble) {
    std::vector<double> sa, sb;
    const double* x = Doubles(a, &sa);
    const double* y = Doubles(b, &sb);
    out->own_d.resize(n);
    double* o = out->own_d.data();
    switch (op) {
      case Op::kAdd: for (size_t r = 0; r < n; ++r) o[r] = x[r] + y[r]; break;
      case Op::kSub: for (size_t r = 0; r < n; ++r) o[r] = x[r] - y[r]; break;
      case Op::kMul: for (size_t r = 0; r < n; ++r) o[r] = x[r] * y[r]; break;
      case Op::kDiv: for (size_t r = 0; r < n; ++r) o[r] = x[r] / y[r]; break;
      case Op::kMod: for (size_t r = 0; r < n; ++r) o[r] = std::fmod(x[r], y[r]); break;
      default: break;
    }
    // Division by zero gives NULL, as in most SQL engines' lenient mode (never an infinity).
    if (op == Op::kDiv || op == Op::kMod) {
      bool any = false;
      for (size_t r = 0; r < n; ++r) any |= y[r] == 0;
      if (any) {
        std::vector<uint8_t> valid(n);
        for (size_t r = 0; r < n; ++r) valid[r] = out->IsValid(r) && y[r] != 0;
        out->own_valid = std::move(valid);
        out->valid = out->own_valid.data();
      }
    }
    out->d = out->own_d.data();
    return true;
  }
  // Integers, timestamps and intervals. Interval * number is handled as doubles then rounded.
  // Rows without a value (NULL) hold arbitrary numbers: their overflow is no error.
  out->own_i.resize(n);
  int64_t* o = out->own_i.data();
  bool overflow = false;
  if (a.type != Type::kDouble && b.type != Type::kDouble && (op == Op::kAdd || op == Op::kSub || op == Op::kMul)) {
    // The common case, one tight loop per operator: the overflow flags are OR-ed without a
    // branch, and only when one is set are the rows looked at again for whether it had a value.
    const int64_t* x = a.i;
    const int64_t* y = b.i;
    bool any = false;
    switch (op) {
      case Op::kAdd: for (size_t r = 0; r < n; ++r) any |= __builtin_add_overflow(x[r], y[r], &o[r]); break;
      case Op::kSub: for (size_t r = 0; r < n; ++r) any |= __builtin_sub_overflow(x[r], y[r], &o[r]); break;
      default: for (size_t r = 0; r < n; ++r) any |= __builtin_mul_overflow(x[r], y[r], &o[r]); break;
    }
    if (any) {
      int64_t ignored;
      for (size_t r = 0; r < n && !overflow; ++r) {
        bool bad = op == Op::kAdd   ? __builtin_add_overflow(x[r], y[r], &ignored)
                   : op == Op::kSub ? __builtin_sub_overflow(x[r], y[r], &ignored)
                                    : __builtin_mul_overflow(x[r], y[r], &ignored);
        overflow = bad && out->IsValid(r);
      }
      if (overflow) return Overflow(op, pos, error);
    }
    out->i = o;
    return true;
  }
  std::vector<uint8_t> zero;
  for (size_t r = 0; r < n; ++r) {
    bool bad = false;
    int64_t x = 0, y = 0;
    if (a.type == Type::kDouble) bad |= !ToInt64(a.d[r], &x); else x = a.i[r];
    if (b.type == Type::kDouble) bad |= !ToInt64(b.d[r], &y); else y = b.i[r];
    switch (op) {
      case Op::kAdd: bad |= __builtin_add_overflow(x, y, &o[r]); break;
      case Op::kSub: bad |= __builtin_sub_overflow(x, y, &o[r]); break;
      case Op::kMul:
        if (a.type == Type::kDouble || b.type == Type::kDouble) {
          bad = !ToInt64(a.AsDouble(r) * b.AsDouble(r), &o[r]);
        } else {
          bad |= __builtin_mul_overflow(x, y, &o[r]);
        }
        break;
      case Op::kMod:
      case Op::kDiv:
        if (op == Op::kDiv && (a.type == Type::kDouble || b.type == Type::kDouble)) {
          // interval / double: divided as doubles (by 1.5, not by 2), then rounded.
          double d = b.AsDouble(r);
          if (d == 0) {
            if (zero.empty()) zero.assign(n, 1);
            zero[r] = 0;
            o[r] = 0;
          } else {
            bad = !ToInt64(a.AsDouble(r) / d, &o[r]);
          }
        } else if (y == 0) {  // NULL, as for doubles
          if (zero.empty()) zero.assign(n, 1);
          zero[r] = 0;
          o[r] = 0;
        } else if (y == -1) {
          // x / -1 is -x: 2^63 does not fit when x is the smallest integer (and the division
          // instruction traps on x86, for % as for /). x % -1 is 0 whatever x, as in PostgreSQL.
          if (op == Op::kMod) o[r] = 0;
          else bad = __builtin_sub_overflow(int64_t{0}, x, &o[r]);
        } else {
          o[r] = op == Op::kMod ? x % y : x / y;
        }
        break;
      default: break;
    }
    if (bad) {
      o[r] = 0;
      overflow |= out->IsValid(r);
    }
  }
  if (overflow) return Overflow(op, pos, error);
  if (!zero.empty()) {
    for (size_t r = 0; r < n; ++r) zero[r] = zero[r] && out->IsValid(r);
    out->own_valid = std::move(zero);
    out->valid = out->own_valid.data();
  }
  out->i = out->own_i.data();
  return true;
}

bool UnaryMath(Op op, const Position& pos, const Vec& a, Vec* out, SqlError* error) {
  size_t n = a.n;
  out->n = n;
  out->own_valid.clear();
  out->valid = a.valid;
  if (a.valid != nullptr) {
    out->own_valid.assign(a.valid, a.valid + n);
    out->valid = out->own_valid.data();
  }
  if (a.type != Type::kDouble && (op == Op::kNeg || op == Op::kAbs)) {
    out->type = a.type;
    out->own_i.resize(n);
    bool overflow = false;
    for (size_t r = 0; r < n; ++r) {
      int64_t x = a.i[r];
      if (x == INT64_MIN) {  // -x and abs(x) are 2^63, one more than the largest integer
        overflow |= a.IsValid(r);
        out->own_i[r] = 0;
        continue;
      }
      out->own_i[r] = op == Op::kNeg ? -x : (x < 0 ? -x : x);
    }
    out->i = out->own_i.data();
    if (overflow) return Overflow(op, pos, error);
    return true;
  }
  out->type = Type::kDouble;
  out->own_d.resize(n);
  for (size_t r = 0; r < n; ++r) {
    double x = a.AsDouble(r);
    double y = 0;
    switch (op) {
      case Op::kNeg: y = -x; break;
      case Op::kAbs: y = std::fabs(x); break;
      case Op::kFloor: y = std::floor(x); break;
      case Op::kCeil: y = std::ceil(x); break;
      case Op::kSqrt: y = std::sqrt(x); break;
      default: break;
    }
    out->own_d[r] = y;
  }
  if (op == Op::kSqrt) {
    bool any = false;
    for (size_t r = 0; r < n; ++r) any |= std::isnan(out->own_d[r]);
    if (any) {
      out->own_valid.resize(n, 1);
      for (size_t r = 0; r < n; ++r) out->own_valid[r] = a.IsValid(r) && !std::isnan(out->own_d[r]);
      out->valid = out->own_valid.data();
    }
  }
  out->d = out->own_d.data();
  return true;
}

}  // namespace

Value Vec::Get(size_t r) const {
  if (!IsValid(r)) return Value::Null(type);
  if (type == Type::kDouble) return Value::Double(d[r]);
  if (type == Type::kText) return Value::Text(std::string(s[r]));
  return Value::Int(type, i[r]);
}

int64_t TimeBucket(int64_t width, int64_t ts) {
  // A bucket starting before the smallest timestamp (ts within a width of it, ~292,000 years
  // before 1970, only reachable by arithmetic) starts at the smallest timestamp.
  int64_t delta, start;
  if (__builtin_sub_overflow(ts, kOrigin, &delta)) return INT64_MIN;
  int64_t q = delta / width;
  if (delta % width < 0) --q;
  if (__builtin_mul_overflow(q, width, &start) || __builtin_add_overflow(start, kOrigin, &start)) return INT64_MIN;
  return start;
}

double DistanceKm(double lat1, double lon1, double lat2, double lon2) {
  constexpr double kRad = M_PI / 180.0;
  double dlat = (lat2 - lat1) * kRad;
  double dlon = (lon2 - lon1) * kRad;
  double h = std::sin(dlat / 2) * std::sin(dlat / 2) +
             std::cos(lat1 * kRad) * std::cos(lat2 * kRad) * std::sin(dlon / 2) * std::sin(dlon / 2);
  return 2 * 6371.0088 * std::asin(std::min(1.0, std::sqrt(h)));
}

bool Evaluate(const BoundExpr& e, ChunkSource& chunk, Vec* out, SqlError* error) {
  size_t n = chunk.rows();
  switch (e.kind) {
    case BoundExpr::Kind::kConstant:
      Constant(e.constant, n, out);
      return true;
    case BoundExpr::Kind::kColumn:
      return chunk.Column(e.column, e.field_type, out, error);
    case BoundExpr::Kind::kSlot:
      chunk.Slot(e.slot, out);
      return true;
    case BoundExpr::Kind::kCall:
      break;
  }
  if (e.op == Op::kIn) {
    // x IN (a, b, ...): x = a OR x = b ..., with SQL's NULL rules. One item evaluated at a time:
    // a list of 10,000 constants over a block of 36,000 rows would hold 3 GB at once.
    Vec x, item, acc, eq, next;
    if (!Evaluate(*e.args[0], chunk, &x, error) || !Evaluate(*e.args[1], chunk, &item, error)) return false;
    Compare(Op::kEq, x, item, &acc);
    for (size_t k = 2; k < e.args.size(); ++k) {
      if (!Evaluate(*e.args[k], chunk, &item, error)) return false;
      Compare(Op::kEq, x, item, &eq);
      Logic(Op::kOr, acc, eq, &next);
      std::swap(acc, next);
      acc.i = acc.own_i.data();
      acc.valid = acc.own_valid.empty() ? nullptr : acc.own_valid.data();
    }
    *out = std::move(acc);
    out->i = out->own_i.data();
    out->valid = out->own_valid.empty() ? nullptr : out->own_valid.data();
    if (e.negated) {
      for (size_t r = 0; r < n; ++r) out->own_i[r] = !out->own_i[r];
    }
    return true;
  }
  std::vector<Vec> args(e.args.size());
  for (size_t k = 0; k < e.args.size(); ++k) {
    if (!Evaluate(*e.args[k], chunk, &args[k], error)) return false;
  }
  switch (e.op) {
    case Op::kAdd:
    case Op::kSub:
    case Op::kMul:
    case Op::kDiv:
    case Op::kMod:
      return Arithmetic(e.op, e.type, e.pos, args[0], args[1], out, error);
    case Op::kNeg:
    case Op::kAbs:
    case Op::kFloor:
    case Op::kCeil:
    case Op::kSqrt: {
      bool ok = UnaryMath(e.op, e.pos, args[0], out, error);
      out->type = e.type;
      return ok;
    }
    case Op::kEq:
    case Op::kNe:
    case Op::kLt:
    case Op::kLe:
    case Op::kGt:
    case Op::kGe:
      Compare(e.op, args[0], args[1], out);
      return true;
    case Op::kAnd:
    case Op::kOr:
      Logic(e.op, args[0], args[1], out);
      return true;
    case Op::kNot: {
      AllocBool(out, n);
      for (size_t r = 0; r < n; ++r) out->own_i[r] = !args[0].i[r];
      if (args[0].valid != nullptr) {
        out->own_valid.assign(args[0].valid, args[0].valid + n);
        out->valid = out->own_valid.data();
      }
      return true;
    }
    case Op::kBetween: {
      Vec lo, hi;
      Compare(Op::kGe, args[0], args[1], &lo);
      Compare(Op::kLe, args[0], args[2], &hi);
      Logic(Op::kAnd, lo, hi, out);
      if (e.negated) {
        for (size_t r = 0; r < n; ++r) out->own_i[r] = !out->own_i[r];
      }
      return true;
    }
    case Op::kIn:  // above
      return true;
    case Op::kIsNull: {
      AllocBool(out, n);
      for (size_t r = 0; r < n; ++r) out->own_i[r] = args[0].IsValid(r) == e.negated;
      return true;
    }
    case Op::kTimeBucket: {
      out->type = Type::kTimestamp;
      out->n = n;
      out->own_i.resize(n);
      for (size_t r = 0; r < n; ++r) {
        int64_t width = args[0].i[r];
        out->own_i[r] = width > 0 ? TimeBucket(width, args[1].i[r]) : 0;
      }
      out->i = out->own_i.data();
      MergeValid(args[0], args[1], out);
      return true;
    }
    case Op::kDistanceKm: {
      out->type = Type::kDouble;
      out->n = n;
      out->own_d.resize(n);
      for (size_t r = 0; r < n; ++r) {
        out->own_d[r] = DistanceKm(args[0].AsDouble(r), args[1].AsDouble(r), args[2].AsDouble(r), args[3].AsDouble(r));
      }
      out->d = out->own_d.data();
      Vec ab, cd;
      ab.n = cd.n = n;
      MergeValid(args[0], args[1], &ab);
      MergeValid(args[2], args[3], &cd);
      MergeValid(ab, cd, out);
      return true;
    }
    case Op::kRound: {
      out->type = Type::kDouble;
      out->n = n;
      out->own_d.resize(n);
      for (size_t r = 0; r < n; ++r) {
        double x = args[0].AsDouble(r);
        double scale = args.size() > 1 ? std::pow(10.0, static_cast<double>(args[1].i[r])) : 1.0;
        // Past a double's range of digits (scale infinite, or 0 for hundreds of negative digits)
        // x * scale / scale is NaN: x has no more digits to drop, or rounds to 0.
        double y = std::round(x * scale) / scale;
        if (!std::isfinite(y) && std::isfinite(x)) y = scale == 0 ? 0.0 : x;
        out->own_d[r] = y;
      }
      out->d = out->own_d.data();
      if (args.size() > 1) {
        MergeValid(args[0], args[1], out);
      } else {
        out->valid = args[0].valid;
        if (out->valid != nullptr) {
          out->own_valid.assign(args[0].valid, args[0].valid + n);
          out->valid = out->own_valid.data();
        }
      }
      return true;
    }
    case Op::kTimestampOfMicros: {
      out->type = Type::kTimestamp;
      out->n = n;
      out->own_i.resize(n);
      for (size_t r = 0; r < n; ++r) out->own_i[r] = args[0].IsValid(r) ? static_cast<int64_t>(std::llround(args[0].AsDouble(r))) : 0;
      out->i = out->own_i.data();
      out->valid = nullptr;
      if (args[0].valid != nullptr) {
        out->own_valid.assign(args[0].valid, args[0].valid + n);
        out->valid = out->own_valid.data();
      }
      return true;
    }
    case Op::kEpoch: {
      out->type = Type::kDouble;
      out->n = n;
      out->own_d.resize(n);
      for (size_t r = 0; r < n; ++r) out->own_d[r] = static_cast<double>(args[0].i[r]) / 1e6;
      out->d = out->own_d.data();
      out->valid = nullptr;
      if (args[0].valid != nullptr) {
        out->own_valid.assign(args[0].valid, args[0].valid + n);
        out->valid = out->own_valid.data();
      }
      return true;
    }
  }
  return true;
}

bool EvaluateConstant(const BoundExpr& e, Value* out, SqlError* error) {
  NoRows none;
  Vec v;
  if (!Evaluate(e, none, &v, error)) return false;
  *out = v.Get(0);
  return true;
}

}  // namespace mare::query
