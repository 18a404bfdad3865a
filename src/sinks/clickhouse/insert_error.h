// InsertError: what a ClickHouse error answer says, and whether the rows sent are to blame.
// ClickHouse answers a failed statement with an HTTP error status and a body
// "Code: 395, e.displayText() = DB::Exception: ..." (18.x) or "Code: 395. DB::Exception: ..."
// (later). Only the code tells a refused row (a value a column or a MATERIALIZED check refuses:
// the batch is split to find it, the row is dead-lettered) from a passing trouble (too many
// parts, memory, a table being altered, a restart: the same batch is sent again later).
#pragma once

#include <string>
#include <string_view>

namespace mare::sinks {

inline constexpr int kUnknownTable = 60;

struct InsertError {
  int code = -1;              // ClickHouse's error code; -1 when the body has none
  bool rows_refused = false;  // the data is at fault: sending it again cannot succeed
  std::string message;        // "HTTP 500: Code: 395, ...", one line, at most 500 bytes
};

InsertError ReadInsertError(long http_status, std::string_view body);

}  // namespace mare::sinks
