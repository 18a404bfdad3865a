// The syntax tree of mare's SQL: one SELECT over the `readings` table (docs/sql.md).
// The parser (parser.h) builds it; the planner (planner.h) binds names and types.
//
//   SelectStatement stmt;
//   SqlError error;
//   if (!Parse("SELECT max(temperature) FROM readings", &stmt, &error)) puts(error.ToString().c_str());
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "query/limits.h"

namespace mare::query {

// Where something is in the statement text: 1-based line and column (columns count bytes).
struct Position {
  int line = 1;
  int column = 1;
};

// What is wrong and where: "line 1, column 8: unknown column \"temprature\"".
struct SqlError {
  // Whose fault, for the HTTP status: the statement's (400), a limit's (400: the statement asks
  // too much), the server's load (503: try again later), or the store's (500).
  enum class Kind { kStatement, kLimit, kBusy, kStore };
  std::string message;
  Position pos;
  Kind kind = Kind::kStatement;
  std::string ToString() const;
};

enum class ExprKind {
  kLiteral,   // literal
  kColumn,    // name: a column, lower-cased unless it was "quoted"
  kStar,      // `*`, in SELECT * and count(*)
  kUnary,     // op: "-" or "NOT"; args[0]
  kBinary,    // op: "+" "-" "*" "/" "%" "=" "<>" "<" "<=" ">" ">=" "AND" "OR"; args[0], args[1]
  kFunction,  // name: lower-cased function name; args (count(*) has one kStar argument)
  kBetween,   // args[0] BETWEEN args[1] AND args[2]; negated for NOT BETWEEN
  kIn,        // args[0] IN (args[1], ...); negated for NOT IN
  kIsNull,    // args[0] IS NULL; negated for IS NOT NULL
};

enum class LiteralType {
  kNull,
  kBoolean,    // integer: 0 or 1
  kInteger,    // integer
  kDouble,     // real
  kString,     // text ('it''s' is the text it's)
  kInterval,   // integer: microseconds, from INTERVAL '1 hour' (or INTERVAL '90 seconds', '1h30m', ...)
  kTimestamp,  // integer: UTC microseconds, from TIMESTAMP '2024-01-01 10:00:00'
};
// A minus sign before a number or interval literal is folded into it: `-5` is one kLiteral
// (integer -5), not a kUnary. kInterval and kTimestamp literals keep their quoted text in `text`.

struct Expr {
  ExprKind kind = ExprKind::kLiteral;
  Position pos;  // of the expression's first token (for a binary operator: of the operator;
                 // for a parenthesized `(x)`: of x, while `source` includes the parentheses)

  LiteralType literal_type = LiteralType::kNull;
  int64_t integer = 0;
  double real = 0;
  std::string text;

  std::string name;  // kColumn, kFunction
  std::string op;    // kUnary, kBinary: upper-case keywords, symbols as written ("!=" becomes "<>")
  bool negated = false;
  std::vector<std::unique_ptr<Expr>> args;

  // The statement text this expression came from, trimmed (for default output column names:
  // `SELECT max(temperature)` names its column "max(temperature)"). A view of the statement's
  // own copy of its text (SelectStatement::text): a copy per node would make a chain of n
  // operators cost n^2 bytes (a 1 MB statement grew the server by 23 GB).
  std::string_view source;
  // The height of this expression's tree (1 for a leaf), bounded by
  // QueryLimits::max_expression_depth so that everything recursing over the tree is safe.
  int depth = 1;
};

struct SelectItem {
  std::unique_ptr<Expr> expr;
  std::string alias;  // empty without AS (or an implicit alias: `max(t) m`)
  Position pos;
};

struct OrderItem {
  std::unique_ptr<Expr> expr;  // an output alias, a 1-based output position, or an expression
  bool descending = false;
  Position pos;
};

struct SelectStatement {
  // The statement's text, which every Expr::source points into; on the heap so that moving
  // the statement keeps those views valid.
  std::unique_ptr<const std::string> text;
  std::vector<SelectItem> items;
  std::string table;  // lower-cased
  Position table_pos;
  std::unique_ptr<Expr> where;
  // LATEST ON ts PARTITION BY sensor_id: the newest row (after WHERE) of each partition.
  std::string latest_on;  // empty when absent
  Position latest_pos;    // of the column name after LATEST ON
  std::vector<std::unique_ptr<Expr>> latest_partition_by;
  std::vector<std::unique_ptr<Expr>> group_by;  // aliases, 1-based positions or expressions
  std::unique_ptr<Expr> having;
  std::vector<OrderItem> order_by;
  std::optional<int64_t> limit;
  std::optional<int64_t> offset;
};

// Parses one SELECT statement (an optional trailing `;`). False with *error set when the text
// is not one, or exceeds `limits` (its size, the depth or number of its expressions' nodes):
// the message says what was expected and found, the position where.
[[nodiscard]] bool Parse(std::string_view sql, const QueryLimits& limits, SelectStatement* out, SqlError* error);
// With the default QueryLimits.
[[nodiscard]] bool Parse(std::string_view sql, SelectStatement* out, SqlError* error);

}  // namespace mare::query
