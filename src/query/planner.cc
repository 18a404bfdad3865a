#include "query/planner.h"

#include <algorithm>
#include <map>
#include <optional>

#include <fmt/format.h>

#include "query/eval.h"
#include "query/literal.h"

namespace mare::query {
namespace {

using store::Field;
using store::FieldType;

size_t EditDistance(std::string_view a, std::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t prev = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t cur = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, prev + (a[i - 1] != b[j - 1])});
      prev = cur;
    }
  }
  return row[b.size()];
}

bool IsAggregateName(const std::string& name) {
  static const char* kNames[] = {"count", "sum", "avg", "mean", "min", "max", "first", "last", "stddev", "stddev_samp", "stddev_pop"};
  return std::find_if(std::begin(kNames), std::end(kNames), [&](const char* n) { return name == n; }) != std::end(kNames);
}

bool ContainsAggregate(const Expr& e) {
  if (e.kind == ExprKind::kFunction && IsAggregateName(e.name)) return true;
  for (const auto& a : e.args) {
    if (ContainsAggregate(*a)) return true;
  }
  return false;
}

std::unique_ptr<BoundExpr> MakeConstant(Value v, Position pos) {
  auto b = std::make_unique<BoundExpr>();
  b->kind = BoundExpr::Kind::kConstant;
  b->type = v.type;
  b->constant = std::move(v);
  b->pos = pos;
  return b;
}

bool IsConstant(const BoundExpr& e) { return e.kind == BoundExpr::Kind::kConstant; }

// Binds a statement's expressions to the table's columns, checking their types.
//
// Errors are values, as everywhere in query/: a function that binds returns nullptr (or false)
// once Fail has set *error. Only the first error is kept, and Bind does nothing once there is
// one: the statement's error is the first one met in binding order, the one binding stops at.
class Binder {
 public:
  Binder(const std::vector<Field>& fields, Table table, int64_t now_us, SqlError* error)
      : fields_(fields), table_(table), now_us_(now_us), error_(error) {}

  Plan* plan = nullptr;
  std::map<std::string, const Expr*> aliases;  // output alias -> its SELECT item, for HAVING and ORDER BY

  // The statement's error at pos (the first one only); nullptr for `return Fail(...)`.
  std::nullptr_t Fail(Position pos, std::string message) { return Fail(SqlError{std::move(message), pos}); }
  std::nullptr_t Fail(SqlError error) {
    if (!failed_) *error_ = std::move(error);
    failed_ = true;
    return nullptr;
  }

  // A call; folded into a constant when its arguments are constants (now() - INTERVAL '1 hour'
  // becomes one timestamp). nullptr when an argument is (its binding failed) or folding fails
  // (an integer overflow on constants is the statement's error).
  std::unique_ptr<BoundExpr> MakeCall(Op op, Type type, Position pos, std::vector<std::unique_ptr<BoundExpr>> args) {
    for (const auto& a : args) {
      if (a == nullptr) return nullptr;
    }
    auto b = std::make_unique<BoundExpr>();
    b->kind = BoundExpr::Kind::kCall;
    b->op = op;
    b->type = type;
    b->pos = pos;
    b->args = std::move(args);
    if (std::all_of(b->args.begin(), b->args.end(), [](const auto& a) { return IsConstant(*a); })) return Fold(*b, pos);
    return b;
  }

  // The value of a call on constants, as a constant at pos.
  std::unique_ptr<BoundExpr> Fold(const BoundExpr& e, Position pos) {
    Value v;
    SqlError error;
    if (!EvaluateConstant(e, &v, &error)) return Fail(std::move(error));
    return MakeConstant(std::move(v), pos);
  }

  // Input scope: columns of the table.
  std::unique_ptr<BoundExpr> BindInput(const Expr& e) { return Bind(e, nullptr); }

  // Slot scope (after aggregation): group keys by their text, aggregates into slots.
  std::unique_ptr<BoundExpr> BindGrouped(const Expr& e, const std::vector<std::string>& key_texts) {
    return Bind(e, &key_texts);
  }

  std::unique_ptr<BoundExpr> Column(const std::string& name, Position pos) {
    if (table_ == Table::kForecasts) return ForecastColumn(name, pos);
    auto b = std::make_unique<BoundExpr>();
    b->kind = BoundExpr::Kind::kColumn;
    b->pos = pos;
    if (name == "ts") {
      b->column = kTsColumn;
      b->type = Type::kTimestamp;
    } else if (name == "sensor_id") {
      b->column = kSensorColumn;
      b->type = Type::kInteger;
    } else {
      std::string field = name == "lat" ? std::string(store::kLatField) : name == "lon" ? std::string(store::kLonField) : name;
      std::optional<size_t> found;
      for (size_t k = 0; k < fields_.size(); ++k) {
        if (fields_[k].name != field) continue;
        if (!found || fields_[k].type == FieldType::kNumber) found = k;  // a name with both types: the numbers
      }
      if (!found) return UnknownColumn(name, pos);
      b->column = static_cast<int32_t>(*found);
      b->field_type = fields_[*found].type;
      b->type = b->field_type == FieldType::kNumber ? Type::kDouble : Type::kText;
    }
    Reads(b->column);
    return b;
  }

