#include "query/eval.h"

#include <algorithm>
#include <cmath>

namespace mare::query {
namespace {

constexpr int64_t kOrigin = 946'857'600'000'000;  // 2000-01-03T00:00:00Z

// An empty source for constant folding.
class NoRows : public ChunkSource {
 public:
  size_t rows() const override { return 1; }
  void Column(int32_t, store::FieldType, Vec*) override {}
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

void Arithmetic(Op op, Type type, const Vec& a, const Vec& b, Vec* out) {
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
    return;
  }
  // Integers, timestamps and intervals. Interval * number is handled as doubles then rounded.
  out->own_i.resize(n);
  int64_t* o = out->own_i.data();
  std::vector<uint8_t> zero;
  for (size_t r = 0; r < n; ++r) {
    int64_t x = a.type == Type::kDouble ? static_cast<int64_t>(std::llround(a.d[r])) : a.i[r];
    int64_t y = b.type == Type::kDouble ? static_cast<int64_t>(std::llround(b.d[r])) : b.i[r];
    switch (op) {
      case Op::kAdd: o[r] = static_cast<int64_t>(static_cast<uint64_t>(x) + static_cast<uint64_t>(y)); break;
      case Op::kSub: o[r] = static_cast<int64_t>(static_cast<uint64_t>(x) - static_cast<uint64_t>(y)); break;
      case Op::kMul:
        if (a.type == Type::kDouble || b.type == Type::kDouble) {
          o[r] = std::llround(a.AsDouble(r) * b.AsDouble(r));
        } else {
          o[r] = static_cast<int64_t>(static_cast<uint64_t>(x) * static_cast<uint64_t>(y));
        }
        break;
      case Op::kMod:
      case Op::kDiv:
        if (y == 0 || (x == INT64_MIN && y == -1)) {
          if (zero.empty()) zero.assign(n, 1);
          zero[r] = 0;
          o[r] = 0;
        } else {
          o[r] = op == Op::kMod ? x % y : x / y;
        }
        break;
      default: break;
    }
  }
  if (!zero.empty()) {
    for (size_t r = 0; r < n; ++r) zero[r] = zero[r] && out->IsValid(r);
    out->own_valid = std::move(zero);
    out->valid = out->own_valid.data();
  }
  out->i = out->own_i.data();
}

void UnaryMath(Op op, const Vec& a, Vec* out) {
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
    for (size_t r = 0; r < n; ++r) {
      int64_t x = a.i[r];
      out->own_i[r] = op == Op::kNeg ? static_cast<int64_t>(0 - static_cast<uint64_t>(x)) : (x < 0 ? static_cast<int64_t>(0 - static_cast<uint64_t>(x)) : x);
    }
    out->i = out->own_i.data();
    return;
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
}

}  // namespace

Value Vec::Get(size_t r) const {
  if (!IsValid(r)) return Value::Null(type);
  if (type == Type::kDouble) return Value::Double(d[r]);
  if (type == Type::kText) return Value::Text(std::string(s[r]));
  return Value::Int(type, i[r]);
}

int64_t TimeBucket(int64_t width, int64_t ts) {
  int64_t delta = ts - kOrigin;
  int64_t q = delta / width;
  if (delta % width < 0) --q;
  return kOrigin + q * width;
}

double DistanceKm(double lat1, double lon1, double lat2, double lon2) {
  constexpr double kRad = M_PI / 180.0;
  double dlat = (lat2 - lat1) * kRad;
  double dlon = (lon2 - lon1) * kRad;
  double h = std::sin(dlat / 2) * std::sin(dlat / 2) +
             std::cos(lat1 * kRad) * std::cos(lat2 * kRad) * std::sin(dlon / 2) * std::sin(dlon / 2);
  return 2 * 6371.0088 * std::asin(std::min(1.0, std::sqrt(h)));
}

void Evaluate(const BoundExpr& e, ChunkSource& chunk, Vec* out) {
  size_t n = chunk.rows();
  switch (e.kind) {
    case BoundExpr::Kind::kConstant:
      Constant(e.constant, n, out);
      return;
    case BoundExpr::Kind::kColumn:
      chunk.Column(e.column, e.field_type, out);
      return;
    case BoundExpr::Kind::kSlot:
      chunk.Slot(e.slot, out);
      return;
    case BoundExpr::Kind::kCall:
      break;
  }
  std::vector<Vec> args(e.args.size());
  for (size_t k = 0; k < e.args.size(); ++k) Evaluate(*e.args[k], chunk, &args[k]);
  switch (e.op) {
    case Op::kAdd:
    case Op::kSub:
    case Op::kMul:
    case Op::kDiv:
    case Op::kMod:
      Arithmetic(e.op, e.type, args[0], args[1], out);
      return;
    case Op::kNeg:
    case Op::kAbs:
    case Op::kFloor:
    case Op::kCeil:
    case Op::kSqrt:
      UnaryMath(e.op, args[0], out);
      out->type = e.type;
      return;
    case Op::kEq:
    case Op::kNe:
    case Op::kLt:
    case Op::kLe:
    case Op::kGt:
    case Op::kGe:
      Compare(e.op, args[0], args[1], out);
      return;
    case Op::kAnd:
    case Op::kOr:
      Logic(e.op, args[0], args[1], out);
      return;
    case Op::kNot: {
      AllocBool(out, n);
      for (size_t r = 0; r < n; ++r) out->own_i[r] = !args[0].i[r];
      if (args[0].valid != nullptr) {
        out->own_valid.assign(args[0].valid, args[0].valid + n);
        out->valid = out->own_valid.data();
      }
      return;
    }
    case Op::kBetween: {
      Vec lo, hi;
      Compare(Op::kGe, args[0], args[1], &lo);
      Compare(Op::kLe, args[0], args[2], &hi);
      Logic(Op::kAnd, lo, hi, out);
      if (e.negated) {
        for (size_t r = 0; r < n; ++r) out->own_i[r] = !out->own_i[r];
      }
      return;
    }
    case Op::kIn: {
      // x IN (a, b): x = a OR x = b, with SQL's NULL rules.
      Vec acc, eq, next;
      Compare(Op::kEq, args[0], args[1], &acc);
      for (size_t k = 2; k < args.size(); ++k) {
        Compare(Op::kEq, args[0], args[k], &eq);
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
      return;
    }
    case Op::kIsNull: {
      AllocBool(out, n);
      for (size_t r = 0; r < n; ++r) out->own_i[r] = args[0].IsValid(r) == e.negated;
      return;
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
      return;
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
      return;
    }
    case Op::kRound: {
      out->type = Type::kDouble;
      out->n = n;
      out->own_d.resize(n);
      for (size_t r = 0; r < n; ++r) {
        double scale = args.size() > 1 ? std::pow(10.0, static_cast<double>(args[1].i[r])) : 1.0;
        out->own_d[r] = std::round(args[0].AsDouble(r) * scale) / scale;
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
      return;
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
      return;
    }
  }
}

Value EvaluateConstant(const BoundExpr& e) {
  NoRows none;
  Vec v;
  Evaluate(e, none, &v);
  return v.Get(0);
}

}  // namespace mare::query
