#include "archive/archive.h"

#include <fast_float/fast_float.h>
#include <fmt/format.h>

#include <cerrno>
#include <charconv>
#include <cmath>


namespace mare::archive {

Status LineReader::Open(const std::string& path) {
  path_ = path;
  in_.open(path, std::ios::binary);
  if (!in_) return Status::FromErrno("open " + path, errno);
  return Status::OK();
}

bool LineReader::Next(std::string* line) {
  if (!std::getline(in_, *line)) {
    if (in_.bad()) status_ = Status::IOError(fmt::format("read {} after line {}", path_, line_number_));
    return false;
  }
  ++line_number_;
  if (!line->empty() && line->back() == '\r') line->pop_back();
  return true;
}

bool ParseNumber(std::string_view token, double* value) {
  if (!token.empty() && token.front() == '+') token.remove_prefix(1);
  if (token.empty()) return false;
  // fast_float: correctly rounded, as std::from_chars, and faster (mare import parses every cell).
  auto [ptr, ec] = fast_float::from_chars(token.data(), token.data() + token.size(), *value);
  return ec == std::errc() && ptr == token.data() + token.size() && std::isfinite(*value);
}

std::optional<uint64_t> StationFromFileName(std::string_view path) {
  size_t slash = path.rfind('/');
  std::string_view name = slash == std::string_view::npos ? path : path.substr(slash + 1);
  auto digits_at = [&](size_t pos) {
    size_t end = pos;
    while (end < name.size() && name[end] >= '0' && name[end] <= '9') ++end;
    return end - pos;
  };
  auto to_number = [&](size_t pos, size_t n) -> std::optional<uint64_t> {
    uint64_t v = 0;
    auto [ptr, ec] = std::from_chars(name.data() + pos, name.data() + pos + n, v);
    if (ec != std::errc()) return std::nullopt;
    return v;
  };
  if (name.substr(0, 5) == "ndbc_") {
    size_t n = digits_at(5);
    if (n > 0) return to_number(5, n);
  }
  size_t n = digits_at(0);  // NDBC's own names: 44005h2012.txt
  if (n > 0 && n < name.size() && name[n] == 'h') return to_number(0, n);
  return std::nullopt;
}

}  // namespace mare::archive