  // The forecasts' columns: sensor_id and target_hour are the rows' sensor and time (so WHERE
  // on them narrows what is read, as on readings' sensor_id and ts); issued_at and day_ahead are
  // kept as numbers and read as a timestamp and a boolean.
  std::unique_ptr<BoundExpr> ForecastColumn(const std::string& name, Position pos) {
    auto b = std::make_unique<BoundExpr>();
    b->kind = BoundExpr::Kind::kColumn;
    b->pos = pos;
    if (name == "sensor_id") {
      b->column = kSensorColumn;
      b->type = Type::kInteger;
    } else if (name == "target_hour") {
      b->column = kTsColumn;
      b->type = Type::kTimestamp;
    } else {
      auto it = std::find_if(fields_.begin(), fields_.end(), [&](const Field& f) { return f.name == name; });
      if (it == fields_.end()) return UnknownColumn(name, pos);
      b->column = static_cast<int32_t>(it - fields_.begin());
      b->field_type = it->type;
      b->type = b->field_type == FieldType::kNumber ? Type::kDouble : Type::kText;
    }
    Reads(b->column);
    if (name == "issued_at") return MakeCall(Op::kTimestampOfMicros, Type::kTimestamp, pos, Args(std::move(b)));
    if (name == "day_ahead") return MakeCall(Op::kNe, Type::kBoolean, pos, Args(std::move(b), MakeConstant(Value::Double(0), pos)));
    return b;
  }

  std::nullptr_t UnknownColumn(const std::string& name, Position pos) {
    std::string hint;
    size_t best = 3;
    for (const auto& candidate : AllColumnNames()) {
      size_t d = EditDistance(name, candidate);
      if (d < best) {
        best = d;
        hint = fmt::format("; did you mean \"{}\"?", candidate);
      }
    }
    return Fail(pos, fmt::format("unknown column \"{}\"{}", name, hint.empty() ? "; the columns are " + ColumnList() : hint));
  }

  void Reads(int32_t column) {
    if (std::find(plan->input_columns.begin(), plan->input_columns.end(), column) == plan->input_columns.end()) {
      plan->input_columns.push_back(column);
    }
  }

  std::vector<std::string> AllColumnNames() const {
    if (table_ == Table::kForecasts) {
      return {"sensor_id", "field", "issued_at", "target_hour", "value", "lower", "upper", "model", "day_ahead"};
    }
    std::vector<std::string> names = {"ts", "sensor_id", "lat", "lon"};
    for (const auto& f : fields_) {
      std::string n = ColumnName(f);
      if (std::find(names.begin(), names.end(), n) == names.end()) names.push_back(n);
    }
    return names;
  }

  std::string ColumnList() const {
    std::string out;
    for (const auto& n : AllColumnNames()) out += (out.empty() ? "" : ", ") + n;
    return out;
  }

