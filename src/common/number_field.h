// NumberField: a named number (a view of a field's name, and its value), the one currency for a
// reading's numeric fields between the parser, the log's carried numbers and the processors.
#pragma once

#include <string_view>

namespace mare {

struct NumberField {
  std::string_view name;
  double value;
};

}  // namespace mare
