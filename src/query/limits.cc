#include "query/limits.h"

#include <fmt/format.h>

namespace mare::query {

std::string FormatTimeout(int64_t us) {
  if (us % 1'000'000 == 0) return fmt::format("{}s", us / 1'000'000);
  if (us % 1'000 == 0 && us < 1'000'000) return fmt::format("{}ms", us / 1'000);
  return fmt::format("{:g}s", static_cast<double>(us) / 1e6);
}

std::string FormatBytes(size_t bytes) {
  if (bytes >= (size_t{1} << 30) && bytes % (size_t{1} << 30) == 0) return fmt::format("{} GiB", bytes >> 30);
  if (bytes >= (size_t{1} << 20) && bytes % (size_t{1} << 20) == 0) return fmt::format("{} MiB", bytes >> 20);
  return fmt::format("{} bytes", bytes);
}

}  // namespace mare::query