 private:
  std::unique_ptr<BoundExpr> Bind(const Expr& e, const std::vector<std::string>* keys) {
    if (failed_) return nullptr;
    if (keys != nullptr) {
      for (size_t k = 0; k < keys->size(); ++k) {
        if ((*keys)[k] == e.source && e.kind != ExprKind::kLiteral) {
          auto b = std::make_unique<BoundExpr>();
          b->kind = BoundExpr::Kind::kSlot;
          b->slot = static_cast<int32_t>(k);
          b->type = plan->keys[k]->type;
          b->pos = e.pos;
          return b;
        }
      }
    }
    switch (e.kind) {
      case ExprKind::kLiteral:
        return Literal(e);
      case ExprKind::kColumn:
        if (keys != nullptr) {
          // An output alias after aggregation (HAVING n > 10, ORDER BY hour) means its item.
          auto alias = aliases.find(e.name);
          if (alias != aliases.end() && !(alias->second->kind == ExprKind::kColumn && alias->second->name == e.name)) {
            return Bind(*alias->second, keys);
          }
          return Fail(e.pos, fmt::format("column \"{}\" must appear in GROUP BY or be inside an aggregate such as max({})", e.name, e.name));
        }
        return Column(e.name, e.pos);
      case ExprKind::kStar:
        return Fail(e.pos, "* is only allowed as SELECT * or in count(*)");
      case ExprKind::kUnary: {
        auto a = Bind(*e.args[0], keys);
        if (a == nullptr) return nullptr;
        if (e.op == "NOT") return MakeCall(Op::kNot, Type::kBoolean, e.pos, Args(Boolean(std::move(a), "NOT")));
        if (!IsNumeric(a->type) && a->type != Type::kInterval && a->type != Type::kNull) {
          return Fail(e.pos, fmt::format("cannot negate a {}", TypeName(a->type)));
        }
        Type t = a->type;
        return MakeCall(Op::kNeg, t, e.pos, Args(std::move(a)));
      }
      case ExprKind::kBinary:
        return Binary(e, Bind(*e.args[0], keys), Bind(*e.args[1], keys));
      case ExprKind::kBetween: {
        auto x = Bind(*e.args[0], keys);
        auto lo = Bind(*e.args[1], keys);
        auto hi = Bind(*e.args[2], keys);
        if (x == nullptr || lo == nullptr || hi == nullptr) return nullptr;
        if (!Comparable(x.get(), lo.get(), e.args[1]->pos, "BETWEEN") || !Comparable(x.get(), hi.get(), e.args[2]->pos, "BETWEEN")) {
          return nullptr;
        }
        auto b = MakeCall(Op::kBetween, Type::kBoolean, e.pos, Args(std::move(x), std::move(lo), std::move(hi)));
        if (b == nullptr) return nullptr;
        if (b->kind == BoundExpr::Kind::kCall) b->negated = e.negated;
        else if (e.negated && !b->constant.null) b->constant.i = !b->constant.i;
        return b;
      }
      case ExprKind::kIn: {
        std::vector<std::unique_ptr<BoundExpr>> args;
        args.push_back(Bind(*e.args[0], keys));
        if (args[0] == nullptr) return nullptr;
        for (size_t k = 1; k < e.args.size(); ++k) {
          auto item = Bind(*e.args[k], keys);
          if (item == nullptr || !Comparable(args[0].get(), item.get(), e.args[k]->pos, "IN")) return nullptr;
          args.push_back(std::move(item));
        }
        auto b = MakeCall(Op::kIn, Type::kBoolean, e.pos, std::move(args));
        if (b == nullptr) return nullptr;
        if (b->kind == BoundExpr::Kind::kCall) b->negated = e.negated;
        else if (e.negated && !b->constant.null) b->constant.i = !b->constant.i;
        return b;
      }
      case ExprKind::kIsNull: {
        auto b = std::make_unique<BoundExpr>();
        b->kind = BoundExpr::Kind::kCall;
        b->op = Op::kIsNull;
        b->type = Type::kBoolean;
        b->pos = e.pos;
        b->negated = e.negated;
        b->args.push_back(Bind(*e.args[0], keys));
        if (b->args[0] == nullptr) return nullptr;
        if (IsConstant(*b->args[0])) return Fold(*b, e.pos);
        return b;
      }
      case ExprKind::kFunction:
        return Function(e, keys);
    }
    return Fail(e.pos, "unsupported expression");
  }

  template <typename... T>
  static std::vector<std::unique_ptr<BoundExpr>> Args(T&&... a) {
    std::vector<std::unique_ptr<BoundExpr>> v;
    (v.push_back(std::move(a)), ...);
    return v;
  }

  std::unique_ptr<BoundExpr> Literal(const Expr& e) {
    switch (e.literal_type) {
      case LiteralType::kNull: return MakeConstant(Value::Null(Type::kNull), e.pos);
      case LiteralType::kBoolean: return MakeConstant(Value::Int(Type::kBoolean, e.integer), e.pos);
      case LiteralType::kInteger: return MakeConstant(Value::Int(Type::kInteger, e.integer), e.pos);
      case LiteralType::kDouble: return MakeConstant(Value::Double(e.real), e.pos);
      case LiteralType::kString: return MakeConstant(Value::Text(e.text), e.pos);
      case LiteralType::kInterval: return MakeConstant(Value::Int(Type::kInterval, e.integer), e.pos);
      case LiteralType::kTimestamp: return MakeConstant(Value::Int(Type::kTimestamp, e.integer), e.pos);
    }
    return Fail(e.pos, "unsupported literal");
  }

  std::unique_ptr<BoundExpr> Boolean(std::unique_ptr<BoundExpr> a, const char* what) {
    if (a == nullptr) return nullptr;
    if (a->type != Type::kBoolean && a->type != Type::kNull) {
      return Fail(a->pos, fmt::format("{} needs a condition (a boolean), not a {}", what, TypeName(a->type)));
    }
    if (a->type == Type::kNull) a->type = Type::kBoolean, a->constant.type = Type::kBoolean;
    return a;
  }

  // Makes a and b comparable: a text constant next to a timestamp is read as a timestamp,
  // next to an interval as an interval; an untyped NULL takes the other side's type.
  [[nodiscard]] bool Comparable(BoundExpr* a, BoundExpr* b, Position pos, const char* what) {
    if (!Coerce(a, b) || !Coerce(b, a)) return false;
    Type x = a->type, y = b->type;
    if (x == Type::kNull || y == Type::kNull || x == y || (IsNumeric(x) && IsNumeric(y))) return true;
    Fail(pos, fmt::format("cannot compare {} with {} in {}", TypeName(x), TypeName(y), what));
    return false;
  }

