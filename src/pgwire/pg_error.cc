#include "pgwire/pg_error.h"

#include <string_view>

namespace mare::pgwire {

const char* SqlStateOf(const query::SqlError& error, bool parse_failed, bool cancelled) {
  if (cancelled) return sqlstate::kQueryCanceled;
  std::string_view m = error.message;
  switch (error.kind) {
    case query::SqlError::Kind::kBusy: return sqlstate::kInsufficientResources;
    case query::SqlError::Kind::kStore:
      return m.find("cancelled") != std::string_view::npos ? sqlstate::kQueryCanceled : sqlstate::kInternalError;
    case query::SqlError::Kind::kLimit:
      // PostgreSQL's statement_timeout is a cancel as well.
      return m.find("query.timeout") != std::string_view::npos ? sqlstate::kQueryCanceled : sqlstate::kProgramLimitExceeded;
    case query::SqlError::Kind::kStatement: break;
  }
  // A number literal past its type (mare's lexer: "integer 9223372036854775808 is out of range"),
  // as PostgreSQL's numeric_value_out_of_range rather than a syntax error.
  if ((m.starts_with("integer ") || m.starts_with("number ")) && m.find(" is out of range") != std::string_view::npos) {
    return sqlstate::kNumericValueOutOfRange;
  }
  if (parse_failed) return sqlstate::kSyntaxError;
  if (m.starts_with("unknown table")) return sqlstate::kUndefinedTable;
  if (m.starts_with("unknown column")) return sqlstate::kUndefinedColumn;
  if (m.starts_with("unknown function")) return sqlstate::kUndefinedFunction;
  if (m.starts_with("cannot ") || m.find(" needs ") != std::string_view::npos) return sqlstate::kDatatypeMismatch;
  return sqlstate::kSyntaxOrAccess;
}

}  // namespace mare::pgwire
