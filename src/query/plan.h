// Plans: a statement bound to the store's columns and types (planner.h makes them, executor.h
// runs them). Expressions come in two scopes: over the rows of a block (input columns), and
// over the groups an aggregation made (slots: its keys, then its aggregates).
#pragma once

#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "query/ast.h"
#include "query/value.h"
#include "store/block.h"

namespace mare::query {

constexpr int32_t kTsColumn = -1;
constexpr int32_t kSensorColumn = -2;

enum class Op : uint8_t {
  kAdd, kSub, kMul, kDiv, kMod, kNeg,
  kEq, kNe, kLt, kLe, kGt, kGe,
  kAnd, kOr, kNot,
  kBetween, kIn, kIsNull,
  // functions
  kTimeBucket, kDistanceKm, kAbs, kRound, kFloor, kCeil, kSqrt, kEpoch,
  // a stored number of UTC microseconds as a timestamp (forecasts' issued_at)
  kTimestampOfMicros,
};

// The tables a statement reads: the readings (the store's blocks and memtable), or the
// forecasts (the store's ForecastTable, whose target_hour is the ts column).
enum class Table : uint8_t { kReadings, kForecasts };

struct BoundExpr {
  enum class Kind : uint8_t { kConstant, kColumn, kSlot, kCall } kind = Kind::kConstant;
  Type type = Type::kNull;
  Position pos;
  Value constant;               // kConstant
  int32_t column = 0;           // kColumn: kTsColumn, kSensorColumn or a store field id
  store::FieldType field_type = store::FieldType::kNumber;
  int32_t slot = 0;             // kSlot
  Op op = Op::kAdd;             // kCall
  bool negated = false;         // kBetween, kIn, kIsNull
  std::vector<std::unique_ptr<BoundExpr>> args;
};

enum class AggFunc : uint8_t { kCountStar, kCount, kSum, kAvg, kMin, kMax, kFirst, kLast, kStddevSamp, kStddevPop };

struct Aggregate {
  AggFunc func = AggFunc::kCountStar;
  std::unique_ptr<BoundExpr> arg;  // input scope; null for count(*)
  Type type = Type::kNull;         // of the result
  std::string text;                // source text, to share equal aggregates
};

struct OutputColumn {
  std::string name;
  Type type = Type::kNull;
  std::unique_ptr<BoundExpr> expr;  // input scope (plain queries) or slot scope (aggregations)
  bool hidden = false;              // only there for ORDER BY
};

struct SortKey {
  int column = 0;  // index into the output columns
  bool descending = false;
};

struct Plan {
  Table table = Table::kReadings;
  bool aggregate = false;  // GROUP BY or aggregate functions
  bool latest = false;     // LATEST ON ts PARTITION BY sensor_id
  std::unique_ptr<BoundExpr> where;              // input scope; null: every row
  std::vector<std::unique_ptr<BoundExpr>> keys;  // GROUP BY, input scope
  std::vector<Aggregate> aggregates;
  std::unique_ptr<BoundExpr> having;             // slot scope
  std::vector<OutputColumn> columns;
  std::vector<SortKey> order;
  int64_t limit = std::numeric_limits<int64_t>::max();
  int64_t offset = 0;
  std::vector<int32_t> input_columns;  // every input column the plan reads
  // From WHERE's top-level AND: which sensors and times can match at all.
  std::vector<uint32_t> sensors;  // only these sensors can match when sensors_set
  bool sensors_set = false;
  int64_t min_ts = std::numeric_limits<int64_t>::min();
  int64_t max_ts = std::numeric_limits<int64_t>::max();
  bool empty = false;  // WHERE can never hold (e.g. contradictory bounds)
};

}  // namespace mare::query