  [[nodiscard]] bool Coerce(BoundExpr* target, const BoundExpr* other) {
    if (!IsConstant(*target)) return true;
    if (target->type == Type::kNull) {
      target->type = other->type;
      target->constant.type = other->type;
      return true;
    }
    if (target->type != Type::kText || target->constant.null) return true;
    int64_t us;
    std::string why;
    if (other->type == Type::kTimestamp) {
      if (!ParseTimestampLiteral(target->constant.s, &us, &why)) {
        Fail(target->pos, why);
        return false;
      }
      target->type = Type::kTimestamp;
      target->constant = Value::Int(Type::kTimestamp, us);
    } else if (other->type == Type::kInterval) {
      if (!ParseIntervalText(target->constant.s, &us, &why)) {
        Fail(target->pos, why);
        return false;
      }
      target->type = Type::kInterval;
      target->constant = Value::Int(Type::kInterval, us);
    }
    return true;
  }

  std::unique_ptr<BoundExpr> Binary(const Expr& e, std::unique_ptr<BoundExpr> a, std::unique_ptr<BoundExpr> b) {
    static const std::map<std::string, Op> kOps = {{"+", Op::kAdd}, {"-", Op::kSub}, {"*", Op::kMul}, {"/", Op::kDiv},
                                                   {"%", Op::kMod}, {"=", Op::kEq},  {"<>", Op::kNe}, {"<", Op::kLt},
                                                   {"<=", Op::kLe}, {">", Op::kGt},  {">=", Op::kGe}, {"AND", Op::kAnd},
                                                   {"OR", Op::kOr}};
    if (a == nullptr || b == nullptr) return nullptr;
    auto it = kOps.find(e.op);
    if (it == kOps.end()) return Fail(e.pos, fmt::format("unknown operator {}", e.op));
    Op op = it->second;
    if (op == Op::kAnd || op == Op::kOr) {
      return MakeCall(op, Type::kBoolean, e.pos, Args(Boolean(std::move(a), e.op.c_str()), Boolean(std::move(b), e.op.c_str())));
    }
    if (op >= Op::kEq && op <= Op::kGe) {
      if (!Comparable(a.get(), b.get(), e.pos, ("'" + e.op + "'").c_str())) return nullptr;
      return MakeCall(op, Type::kBoolean, e.pos, Args(std::move(a), std::move(b)));
    }
    // Arithmetic.
    if (!Coerce(a.get(), b.get()) || !Coerce(b.get(), a.get())) return nullptr;
    Type x = a->type, y = b->type;
    Type result = Type::kNull;
    if (x == Type::kNull || y == Type::kNull) {
      result = x == Type::kNull ? y : x;
      if (result == Type::kNull) result = Type::kInteger;
    } else if (IsNumeric(x) && IsNumeric(y)) {
      result = (op == Op::kDiv || x == Type::kDouble || y == Type::kDouble) ? Type::kDouble : Type::kInteger;
    } else if (x == Type::kTimestamp && y == Type::kInterval && (op == Op::kAdd || op == Op::kSub)) {
      result = Type::kTimestamp;
    } else if (x == Type::kInterval && y == Type::kTimestamp && op == Op::kAdd) {
      result = Type::kTimestamp;
    } else if (x == Type::kTimestamp && y == Type::kTimestamp && op == Op::kSub) {
      result = Type::kInterval;
    } else if (x == Type::kInterval && y == Type::kInterval && (op == Op::kAdd || op == Op::kSub)) {
      result = Type::kInterval;
    } else if (((x == Type::kInterval && IsNumeric(y)) || (IsNumeric(x) && y == Type::kInterval)) && op == Op::kMul) {
      result = Type::kInterval;
    } else if (x == Type::kInterval && IsNumeric(y) && op == Op::kDiv) {
      result = Type::kInterval;
    } else {
      return Fail(e.pos, fmt::format("cannot apply {} to {} and {}", e.op, TypeName(x), TypeName(y)));
    }
    return MakeCall(op, result, e.pos, Args(std::move(a), std::move(b)));
  }

