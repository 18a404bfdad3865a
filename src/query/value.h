// Values and their types as queries see them (docs/sql.md, "Types").
#pragma once

#include <cstdint>
#include <string>

namespace mare::query {

enum class Type : uint8_t { kNull, kBoolean, kInteger, kDouble, kTimestamp, kInterval, kText };

// "boolean", "integer", "double", "timestamp", "interval", "text" ("null" for an untyped NULL).
const char* TypeName(Type type);

inline bool IsNumeric(Type t) { return t == Type::kInteger || t == Type::kDouble; }
// Kept in Value::i (else: d for doubles, s for text).
inline bool IsIntegral(Type t) {
  return t == Type::kBoolean || t == Type::kInteger || t == Type::kTimestamp || t == Type::kInterval;
}

struct Value {
  Type type = Type::kNull;  // the column's type; null says whether this one is NULL
  bool null = true;
  int64_t i = 0;
  double d = 0;
  std::string s;

  static Value Null(Type t) {
    Value v;
    v.type = t;
    return v;
  }
  static Value Int(Type t, int64_t x) {
    Value v;
    v.type = t;
    v.null = false;
    v.i = x;
    return v;
  }
  static Value Double(double x) {
    Value v;
    v.type = Type::kDouble;
    v.null = false;
    v.d = x;
    return v;
  }
  static Value Text(std::string x) {
    Value v;
    v.type = Type::kText;
    v.null = false;
    v.s = std::move(x);
    return v;
  }
  double AsDouble() const { return type == Type::kDouble ? d : static_cast<double>(i); }
};

}  // namespace mare::query
