#include "sinks/carried_reading.h"

#include <charconv>
#include <cstdint>
#include <cstring>
#include <string_view>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace mare::sinks {
namespace {

// JSON's whitespace but the newline, which no raw record holds (RawReadingReader refuses one).
bool IsSpace(char c) { return c == ' ' || c == '\t' || c == '\r'; }

// Bytes that end a scan: a string's closing quote or a backslash; a number's delimiter.
struct Stops {
  bool stop[256] = {};
  constexpr explicit Stops(std::string_view bytes) {
    for (char c : bytes) stop[static_cast<unsigned char>(c)] = true;
  }
  bool operator[](unsigned char c) const { return stop[c]; }
};
constexpr Stops kStringStops{"\"\\"};
constexpr Stops kNumberStops{",} \t\r\n"};

// Short names compared inline, a word at a time (two overlapping loads cover 4 to 16 bytes):
// most differ in length, and those of equal length are mostly equal.
bool Same(std::string_view a, std::string_view b) {
  size_t n = a.size();
  if (n != b.size()) return false;
  const char* x = a.data();
  const char* y = b.data();
  if (n >= 8) {
    if (n > 16) return std::memcmp(x, y, n) == 0;
    uint64_t x0, y0, x1, y1;
    std::memcpy(&x0, x, 8);
    std::memcpy(&y0, y, 8);
    std::memcpy(&x1, x + n - 8, 8);
    std::memcpy(&y1, y + n - 8, 8);
    return ((x0 ^ y0) | (x1 ^ y1)) == 0;
  }
  if (n >= 4) {
    uint32_t x0, y0, x1, y1;
    std::memcpy(&x0, x, 4);
    std::memcpy(&y0, y, 4);
    std::memcpy(&x1, x + n - 4, 4);
    std::memcpy(&y1, y + n - 4, 4);
    return ((x0 ^ y0) | (x1 ^ y1)) == 0;
  }
  for (size_t i = 0; i < n; ++i) {
    if (x[i] != y[i]) return false;
  }
  return true;
}

// A cursor over JSON that ingest accepted: anything outside the plain forms below makes the
// scan give up (the caller parses then), so it never has to judge JSON it does not expect.
class Scanner {
 public:
  explicit Scanner(std::string_view json) : p_(json.data()), end_(json.data() + json.size()) {}

  bool AtEnd() {
    SkipSpace();
    return p_ == end_;
  }
  // Consumes `c` after any whitespace.
  bool Eat(char c) {
    SkipSpace();
    if (p_ == end_ || *p_ != c) return false;
    ++p_;
    return true;
  }
  // The first byte of the next value, 0 at the end.
  char Peek() {
    SkipSpace();
    return p_ == end_ ? '\0' : *p_;
  }
  // A string with no escape, its text as it stands between the quotes (then equal to what a
  // JSON parser unescapes); false for one with a backslash. Names and texts are short: a byte
  // loop beats two calls of memchr.
  bool PlainString(std::string_view* out) {
    if (!Eat('"')) return false;
    const char* q = p_;
#if defined(__SSE2__)
    // 16 bytes at a time while 16 are there: a name or a short text ends in the first step.
    const __m128i quote = _mm_set1_epi8('"'), backslash = _mm_set1_epi8('\\');
    while (end_ - q >= 16) {
      __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(q));
      auto stops = static_cast<unsigned>(_mm_movemask_epi8(_mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, backslash))));
      if (stops) {
        q += __builtin_ctz(stops);
        break;
      }
      q += 16;
    }