  std::unique_ptr<BoundExpr> Function(const Expr& e, const std::vector<std::string>* keys) {
    const std::string& f = e.name;
    if (IsAggregateName(f)) return AggregateCall(e, keys);
    auto arity = [&](size_t lo, size_t hi) {
      if (e.args.size() >= lo && e.args.size() <= hi) return true;
      Fail(e.pos, lo == hi ? fmt::format("{}() takes {} argument{}, not {}", f, lo, lo == 1 ? "" : "s", e.args.size())
                           : fmt::format("{}() takes {} to {} arguments, not {}", f, lo, hi, e.args.size()));
      return false;
    };
    std::vector<std::unique_ptr<BoundExpr>> args;
    for (const auto& a : e.args) {
      if (a->kind == ExprKind::kStar) return Fail(a->pos, fmt::format("* is not an argument of {}()", f));
    }
    auto numeric = [&](size_t k) -> std::unique_ptr<BoundExpr> {
      auto a = Bind(*e.args[k], keys);
      if (a == nullptr) return nullptr;
      if (!IsNumeric(a->type) && a->type != Type::kNull) {
        return Fail(e.args[k]->pos, fmt::format("{}() needs a number as argument {}, not a {}", f, k + 1, TypeName(a->type)));
      }
      return a;
    };
    if (f == "now") {
      if (!arity(0, 0)) return nullptr;
      return MakeConstant(Value::Int(Type::kTimestamp, now_us_), e.pos);
    }
    if (f == "time_bucket") {
      if (!arity(2, 2)) return nullptr;
      auto width = Bind(*e.args[0], keys);
      auto ts = Bind(*e.args[1], keys);
      if (width == nullptr || ts == nullptr) return nullptr;
      BoundExpr probe;
      probe.type = Type::kInterval;
      if (!Coerce(width.get(), &probe)) return nullptr;
      if (!IsConstant(*width) || width->type != Type::kInterval || width->constant.null) {
        return Fail(e.args[0]->pos, "time_bucket() needs a constant interval first, such as '1h' or INTERVAL '15 minutes'");
      }
      if (width->constant.i <= 0) return Fail(e.args[0]->pos, "time_bucket() needs a positive interval");
      probe.type = Type::kTimestamp;
      if (!Coerce(ts.get(), &probe)) return nullptr;
      if (ts->type != Type::kTimestamp) return Fail(e.args[1]->pos, fmt::format("time_bucket() needs a timestamp second, not a {}", TypeName(ts->type)));
      return MakeCall(Op::kTimeBucket, Type::kTimestamp, e.pos, Args(std::move(width), std::move(ts)));
    }
    if (f == "distance_km") {
      if (!arity(4, 4)) return nullptr;
      for (size_t k = 0; k < 4; ++k) {
        args.push_back(numeric(k));
        if (args.back() == nullptr) return nullptr;
      }
      return MakeCall(Op::kDistanceKm, Type::kDouble, e.pos, std::move(args));
    }
    if (f == "within_box") {
      // within_box(lat, lon, south, west, north, east): lat BETWEEN south AND north AND lon
      // BETWEEN west AND east, written out so that block statistics can decide it.
      if (!arity(6, 6)) return nullptr;
      for (size_t k = 0; k < 6; ++k) {
        args.push_back(numeric(k));
        if (args.back() == nullptr) return nullptr;
      }
      auto lat = MakeCall(Op::kBetween, Type::kBoolean, e.pos, Args(std::move(args[0]), std::move(args[2]), std::move(args[4])));
      auto lon = MakeCall(Op::kBetween, Type::kBoolean, e.pos, Args(std::move(args[1]), std::move(args[3]), std::move(args[5])));
      return MakeCall(Op::kAnd, Type::kBoolean, e.pos, Args(std::move(lat), std::move(lon)));
    }
    if (f == "abs" || f == "floor" || f == "ceil" || f == "sqrt") {
      if (!arity(1, 1)) return nullptr;
      auto a = numeric(0);
      if (a == nullptr) return nullptr;
      Op op = f == "abs" ? Op::kAbs : f == "floor" ? Op::kFloor : f == "ceil" ? Op::kCeil : Op::kSqrt;
      Type t = (op == Op::kAbs && a->type == Type::kInteger) ? Type::kInteger : Type::kDouble;
      return MakeCall(op, t, e.pos, Args(std::move(a)));
    }
    if (f == "round") {
      if (!arity(1, 2)) return nullptr;
      args.push_back(numeric(0));
      if (args.back() == nullptr) return nullptr;
      if (e.args.size() == 2) {
        auto digits = Bind(*e.args[1], keys);
        if (digits == nullptr) return nullptr;
        if (!IsConstant(*digits) || digits->type != Type::kInteger) return Fail(e.args[1]->pos, "round() takes a constant integer number of digits");
        args.push_back(std::move(digits));
      }
      return MakeCall(Op::kRound, Type::kDouble, e.pos, std::move(args));
    }
    if (f == "epoch") {
      if (!arity(1, 1)) return nullptr;
      auto a = Bind(*e.args[0], keys);
      if (a == nullptr) return nullptr;
      if (a->type != Type::kTimestamp) return Fail(e.args[0]->pos, fmt::format("epoch() needs a timestamp, not a {}", TypeName(a->type)));
      return MakeCall(Op::kEpoch, Type::kDouble, e.pos, Args(std::move(a)));
    }
    return Fail(e.pos, fmt::format("unknown function {}(); the functions are time_bucket, now, distance_km, within_box, abs, round, "
                            "floor, ceil, sqrt, epoch, and the aggregates count, sum, avg, min, max, first, last, stddev, "
                            "stddev_pop",
                            f));
  }

