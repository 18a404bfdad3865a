// Splitting text at a separator into views of it: every piece, empty ones included, so that
// "a,,b" is three pieces and "" is one (an MQTT topic's levels, a SCRAM message's attributes).
#pragma once

#include <string_view>
#include <vector>

namespace mare {

inline std::vector<std::string_view> Split(std::string_view text, char separator) {
  std::vector<std::string_view> out;
  for (size_t at = 0;;) {
    size_t next = text.find(separator, at);
    out.push_back(text.substr(at, next == std::string_view::npos ? std::string_view::npos : next - at));
    if (next == std::string_view::npos) return out;
    at = next + 1;
  }
}

}  // namespace mare