#endif
    while (q < end_ && !kStringStops[static_cast<unsigned char>(*q)]) ++q;
    if (q == end_ || *q != '"') return false;
    *out = std::string_view(p_, static_cast<size_t>(q - p_));
    p_ = q + 1;
    return true;
  }
  // A number's token (up to the next delimiter), unread.
  std::string_view NumberToken() {
    SkipSpace();
    const char* from = p_;
    while (p_ < end_ && !kNumberStops[static_cast<unsigned char>(*p_)]) ++p_;
    return std::string_view(from, static_cast<size_t>(p_ - from));
  }
  bool Null() {
    SkipSpace();
    if (end_ - p_ < 4 || std::memcmp(p_, "null", 4) != 0) return false;
    p_ += 4;
    return true;
  }

 private:
  void SkipSpace() {
    // Compact JSON, the usual: the next byte is above the space, no whitespace at all.
    if (p_ < end_ && static_cast<unsigned char>(*p_) > ' ') return;
    while (p_ < end_ && IsSpace(*p_)) ++p_;
  }

  const char* p_;
  const char* const end_;
};

bool IsNumberStart(char c) { return c == '-' || (c >= '0' && c <= '9'); }

// A JSON number read as the parser reads it: from_chars rounds correctly, as simdjson does, so
// both give the nearest double.
bool ToDouble(std::string_view token, double* out) {
  auto [end, ec] = std::from_chars(token.data(), token.data() + token.size(), *out);
  return ec == std::errc() && end == token.data() + token.size();
}

// {"lat": .., "lon": ..} in either order, as the parser takes it.
bool ReadLocation(Scanner& s, Reading* r) {
  if (!s.Eat('{')) return false;
  bool have_lat = false, have_lon = false;
  do {
    std::string_view key;
    double v;
    if (!s.PlainString(&key) || !s.Eat(':') || !ToDouble(s.NumberToken(), &v)) return false;
    if (key == "lat") {
      r->lat = v;
      have_lat = true;
    } else if (key == "lon") {
      r->lon = v;
      have_lon = true;
    } else {
      return false;
    }
  } while (s.Eat(','));
  if (!s.Eat('}') || !have_lat || !have_lon) return false;
  r->has_location = true;
  return true;
}

}  // namespace

bool ReadCarried(const log::ConsumedRecord& record, Reading* reading) {
  if (!record.has_numbers) return false;
  Reading& r = *reading;
  r.Clear();
  Scanner s(record.value);
  if (!s.Eat('{')) return false;
  bool have_sensor = false, have_timestamp = false;
  size_t numbers = 0;  // numeric fields met, each the carried number at that place
  if (s.Peek() != '}') {
    do {
      std::string_view name;
      if (!s.PlainString(&name) || !s.Eat(':')) return false;
      char c = s.Peek();
      if (c == '"') {
        std::string_view text;
        if (!s.PlainString(&text)) return false;
        if (name == "sensor_id" || name == "location") return false;
        if (name == "timestamp") {
          have_timestamp = true;  // the record's event time is the reading's
        } else {
          r.texts.push_back({name, text});
        }
      } else if (IsNumberStart(c)) {
        std::string_view token = s.NumberToken();
        if (numbers < record.numbers.size() && Same(record.numbers[numbers].name, name)) {
          ++numbers;  // the carried number at this place: the log holds its value
        } else if (name == "sensor_id") {
          uint64_t id = 0;
          auto [end, ec] = std::from_chars(token.data(), token.data() + token.size(), id);
          if (ec != std::errc() || end != token.data() + token.size() || id > UINT32_MAX) return false;
          r.sensor_id = static_cast<uint32_t>(id);
          have_sensor = true;
        } else if (name == "location") {
          return false;
        } else if (name == "timestamp") {
          have_timestamp = true;
        } else {
          return false;  // a number the log does not carry here
        }
      } else if (c == '{') {
        if (name != "location" || !ReadLocation(s, &r)) return false;
      } else if (c == 'n') {
        // A null field is absent from the reading, a null location no position.
        if (name == "sensor_id" || name == "timestamp" || !s.Null()) return false;
      } else {
        return false;
      }
    } while (s.Eat(','));
  }
  if (!s.Eat('}') || !s.AtEnd() || !have_sensor || !have_timestamp ||
      numbers != record.numbers.size()) {
    return false;
  }
  r.numbers.assign(record.numbers.begin(), record.numbers.end());
  r.timestamp_us = record.timestamp_us;
  r.raw = record.value;
  return true;
}

}  // namespace mare::sinks