  std::unique_ptr<BoundExpr> AggregateCall(const Expr& e, const std::vector<std::string>* keys) {
    if (keys == nullptr) {
      return Fail(e.pos, in_where_ ? fmt::format("aggregate {}() is not allowed in WHERE; use HAVING", e.name)
                            : fmt::format("aggregate {}() is not allowed here", e.name));
    }
    const std::string& f = e.name;
    Aggregate agg;
    agg.text = e.source;
    if (e.args.size() != 1) return Fail(e.pos, fmt::format("{}() takes one argument, not {}", f, e.args.size()));
    if (e.args[0]->kind == ExprKind::kStar) {
      if (f != "count") return Fail(e.args[0]->pos, fmt::format("{}(*) is not an aggregate; only count(*)", f));
      agg.func = AggFunc::kCountStar;
      agg.type = Type::kInteger;
    } else {
      if (ContainsAggregate(*e.args[0])) return Fail(e.args[0]->pos, "aggregates cannot be nested");
      in_aggregate_ = true;
      agg.arg = BindInput(*e.args[0]);
      in_aggregate_ = false;
      if (agg.arg == nullptr) return nullptr;
      Type t = agg.arg->type;
      static const std::map<std::string, AggFunc> kFuncs = {
          {"count", AggFunc::kCount},        {"sum", AggFunc::kSum},       {"avg", AggFunc::kAvg},
          {"mean", AggFunc::kAvg},           {"min", AggFunc::kMin},       {"max", AggFunc::kMax},
          {"first", AggFunc::kFirst},        {"last", AggFunc::kLast},     {"stddev", AggFunc::kStddevSamp},
          {"stddev_samp", AggFunc::kStddevSamp}, {"stddev_pop", AggFunc::kStddevPop}};
      agg.func = kFuncs.at(f);
      switch (agg.func) {
        case AggFunc::kCount:
          agg.type = Type::kInteger;
          break;
        case AggFunc::kMin:
        case AggFunc::kMax:
          if (t == Type::kText || t == Type::kBoolean) return Fail(e.args[0]->pos, fmt::format("{}() needs a number or a timestamp, not a {}", f, TypeName(t)));
          agg.type = t == Type::kNull ? Type::kDouble : t;
          break;
        case AggFunc::kFirst:
        case AggFunc::kLast:
          agg.type = t == Type::kNull ? Type::kDouble : t;
          break;
        default:
          if (!IsNumeric(t) && t != Type::kNull) return Fail(e.args[0]->pos, fmt::format("{}() needs a number, not a {}", f, TypeName(t)));
          agg.type = (agg.func == AggFunc::kSum && t == Type::kInteger) ? Type::kInteger : Type::kDouble;
      }
    }
    int32_t index = -1;
    for (size_t k = 0; k < plan->aggregates.size(); ++k) {
      if (plan->aggregates[k].text == agg.text) index = static_cast<int32_t>(k);
    }
    if (index < 0) {
      index = static_cast<int32_t>(plan->aggregates.size());
      plan->aggregates.push_back(std::move(agg));
    }
    auto b = std::make_unique<BoundExpr>();
    b->kind = BoundExpr::Kind::kSlot;
    b->slot = static_cast<int32_t>(plan->keys.size()) + index;
    b->type = plan->aggregates[static_cast<size_t>(index)].type;
    b->pos = e.pos;
    return b;
  }

 public:
  bool in_where_ = false;

 private:
  bool in_aggregate_ = false;
  const std::vector<Field>& fields_;
  Table table_;
  int64_t now_us_;
  SqlError* error_;
  bool failed_ = false;  // *error_ is set
};

