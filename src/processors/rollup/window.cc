#include "processors/rollup/window.h"

#include <algorithm>

#include "common/time.h"

namespace mare::rollup {

Resolution MakeResolution(int64_t length_us) { return {length_us, FormatDuration(length_us)}; }

Result<std::vector<Resolution>> ParseResolutions(std::string_view list) {
  std::vector<Resolution> out;
  size_t at = 0;
  while (at <= list.size()) {
    size_t comma = list.find(',', at);
    if (comma == std::string_view::npos) comma = list.size();
    std::string_view item = list.substr(at, comma - at);
    while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
    while (!item.empty() && item.back() == ' ') item.remove_suffix(1);
    if (item.empty()) return Status::InvalidArgument("resolutions: empty item in \"" + std::string(list) + "\"");
    auto length = ParseDurationMicros(item);
    if (!length.ok()) return Status::InvalidArgument("resolutions: " + length.status().message());
    if (*length <= 0) return Status::InvalidArgument("resolutions: \"" + std::string(item) + "\" is not positive");
    if (std::any_of(out.begin(), out.end(), [&](const Resolution& r) { return r.length_us == *length; })) {
      return Status::InvalidArgument("resolutions: \"" + std::string(item) + "\" is listed twice");
    }
    out.push_back(MakeResolution(*length));
    at = comma + 1;
  }
  if (out.size() > 255) return Status::InvalidArgument("resolutions: at most 255");
  return out;
}

}  // namespace mare::rollup
