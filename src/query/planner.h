// The planner: binds a parsed statement to the store's columns, checks types, folds constants
// and works out what WHERE says about sensors and times, so that the executor reads only the
// blocks that can match. Every error says what is wrong and where.
//
//   Plan plan;
//   SqlError error;
//   if (!BuildPlan(statement, snapshot->fields, NowMicros(), &plan, &error)) ...
#pragma once

#include <cstdint>
#include <vector>

#include "query/ast.h"
#include "query/plan.h"
#include "store/schema.h"

namespace mare::query {

[[nodiscard]] bool BuildPlan(const SelectStatement& statement, const std::vector<store::Field>& fields, int64_t now_us, Plan* plan,
               SqlError* error);

// The SQL name of a store field: "lat" and "lon" for the location, else the field's name.
std::string ColumnName(const store::Field& field);

}  // namespace mare::query
