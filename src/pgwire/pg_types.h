// How mare's values travel as PostgreSQL types (docs/formats/pgwire.md, "Types"): the type OID
// each column is described with, its text and binary forms, and a Bind parameter turned into a
// literal of mare's SQL (a typed literal, quoted where it is text: never spliced raw).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/status.h"
#include "pgwire/session_zone.h"
#include "query/result.h"
#include "query/value.h"

namespace mare::pgwire {

// pg_type OIDs of the types mare answers with and accepts as parameters.
namespace oid {
inline constexpr int32_t kBool = 16;
inline constexpr int32_t kName = 19;
inline constexpr int32_t kInt8 = 20;
inline constexpr int32_t kInt2 = 21;
inline constexpr int32_t kInt4 = 23;
inline constexpr int32_t kText = 25;
inline constexpr int32_t kOid = 26;
inline constexpr int32_t kFloat4 = 700;
inline constexpr int32_t kFloat8 = 701;
inline constexpr int32_t kUnknown = 705;
inline constexpr int32_t kVarchar = 1043;
inline constexpr int32_t kTimestamp = 1114;
inline constexpr int32_t kTimestamptz = 1184;
inline constexpr int32_t kInterval = 1186;
inline constexpr int32_t kNumeric = 1700;
}  // namespace oid

// The OID a column of mare's type is described with (timestamps: timestamptz, as they are UTC).
int32_t OidOf(query::Type type);
// pg_type.typlen: bytes of the binary form, -1 for variable.
int16_t TypeLength(int32_t type_oid);
// pg_type.typname of the types above ("" for another OID).
std::string_view TypeName(int32_t type_oid);
// The OID of a type name as to_regtype reads it ("int8", "bigint", "timestamptz", ...; 0: none).
int32_t OidByName(std::string_view name);

// Appends row r of `column` (which has a value there), described as type_oid, in the text
// (binary = false) or binary form, without its length; timestamptz text in the session's zone
// (null: UTC).
void AppendValue(const query::ResultColumn& column, size_t r, int32_t type_oid, bool binary, std::string* out,
                 const SessionZone* zone = nullptr);

// "2024-01-21 10:06:04.5+00": timestamptz's text form (timestamp's without the "+00"), the
// wall-clock time offset_seconds east of UTC followed by that offset ("+01", "+05:30").
void AppendTimestampText(int64_t micros, bool with_zone, std::string* out, int offset_seconds = 0);
// Microseconds since 2000-01-01, the binary form's epoch.
inline constexpr int64_t kPgEpochMicros = 946'684'800'000'000;

// A Bind parameter (value, in format 0: text or 1: binary, declared as type_oid, 0 when the
// client left it open) as a literal of mare's SQL: numbers bare, text quoted with its quotes
// doubled, timestamps as TIMESTAMP '...' (one without an offset, and binary `timestamp`, being
// the session zone's wall-clock time: null, UTC), NULL; float NaN and infinities as the
// expressions of mare's SQL that make them. A value that is not of its type is an error; an
// integer past its type's range is ParameterOutOfRange.
Result<std::string> ParameterLiteral(std::string_view value, bool is_null, int16_t format, int32_t type_oid,
                                     const SessionZone* zone = nullptr);
// The message of a ParameterLiteral error for a value outside its type's range (SQLSTATE 22003).
bool IsOutOfRange(const Status& status);

}  // namespace mare::pgwire
