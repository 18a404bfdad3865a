// PgError: an error as the protocol reports it, a SQLSTATE with a message and a position;
// SqlStateOf reads the class of a mare SQL error from its kind and what it says
// (docs/formats/pgwire.md, "Errors").
#pragma once

#include <string>

#include "query/ast.h"

namespace mare::pgwire {

namespace sqlstate {
inline constexpr const char* kSyntaxError = "42601";
inline constexpr const char* kUndefinedTable = "42P01";
inline constexpr const char* kUndefinedColumn = "42703";
inline constexpr const char* kUndefinedFunction = "42883";
inline constexpr const char* kUndefinedObject = "42704";
inline constexpr const char* kDatatypeMismatch = "42804";
inline constexpr const char* kSyntaxOrAccess = "42000";
inline constexpr const char* kQueryCanceled = "57014";
inline constexpr const char* kTooManyConnections = "53300";
inline constexpr const char* kInsufficientResources = "53000";
inline constexpr const char* kProgramLimitExceeded = "54000";
inline constexpr const char* kProtocolViolation = "08P01";
inline constexpr const char* kInvalidPassword = "28P01";
inline constexpr const char* kInvalidParameterValue = "22023";
inline constexpr const char* kNumericValueOutOfRange = "22003";
inline constexpr const char* kInvalidBinaryRepresentation = "22P03";
inline constexpr const char* kInvalidTextRepresentation = "22P02";
inline constexpr const char* kInvalidCursorName = "34000";
inline constexpr const char* kInvalidStatementName = "26000";
inline constexpr const char* kFeatureNotSupported = "0A000";
inline constexpr const char* kInternalError = "XX000";
inline constexpr const char* kAdminShutdown = "57P01";
}  // namespace sqlstate

struct PgError {
  std::string sqlstate;
  std::string message;
  int position = 0;  // 1-based character in the client's text; 0: none
};

// The SQLSTATE of a statement mare refused or failed, knowing whether mare's parser refused it
// (a syntax error) and whether the client cancelled it.
const char* SqlStateOf(const query::SqlError& error, bool parse_failed, bool cancelled);

}  // namespace mare::pgwire
