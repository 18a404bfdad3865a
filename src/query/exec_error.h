// ExecError: how the executor's parts report a failure while a statement runs (the store, a
// limit, an error of the statement such as an integer overflow); RunQuery turns it into a SqlError.
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

namespace mare::query::exec {

// The store's types every part of the executor names unqualified (each includes this header).
using store::BlockMeta;
using store::ColumnMeta;
using store::ColumnValues;
using store::FieldType;
using store::RowBuffer;
using store::Segment;

// Thrown inside the executor, caught by RunQuery: a failure of the store (no position), a limit
// reached, or an error of the statement found while running it (an integer overflow).
struct ExecError {
  std::string message;
  Position pos{0, 0};
  SqlError::Kind kind = SqlError::Kind::kStore;
};

// Evaluate, failing with the statement's error.
inline void Eval(const BoundExpr& e, ChunkSource& chunk, Vec* out) {
  SqlError error;
  if (!Evaluate(e, chunk, out, &error)) throw ExecError{std::move(error.message), error.pos, error.kind};
}

}  // namespace mare::query::exec
