#include "sinks/clickhouse/insert_error.h"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>

namespace mare::sinks {
namespace {

// Codes that blame the rows: parse and conversion failures of a value, and checks that throw.
constexpr int kRowCodes[] = {
    6,    // CANNOT_PARSE_TEXT
    26,   // CANNOT_PARSE_QUOTED_STRING
    27,   // CANNOT_PARSE_INPUT_ASSERTION_FAILED
    32,   // ATTEMPT_TO_READ_AFTER_EOF
    33,   // CANNOT_READ_ALL_DATA
    38,   // CANNOT_PARSE_DATE
    41,   // CANNOT_PARSE_DATETIME
    53,   // TYPE_MISMATCH
    69,   // ARGUMENT_OUT_OF_BOUND
    70,   // CANNOT_CONVERT_TYPE
    72,   // CANNOT_PARSE_NUMBER
    117,  // INCORRECT_DATA
    128,  // TOO_LARGE_ARRAY_SIZE
    131,  // TOO_LARGE_STRING_SIZE
    395,  // FUNCTION_THROW_IF_VALUE_IS_NON_ZERO (a throwIf check)
    469,  // VIOLATED_CONSTRAINT (19.14 and later)
};

}  // namespace

InsertError ReadInsertError(long http_status, std::string_view body) {
  InsertError e;
  size_t at = body.find("Code: ");
  if (at != std::string_view::npos) {
    const char* digits = body.data() + at + 6;
    int code = -1;
    if (std::from_chars(digits, body.data() + body.size(), code).ec == std::errc()) e.code = code;
  }
  e.rows_refused = std::find(std::begin(kRowCodes), std::end(kRowCodes), e.code) != std::end(kRowCodes);
  std::string text(body.substr(0, 500));
  std::replace(text.begin(), text.end(), '\n', ' ');
  while (!text.empty() && text.back() == ' ') text.pop_back();
  e.message = fmt::format("HTTP {}: {}", http_status, text);
  return e;
}

}  // namespace mare::sinks
