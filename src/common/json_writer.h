// Writing JSON text (never parsing it: that is simdjson's job). Enough for API answers and
// tool output: escaped strings, numbers that round-trip.
#pragma once

#include <string>
#include <string_view>

namespace mare {

// Appends s as a JSON string literal, quotes included, escaping per RFC 8259.
void AppendJsonString(std::string* out, std::string_view s);

// Appends a finite double in shortest round-trip form, or null when not finite.
void AppendJsonNumber(std::string* out, double v);

}  // namespace mare
