// Vectorized evaluation of bound expressions over a chunk of rows: a block's rows (input
// scope) or the groups of an aggregation (slot scope). One call per expression node per chunk;
// the loops inside run over plain arrays.
//
//   Vec where;
//   SqlError error;
//   if (!Evaluate(*plan.where, chunk, &where, &error)) ...   // booleans; where.Selected(r) per row
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "query/plan.h"

namespace mare::query {

// A column of values: points either at someone else's arrays or at its own.
struct Vec {
  Type type = Type::kNull;
  size_t n = 0;
  const int64_t* i = nullptr;           // boolean, integer, timestamp, interval
  const double* d = nullptr;            // double
  const std::string_view* s = nullptr;  // text
  const uint8_t* valid = nullptr;       // null: every row has a value

  std::vector<int64_t> own_i;
  std::vector<double> own_d;
  std::vector<std::string_view> own_s;
  std::vector<uint8_t> own_valid;
  std::string own_text;

  bool IsValid(size_t r) const { return valid == nullptr || valid[r] != 0; }
  // A boolean that is true (not false, not NULL).
  bool Selected(size_t r) const { return IsValid(r) && i[r] != 0; }
  double AsDouble(size_t r) const { return type == Type::kDouble ? d[r] : static_cast<double>(i[r]); }
  Value Get(size_t r) const;
};

class ChunkSource {
 public:
  virtual ~ChunkSource() = default;
  virtual size_t rows() const = 0;
  // Points *out at an input column (kTsColumn, kSensorColumn, or a field). False, with *error
  // set, when the store cannot decode it (a damaged block).
  [[nodiscard]] virtual bool Column(int32_t column, store::FieldType type, Vec* out, SqlError* error) = 0;
  // Points *out at a slot (aggregation keys, then aggregates).
  virtual void Slot(int32_t slot, Vec* out) = 0;
};

// Fails on integer overflow: SQL's integers are 64-bit and never wrap around (docs/sql.md,
// "Types"). *error then names the operator and its position ("integer overflow in +"). Fails
// too when the chunk cannot read a column (ChunkSource::Column's error).
[[nodiscard]] bool Evaluate(const BoundExpr& e, ChunkSource& chunk, Vec* out, SqlError* error);

// The value of an expression without columns (constant folding); fails as Evaluate does.
[[nodiscard]] bool EvaluateConstant(const BoundExpr& e, Value* out, SqlError* error);

// time_bucket: the start of the bucket of `width` holding ts, buckets aligned to
// 2000-01-03 00:00:00 UTC (a Monday; the origin TimescaleDB and DuckDB use).
int64_t TimeBucket(int64_t width, int64_t ts);

// Great-circle distance in km (haversine, mean Earth radius 6371.0088 km).
double DistanceKm(double lat1, double lon1, double lat2, double lon2);

}  // namespace mare::query
