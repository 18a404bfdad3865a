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
  bytes_read_ += static_cast<int64_t>(line->size()) + (in_.eof() ? 0 : 1);
  if (!line->empty() && line->back() == '\r') line->pop_back();
  return true;
}

namespace {

// The decimals archives hold ("-12.34": a sign, at most 19 digits, no exponent) whose digits
// as an integer m are at most 2^53 and whose fraction has at most 22 digits: m and 10^k are
// then exact doubles, and one correctly rounded division gives the correctly rounded value
// (Clinger's fast path), the very double fast_float answers. False for anything else.
bool ParsePlainDecimal(std::string_view token, double* value) {
  static constexpr double kPow10[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,  1e10, 1e11,
                                      1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};
  const char* p = token.data();
  const char* end = p + token.size();
  bool negative = p != end && *p == '-';
  p += negative;
  uint64_t m = 0;
  const char* digits = p;
  while (p != end && static_cast<unsigned>(*p - '0') < 10) m = m * 10 + static_cast<unsigned>(*p++ - '0');
  size_t whole = static_cast<size_t>(p - digits);
  size_t fraction = 0;
  if (p != end && *p == '.') {
    const char* f = ++p;
    while (p != end && static_cast<unsigned>(*p - '0') < 10) m = m * 10 + static_cast<unsigned>(*p++ - '0');
    fraction = static_cast<size_t>(p - f);
    if (fraction == 0) return false;  // "5.": left to fast_float
  }
  if (p != end || whole == 0 || whole + fraction > 19 || m > (uint64_t{1} << 53)) return false;
  double v = static_cast<double>(m) / kPow10[fraction];
  *value = negative ? -v : v;
  return true;
}

}  // namespace

std::string NonUtf8Reason(std::string_view field, size_t at) {
  return fmt::format("{}: byte {} of the value is not UTF-8 text", field, at + 1);
}

bool ParseNumber(std::string_view token, double* value) {
  if (!token.empty() && token.front() == '+') {
    token.remove_prefix(1);
    if (!token.empty() && (token.front() == '-' || token.front() == '+')) return false;  // "+-5" is no number
  }
  if (token.empty()) return false;
  if (ParsePlainDecimal(token, value)) return true;
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

namespace mare::archive {

Result<int64_t> ParseUtcOffset(std::string_view text) {
  auto invalid = [&] {
    return Status::InvalidArgument(fmt::format("invalid UTC offset '{}': expected e.g. +08:00, -05:30, +8 or 0", text));
  };
  std::string_view t = text;
  int sign = 1;
  if (!t.empty() && (t[0] == '+' || t[0] == '-')) {
    sign = t[0] == '-' ? -1 : 1;
    t.remove_prefix(1);
  }
  int hours = 0, minutes = 0;
  std::string_view h = t, m;
  if (size_t colon = t.find(':'); colon != std::string_view::npos) {
    h = t.substr(0, colon);
    m = t.substr(colon + 1);
  } else if (t.size() == 4) {
    h = t.substr(0, 2);
    m = t.substr(2);
  }
  auto whole = [](std::string_view s, int* v) {
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), *v);
    return !s.empty() && ec == std::errc() && end == s.data() + s.size();
  };
  if (!whole(h, &hours) || (!m.empty() && (!whole(m, &minutes) || m.size() != 2)) || minutes >= 60 ||
      hours * 60 + minutes > 14 * 60) {
    return invalid();
  }
  return sign * (int64_t{hours} * 60 + minutes) * 60'000'000;
}

}  // namespace mare::archive