// What the top-level ANDs of WHERE say about ts and sensor_id.
void ExtractBounds(const BoundExpr& e, Plan* plan) {
  if (e.kind == BoundExpr::Kind::kConstant) {
    if (e.constant.null || e.constant.i == 0) plan->empty = true;
    return;
  }
  if (e.kind != BoundExpr::Kind::kCall) return;
  if (e.op == Op::kAnd) {
    ExtractBounds(*e.args[0], plan);
    ExtractBounds(*e.args[1], plan);
    return;
  }
  auto column_of = [](const BoundExpr& x) { return x.kind == BoundExpr::Kind::kColumn ? x.column : 0; };
  auto narrow_ts = [&](Op op, int64_t c) {
    switch (op) {
      case Op::kEq: plan->min_ts = std::max(plan->min_ts, c); plan->max_ts = std::min(plan->max_ts, c); break;
      case Op::kGt: plan->min_ts = std::max(plan->min_ts, c == INT64_MAX ? c : c + 1); break;
      case Op::kGe: plan->min_ts = std::max(plan->min_ts, c); break;
      case Op::kLt: plan->max_ts = std::min(plan->max_ts, c == INT64_MIN ? c : c - 1); break;
      case Op::kLe: plan->max_ts = std::min(plan->max_ts, c); break;
      default: break;
    }
  };
  auto sensors = [&](std::vector<uint32_t> ids) {
    if (plan->sensors.empty() && !plan->sensors_set) {
      plan->sensors = std::move(ids);
    } else {
      std::vector<uint32_t> both;
      for (uint32_t id : ids) {
        if (std::find(plan->sensors.begin(), plan->sensors.end(), id) != plan->sensors.end()) both.push_back(id);
      }
      plan->sensors = std::move(both);
    }
    plan->sensors_set = true;
    if (plan->sensors.empty()) plan->empty = true;
  };
  if (e.op >= Op::kEq && e.op <= Op::kGe && e.op != Op::kNe && e.args.size() == 2) {
    const BoundExpr* col = e.args[0].get();
    const BoundExpr* c = e.args[1].get();
    Op op = e.op;
    if (IsConstant(*col) && !IsConstant(*c)) {
      std::swap(col, c);
      op = op == Op::kLt ? Op::kGt : op == Op::kLe ? Op::kGe : op == Op::kGt ? Op::kLt : op == Op::kGe ? Op::kLe : op;
    }
    if (!IsConstant(*c) || c->constant.null) return;
    if (column_of(*col) == kTsColumn && c->type == Type::kTimestamp) narrow_ts(op, c->constant.i);
    if (column_of(*col) == kSensorColumn && op == Op::kEq && c->type == Type::kInteger) {
      sensors(c->constant.i >= 0 && c->constant.i <= UINT32_MAX ? std::vector<uint32_t>{static_cast<uint32_t>(c->constant.i)} : std::vector<uint32_t>{});
    }
    return;
  }
  if (e.op == Op::kBetween && !e.negated && column_of(*e.args[0]) == kTsColumn && IsConstant(*e.args[1]) &&
      IsConstant(*e.args[2]) && !e.args[1]->constant.null && !e.args[2]->constant.null) {
    narrow_ts(Op::kGe, e.args[1]->constant.i);
    narrow_ts(Op::kLe, e.args[2]->constant.i);
    return;
  }
  if (e.op == Op::kIn && !e.negated && column_of(*e.args[0]) == kSensorColumn) {
    std::vector<uint32_t> ids;
    for (size_t k = 1; k < e.args.size(); ++k) {
      const BoundExpr& c = *e.args[k];
      if (!IsConstant(c) || c.type != Type::kInteger) return;
      if (!c.constant.null && c.constant.i >= 0 && c.constant.i <= UINT32_MAX) ids.push_back(static_cast<uint32_t>(c.constant.i));
    }
    sensors(std::move(ids));
  }
}

std::string OutputName(const SelectItem& item) {
  if (!item.alias.empty()) return item.alias;
  if (item.expr->kind == ExprKind::kColumn) return item.expr->name;
  return std::string(item.expr->source);
}

}  // namespace

std::string ColumnName(const Field& field) {
  if (field.name == store::kLatField) return "lat";
  if (field.name == store::kLonField) return "lon";
  return field.name;
}

