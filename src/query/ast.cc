#include "query/ast.h"

#include <fmt/format.h>

namespace mare::query {

std::string SqlError::ToString() const { return fmt::format("line {}, column {}: {}", pos.line, pos.column, message); }

}  // namespace mare::query