bool BuildPlan(const SelectStatement& st, const std::vector<Field>& fields, int64_t now_us, Plan* plan, SqlError* error) {
  if (st.table == "forecasts") {
    plan->table = Table::kForecasts;
  } else if (st.table != "readings") {
    *error = SqlError{fmt::format("unknown table \"{}\"; the tables are readings and forecasts", st.table), st.table_pos};
    return false;
  }
  Binder binder(fields, plan->table, now_us, error);
  binder.plan = plan;
  // The statement's error at pos: false for `return fail(...)`.
  auto fail = [&](Position pos, std::string message) {
    binder.Fail(pos, std::move(message));
    return false;
  };

  bool has_aggregate = false;
  for (const auto& item : st.items) has_aggregate |= item.expr->kind != ExprKind::kStar && ContainsAggregate(*item.expr);
  if (st.having) has_aggregate |= ContainsAggregate(*st.having);
  for (const auto& o : st.order_by) has_aggregate |= ContainsAggregate(*o.expr);
  plan->aggregate = has_aggregate || !st.group_by.empty();

  if (st.where) {
    binder.in_where_ = true;
    auto where = binder.BindInput(*st.where);
    binder.in_where_ = false;
    if (where == nullptr) return false;
    if (where->type != Type::kBoolean && where->type != Type::kNull) {
      return fail(st.where->pos, fmt::format("WHERE needs a condition (a boolean), not a {}", TypeName(where->type)));
    }
    ExtractBounds(*where, plan);
    if (plan->min_ts > plan->max_ts) plan->empty = true;
    if (where->kind == BoundExpr::Kind::kConstant) {
      if (!where->constant.null && where->constant.i != 0) where.reset();  // WHERE true
    }
    plan->where = std::move(where);
  }

  if (!st.latest_on.empty()) {
    if (plan->table == Table::kForecasts) {
      return fail(st.latest_pos, "LATEST ON is for readings; the latest issue of a series is ORDER BY issued_at DESC with its WHERE");
    }
    if (plan->aggregate) return fail(st.latest_pos, "LATEST ON cannot be combined with GROUP BY or aggregates");
    if (st.latest_on != "ts") return fail(st.latest_pos, fmt::format("LATEST ON needs the time column ts, not \"{}\"", st.latest_on));
    if (st.latest_partition_by.size() != 1 || st.latest_partition_by[0]->kind != ExprKind::kColumn ||
        st.latest_partition_by[0]->name != "sensor_id") {
      return fail(st.latest_partition_by.empty() ? st.latest_pos : st.latest_partition_by[0]->pos,
                  "LATEST ON ts PARTITION BY takes sensor_id (the latest reading of each sensor)");
    }
    plan->latest = true;
  }

  // SELECT * expands to ts, sensor_id, lat, lon, then the fields in order of appearance.
  struct Item {
    const Expr* expr;
    std::string name;
    std::string alias;
    Position pos;
    int32_t star_column = 0;  // for * expansion
    bool star = false;
  };
  std::vector<Item> items;
  for (const auto& it : st.items) {
    if (it.expr->kind == ExprKind::kStar) {
      if (plan->aggregate) return fail(it.expr->pos, "SELECT * cannot be combined with GROUP BY or aggregates; name the columns");
      for (const auto& name : binder.AllColumnNames()) {
        bool present = plan->table == Table::kForecasts || name == "ts" || name == "sensor_id" ||
                       std::any_of(fields.begin(), fields.end(), [&](const Field& f) { return ColumnName(f) == name; });
        if (present) items.push_back(Item{nullptr, name, "", it.expr->pos, 0, true});
      }
    } else {
      items.push_back(Item{it.expr.get(), OutputName(it), it.alias, it.pos});
    }
  }

  // GROUP BY: aliases and positions mean the SELECT item's expression.
  std::vector<std::string> key_texts;
  for (const auto& g : st.group_by) {
    const Expr* target = g.get();
    if (g->kind == ExprKind::kLiteral && g->literal_type == LiteralType::kInteger) {
      if (g->integer < 1 || g->integer > static_cast<int64_t>(items.size())) {
        return fail(g->pos, fmt::format("GROUP BY {} is not a column of the SELECT list (1 to {})", g->integer, items.size()));
      }
      target = items[static_cast<size_t>(g->integer - 1)].expr;
    } else if (g->kind == ExprKind::kColumn) {
      for (const auto& item : items) {
        if (!item.alias.empty() && item.alias == g->name && item.expr != nullptr) target = item.expr;
      }
    }
    if (target == nullptr) return fail(g->pos, "GROUP BY needs a column or expression");
    if (ContainsAggregate(*target)) return fail(g->pos, "GROUP BY cannot contain an aggregate");
    plan->keys.push_back(binder.BindInput(*target));
    if (plan->keys.back() == nullptr) return false;
    key_texts.emplace_back(target->source);
  }

  for (const auto& item : items) {
    OutputColumn col;
    col.name = item.name;
    if (item.star) {
      col.expr = binder.Column(item.name, item.pos);
    } else if (plan->aggregate) {
      col.expr = binder.BindGrouped(*item.expr, key_texts);
    } else {
      col.expr = binder.BindInput(*item.expr);
    }
    if (col.expr == nullptr) return false;
    col.type = col.expr->type == Type::kNull ? Type::kText : col.expr->type;
    plan->columns.push_back(std::move(col));
  }

  for (const auto& item : items) {
    if (!item.alias.empty() && item.expr != nullptr) binder.aliases.emplace(item.alias, item.expr);
  }
  if (st.having) {
    if (!plan->aggregate) return fail(st.having->pos, "HAVING needs GROUP BY or aggregates; use WHERE");
    auto having = binder.BindGrouped(*st.having, key_texts);
    if (having == nullptr) return false;
    if (having->type != Type::kBoolean && having->type != Type::kNull) {
      return fail(st.having->pos, fmt::format("HAVING needs a condition (a boolean), not a {}", TypeName(having->type)));
    }
    plan->having = std::move(having);
  }

  for (const auto& o : st.order_by) {
    int column = -1;
    const Expr& e = *o.expr;
    if (e.kind == ExprKind::kLiteral && e.literal_type == LiteralType::kInteger) {
      if (e.integer < 1 || e.integer > static_cast<int64_t>(items.size())) {
        return fail(e.pos, fmt::format("ORDER BY {} is not a column of the SELECT list (1 to {})", e.integer, items.size()));
      }
      column = static_cast<int>(e.integer - 1);
    } else {
      for (size_t k = 0; k < items.size() && column < 0; ++k) {
        const Item& item = items[k];
        if (e.kind == ExprKind::kColumn && (item.alias == e.name || (item.alias.empty() && item.name == e.name))) column = static_cast<int>(k);
        else if (item.expr != nullptr && item.expr->source == e.source) column = static_cast<int>(k);
      }
    }
    if (column < 0) {
      OutputColumn hidden;
      hidden.name = e.source;
      hidden.hidden = true;
      hidden.expr = plan->aggregate ? binder.BindGrouped(e, key_texts) : binder.BindInput(e);
      if (hidden.expr == nullptr) return false;
      hidden.type = hidden.expr->type;
      column = static_cast<int>(plan->columns.size());
      plan->columns.push_back(std::move(hidden));
    }
    plan->order.push_back(SortKey{column, o.descending});
  }
  if (st.limit) plan->limit = *st.limit;
  if (st.offset) plan->offset = *st.offset;
  return true;
}

}  // namespace mare::query
