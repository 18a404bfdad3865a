#include "sources/line_protocol.h"

#include <fast_float/fast_float.h>
#include <fmt/format.h>

#include <algorithm>
#include <bit>
#include <charconv>
#include <cmath>
#include <cstring>

#include "common/json_writer.h"
#include "common/short_bytes.h"
#include "reading/timestamp.h"

namespace mare {
namespace {

// Mare's readings start in 1900 (docs/formats/reading.md) and the text form has four year digits.
constexpr int64_t kMinMicros = -2'208'988'800'000'000;      // 1900-01-01T00:00:00Z
constexpr int64_t kMaxMicros = 253'402'300'799'999'999;     // 9999-12-31T23:59:59.999999Z

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

// What the scanner knows of a byte, from one table lookup: whether it ends a token (which bytes
// do depends on where: ScanToken's `stops`), whether it is the backslash, and whether IsPlain and
// IsFieldName would refuse it. OR-ed over a token's bytes, the classes say whether the token is
// plain, holds an escape or is made of name bytes, so that it is not read again to find out.
enum ByteClass : uint8_t {
  kComma = 1,
  kEquals = 2,
  kSpace = 4,
  kTab = 8,
  kBackslash = 16,
  kNotPlain = 32,  // IsPlain refuses it: JSON must escape it, or UTF-8 be validated
  kNotName = 64,   // not in [A-Za-z0-9_]
};
struct ByteClasses {
  uint8_t of[256] = {};
  constexpr ByteClasses() {
    for (int c = 0; c < 256; ++c) {
      uint8_t k = 0;
      if (c == ',') k |= kComma;
      if (c == '=') k |= kEquals;
      if (c == ' ') k |= kSpace;
      if (c == '\t') k |= kTab;
      if (c == '\\') k |= kBackslash;
      if (c < 0x20 || c >= 0x7f || c == '"' || c == '\\') k |= kNotPlain;
      if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_')) k |= kNotName;
      of[c] = k;
    }
  }
};
constexpr ByteClasses kClasses;
uint8_t ClassOf(char c) { return kClasses.of[static_cast<unsigned char>(c)]; }

// The end of an escaped token starting at `pos`: the first byte of a class in `stops` not
// preceded by a backslash, or the line's end. A backslash always takes the next byte with it.
// *seen: the classes of the token's bytes, OR-ed.
size_t ScanToken(std::string_view line, size_t pos, uint8_t stops, uint8_t* seen) {
  const size_t n = line.size();
  uint8_t all = 0;
  while (pos < n) {
    const uint8_t k = ClassOf(line[pos]);
    if (k & (stops | kBackslash)) {
      if (k & stops) break;
      if (pos + 1 < n) all |= ClassOf(line[++pos]);
    }
    all |= k;
    ++pos;
  }
  *seen = all;
  return pos;
}

// IsFieldName of a token whose classes, OR-ed, are `seen`.
bool IsFieldNameToken(std::string_view token, uint8_t seen) {
  return !(seen & kNotName) && !token.empty() && token.size() <= 64 && !IsDigit(token[0]);
}

// Eight bytes as one number, the first in its low byte (as SWAR digit parsing wants).
static_assert(std::endian::native == std::endian::little, "the SWAR digit parsing below assumes little-endian");
uint64_t LoadEight(const char* p) {
  uint64_t x;
  std::memcpy(&x, p, 8);
  return x;
}

// Whether all eight bytes of x are ASCII digits, and their value: fast_float's
// is_made_of_eight_digits_fast and parse_eight_digits_unrolled (its SWAR arithmetic).
bool EightDigits(uint64_t x) {
  return (((x & 0xF0F0F0F0F0F0F0F0) | (((x + 0x0606060606060606) & 0xF0F0F0F0F0F0F0F0) >> 4)) == 0x3333333333333333);
}
uint64_t EightDigitsValue(uint64_t x) {
  x -= 0x3030303030303030;
  x = (x * 10) + (x >> 8);
  return (((x & 0x000000FF000000FF) * 0x000F424000000064) + (((x >> 16) & 0x000000FF000000FF) * 0x0000271000000001)) >> 32;
}

// Reads the decimal digits at [p, end) as std::from_chars does for uint64_t: as far as they go,
// *overflow when they spell more than UINT64_MAX (*value is then meaningless). Returns the first
// byte not taken: p itself when there is no digit. Without leading zeros, 19 digits always fit
// in 64 bits, a 20th may, more never: only the 20th needs a check. A nanosecond timestamp has 19:
// eight at a time, then one by one.
const char* ReadDigits(const char* p, const char* end, uint64_t* value, bool* overflow) {
  const char* q = p;
  while (q < end && *q == '0') ++q;
  const char* const stop19 = end - q > 19 ? q + 19 : end;
  uint64_t v = 0;
  while (stop19 - q >= 8 && EightDigits(LoadEight(q))) {
    v = v * 100'000'000 + EightDigitsValue(LoadEight(q));
    q += 8;
  }
  while (q < stop19 && IsDigit(*q)) v = v * 10 + static_cast<uint64_t>(*q++ - '0');
  bool over = false;
  if (q < end && IsDigit(*q)) {
    over = __builtin_mul_overflow(v, uint64_t{10}, &v) || __builtin_add_overflow(v, static_cast<uint64_t>(*q - '0'), &v);
    ++q;
    while (q < end && IsDigit(*q)) {
      over = true;
      ++q;
    }
  }
  *value = v;
  *overflow = over;
  return q;
}

// As std::from_chars for int64_t: an optional '-', then digits, taken as far as they go; returns
// the first byte not taken (p itself when there is no digit), *overflow when out of int64's range.
const char* ReadSigned(const char* p, const char* end, int64_t* value, bool* overflow) {
  const bool negative = p < end && *p == '-';
  const char* digits = p + (negative ? 1 : 0);
  uint64_t magnitude = 0;
  const char* q = ReadDigits(digits, end, &magnitude, overflow);
  if (q == digits) return p;
  *overflow |= magnitude > (negative ? uint64_t{1} << 63 : uint64_t{INT64_MAX});
  *value = static_cast<int64_t>(negative ? 0 - magnitude : magnitude);
  return q;
}

// 10^0 to 10^19: every one exact as a double (up to 10^22 are).
constexpr double kExactPowers[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,
                                   1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19};

// The common float value, read in one pass: a JSON number without exponent
// (-?(0|[1-9][0-9]*)(\.[0-9]+)?) of at most 19 digits, k of them after the point, which make an
// integer w <= 2^53, ending the value (at a ',', ' ', tab or the line's end). Then w and 10^k
// are exact doubles and w / 10^k, one correctly rounded division, is the double
// nearest the number: what fast_float returns (its own first path, Clinger's), bit for bit. False
// for anything else, left to PutValue's general path. *end: where the value ends.
bool ReadPlainDecimal(const char* p, const char* line_end, const char** end, double* out) {
  const bool negative = *p == '-';
  if (negative) ++p;
  if (p == line_end) return false;
  uint64_t w = 0;
  int digits = 0, decimals = 0;
  // A digit d is one when unsigned(byte - '0') <= 9: one compare rather than two.
  auto digit = [](char c) { return static_cast<unsigned>(static_cast<unsigned char>(c)) - '0'; };
  if (*p == '0') {
    ++p;
  } else if (digit(*p) <= 9) {
    const char* first = p;
    for (unsigned d; p < line_end && (d = digit(*p)) <= 9; ++p) w = w * 10 + d;
    digits = static_cast<int>(p - first);
  } else {
    return false;
  }
  if (p < line_end && *p == '.') {
    ++p;
    const char* first = p;
    for (unsigned d; p < line_end && (d = digit(*p)) <= 9; ++p) w = w * 10 + d;
    decimals = static_cast<int>(p - first);
    if (decimals == 0) return false;
  }
  if (p < line_end && !(ClassOf(*p) & (kComma | kSpace | kTab))) return false;
  if (digits + decimals > 19 || w > (uint64_t{1} << 53)) return false;
  double x = static_cast<double>(w) / kExactPowers[decimals];
  *out = negative ? -x : x;
  *end = p;
  return true;
}

// Whether `c` is one a backslash escapes in a measurement, tag key, tag value or field key.
bool Escapable(char c) { return c == ',' || c == '=' || c == ' ' || c == '\\'; }

// Bytes a JSON string may hold as they are, and ingest's parser takes as they are: printable
// ASCII but the quote and the backslash. Anything else needs escaping (or, beyond ASCII, UTF-8
// validation): the reading is then parsed by ingest from its JSON rather than vouched for.
struct PlainBytes {
  bool plain[256] = {};
  constexpr PlainBytes() {
    for (int c = 0x20; c < 0x7f; ++c) plain[c] = c != '"' && c != '\\';
  }
};
constexpr PlainBytes kPlain;

bool IsPlain(std::string_view s) {
  bool all = true;
  for (char c : s) all &= kPlain.plain[static_cast<unsigned char>(c)];
  return all;
}

// Names and values are short: up to 16 bytes are copied with two overlapping moves of 8, 4 or
// 1 bytes rather than a call to memcpy (reading only s's bytes; o has room, see Reserve below).
[[gnu::always_inline]] inline char* Put(char* o, std::string_view s) { return CopyShortBytes(o, s); }

// Writes an identifier or tag value, unescaped, as a JSON string (with its quotes). `plain`:
// whether IsPlain(escaped), so that it is copied as it is.
char* PutIdent(char* o, std::string_view escaped, bool plain) {
  *o++ = '"';
  if (plain) {
    o = Put(o, escaped);
  } else {
    for (size_t i = 0; i < escaped.size(); ++i) {
      char c = escaped[i];
      if (c == '\\' && i + 1 < escaped.size() && Escapable(escaped[i + 1])) c = escaped[++i];
      o = PutJsonStringByte(o, c);
    }
  }
  *o++ = '"';
  return o;
}

// Writes a string field's value (between its quotes, escaped as received) as a JSON string.
char* PutStringValue(char* o, std::string_view escaped, bool plain) {
  *o++ = '"';
  if (plain) {
    o = Put(o, escaped);
  } else {
    for (size_t i = 0; i < escaped.size(); ++i) {
      char c = escaped[i];
      if (c == '\\' && i + 1 < escaped.size() && (escaped[i + 1] == '"' || escaped[i + 1] == '\\')) c = escaped[++i];
      o = PutJsonStringByte(o, c);
    }
  }
  *o++ = '"';
  return o;
}

// Whether a and b are the same bytes: keys (sensor_id, lat, lon) are short, and a call to memcmp
// for each was 4 % of the converting thread (perf, bench/lineproto.py's load): up to 16 bytes
// are compared with two overlapping loads of 8 or 4 bytes a side.
[[gnu::always_inline]] inline bool SameBytes(std::string_view a, std::string_view b) { return ShortBytesEqual(a, b); }

// Whether the escaped key `escaped` spells `name` once unescaped.
bool KeyIs(std::string_view escaped, std::string_view name) {
  // Unescaping only shortens: a shorter key cannot match. Most keys differ at their first byte.
  if (name.empty() || escaped.size() < name.size()) return false;
  size_t j = 0;
  for (size_t i = 0; i < escaped.size(); ++i, ++j) {
    char c = escaped[i];
    if (c == '\\' && i + 1 < escaped.size() && Escapable(escaped[i + 1])) c = escaped[++i];
    if (j >= name.size() || name[j] != c) return false;
  }
  return j == name.size();
}

// KeyIs of a key whose bytes' classes, OR-ed, are `seen`: without a backslash, it is as written.
// Asked of every field three times (sensor_id, lat, lon), where most keys differ in length: the
// sizes are compared where it is asked (KeyMayBe), without a call.
bool KeyMatches(std::string_view escaped, uint8_t seen, std::string_view name) {
  if (seen & kBackslash) return KeyIs(escaped, name);
  return SameBytes(escaped, name);
}
// Whether a key scanned with classes `seen` may spell `name`: unescaping only shortens.
[[gnu::always_inline]] inline bool KeyMayBe(std::string_view escaped, uint8_t seen, std::string_view name) {
  return escaped.size() == name.size() || ((seen & kBackslash) && escaped.size() > name.size());
}

// The names a reading has of its own, which no field may take (ingest refuses them as
// duplicate_field): by length and first byte before the bytes.
bool IsReadingsOwnName(std::string_view name) {
  switch (name.size()) {
    case 9: return (name[0] == 't' && name == "timestamp") || (name[0] == 's' && name == "sensor_id");
    case 8: return name[0] == 'l' && name == "location";
    default: return false;
  }
}

// JSON's number grammar: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?; *may_overflow when it
// has an exponent or more digits than a double's range could hold without one.
bool IsJsonNumber(std::string_view s, bool* may_overflow) {
  size_t i = 0, n = s.size();
  if (i < n && s[i] == '-') ++i;
  if (i >= n) return false;
  if (s[i] == '0') {
    ++i;
  } else if (IsDigit(s[i])) {
    while (i < n && IsDigit(s[i])) ++i;
  } else {
    return false;
  }
  if (i < n && s[i] == '.') {
    ++i;
    if (i >= n || !IsDigit(s[i])) return false;
    while (i < n && IsDigit(s[i])) ++i;
  }
  *may_overflow = n > 300;
  if (i < n && (s[i] == 'e' || s[i] == 'E')) {
    *may_overflow = true;
    ++i;
    if (i < n && (s[i] == '+' || s[i] == '-')) ++i;
    if (i >= n || !IsDigit(s[i])) return false;
    while (i < n && IsDigit(s[i])) ++i;
  }
  return i == n;
}

template <typename T>
char* PutInteger(char* o, T value) {
  return std::to_chars(o, o + 24, value).ptr;
}

std::string Shown(std::string_view s) {
  return s.size() <= 64 ? std::string(s) : std::string(s.substr(0, 64)) + "...";
}

// Whether ingest's parser reads back exactly `x` from its shortest text, as this parser does: true
// of every finite double, but subnormals and negative zero are rare enough to leave to it.
bool PlainDouble(double x) {
  return std::isnormal(x) || (x == 0 && !std::signbit(x));
}

// Writes a field's value as JSON: a string, 1/0 for a boolean, a number normalised to JSON's
// grammar (01i, +5 or .5 are line protocol, not JSON), and sets *number to what ingest's parser
// would read from it. False, with the reason, if it is none. Clears *vouched when ingest's
// parser should judge the JSON for itself (a string to escape, a number with an exponent).
// `decimal`: the value when the scanner already read it (ReadPlainDecimal), else null.
bool PutValue(char*& o, char type, std::string_view key, std::string_view v, const double* decimal, double* number,
              bool* vouched, RejectReason* reason, std::string* why) {
  switch (type) {
    case 's': {
      bool plain = IsPlain(v);
      *vouched &= plain;
      o = PutStringValue(o, v, plain);
      return true;
    }
    case 'b':
      o = Put(o, v);
      *number = v[0] == '1' ? 1 : 0;
      return true;
    case 'i': {
      int64_t x = 0;
      bool overflow = false;
      const char* end = ReadSigned(v.data(), v.data() + v.size(), &x, &overflow);
      if (end == v.data() || overflow || end != v.data() + v.size()) {
        // As std::from_chars: digits out of range are that, whatever follows them.
        *reason = end != v.data() && overflow ? RejectReason::kInvalidNumber : RejectReason::kInvalidLineProtocol;
        *why = fmt::format("field '{}' = {}i is not a 64-bit signed integer", Shown(key), Shown(v));
        return false;
      }
      o = PutInteger(o, x);
      *number = static_cast<double>(x);  // rounded to nearest, as a parser reading the digits rounds
      return true;
    }
    case 'u': {
      uint64_t x = 0;
      bool overflow = false;
      const char* end = ReadDigits(v.data(), v.data() + v.size(), &x, &overflow);
      if (end == v.data() || overflow || end != v.data() + v.size()) {
        *reason = end != v.data() && overflow ? RejectReason::kInvalidNumber : RejectReason::kInvalidLineProtocol;
        *why = fmt::format("field '{}' = {}u is not a 64-bit unsigned integer", Shown(key), Shown(v));
        return false;
      }
      o = PutInteger(o, x);
      *number = static_cast<double>(x);
      return true;
    }
    default: {
      if (decimal) {
        *vouched &= PlainDouble(*decimal);
        *number = *decimal;
        o = Put(o, v);
        return true;
      }
      bool may_overflow = false;
      if (IsJsonNumber(v, &may_overflow)) {
        double x = 0;
        fast_float::from_chars(v.data(), v.data() + v.size(), x);
        // Still checked when it could overflow: 1e999 is JSON but no double.
        if (may_overflow && !std::isfinite(x)) {
          *reason = RejectReason::kInvalidNumber;
          *why = fmt::format("field '{}' = {} is out of double's range", Shown(key), Shown(v));
          return false;
        }
        *vouched &= !may_overflow && PlainDouble(x);
        *number = x;
        o = Put(o, v);
        return true;
      }
      std::string_view digits = v[0] == '+' ? v.substr(1) : v;
      double x = 0;
      auto [end, ec] = fast_float::from_chars(digits.data(), digits.data() + digits.size(), x);
      bool spelled = !digits.empty() && (IsDigit(digits[0]) || digits[0] == '.' || (digits[0] == '-' && digits.size() > 1 &&
                                                                                    (IsDigit(digits[1]) || digits[1] == '.')));
      if (!spelled || end != digits.data() + digits.size() || (ec != std::errc() && ec != std::errc::result_out_of_range)) {
        *reason = RejectReason::kInvalidLineProtocol;
        *why = fmt::format("invalid value '{}' of field '{}': not a number, string or boolean", Shown(v), Shown(key));
        return false;
      }
      if (!std::isfinite(x) || ec == std::errc::result_out_of_range) {
        *reason = RejectReason::kInvalidNumber;
        *why = fmt::format("field '{}' = {} is out of double's range", Shown(key), Shown(v));
        return false;
      }
      *vouched &= PlainDouble(x);
      *number = x;
      o = std::to_chars(o, o + 32, x).ptr;
      return true;
    }
  }
}

// One bit per name, from its length and first and last bytes: names whose bits differ cannot
// be equal, so the duplicate check compares strings only on a collision.
uint64_t NameBit(std::string_view name) {
  return uint64_t{1} << ((name.size() * 7 + static_cast<unsigned char>(name.front()) * 3 +
                          static_cast<unsigned char>(name.back())) & 63);
}

}  // namespace

bool ParsePrecision(std::string_view text, Precision* out) {
  if (text == "ns" || text == "n") *out = Precision::kNanoseconds;
  else if (text == "us" || text == "u") *out = Precision::kMicroseconds;
  else if (text == "ms") *out = Precision::kMilliseconds;
  else if (text == "s") *out = Precision::kSeconds;
  else if (text == "m") *out = Precision::kMinutes;
  else if (text == "h") *out = Precision::kHours;
  else return false;
  return true;
}

uint32_t LineBatch::LineAt(size_t offset) const {
  auto it = std::upper_bound(json_starts.begin(), json_starts.end(), static_cast<uint32_t>(offset));
  if (it == json_starts.begin()) return lines.empty() ? 0 : lines.front();
  return lines[static_cast<size_t>(it - json_starts.begin()) - 1];
}

void LineBatch::Clear() {
  json.set_size(0);
  lines.clear();
  json_starts.clear();
  readings.clear();
  numbers.clear();
  texts.clear();
  rejects.clear();
}

void LineBatch::ReadingAt(size_t i, Reading* out) const {
  const LineReading& r = readings[i];
  const char* base = json.view().data();
  out->Clear();
  out->timestamp_us = r.timestamp_us;
  out->sensor_id = r.sensor_id;
  out->has_location = r.has_location;
  out->lat = r.lat;
  out->lon = r.lon;
  for (uint32_t k = r.numbers_at; k < r.numbers_at + r.number_count; ++k) {
    const Number& f = numbers[k];
    out->numbers.push_back({std::string_view(base + f.name_at, f.name_size), f.value});
  }
  for (uint32_t k = r.texts_at; k < r.texts_at + r.text_count; ++k) {
    const Text& t = texts[k];
    out->texts.push_back({std::string_view(base + t.name_at, t.name_size), std::string_view(base + t.value_at, t.value_size)});
  }
  out->raw = JsonOf(i);
}

void HandOver(const LineBatch& batch, ReadingParser& parser, int64_t now_us, ReadingSink& sink, Reading* scratch) {
  for (size_t i = 0; i < batch.readings.size(); ++i) {
    if (batch.readings[i].vouched) {
      batch.ReadingAt(i, scratch);
      sink.OnReading(*scratch);
    } else {
      parser.Parse(batch.JsonOf(i), now_us, sink);
    }
  }
}

LineProtocolParser::LineProtocolParser(LineProtocolOptions options, ParserOptions rules)
    : options_(std::move(options)), rules_(std::move(rules)) {
  tags_.reserve(16);
  fields_.reserve(16);
  names_.reserve(rules_.max_fields + 4);
  for (const std::string& name : rules_.numeric_fields) {
    if (!name.empty()) numeric_bits_ |= NameBit(name);
  }
  measurement_field_is_name_ = IsFieldName(options_.measurement_field);
  lat_is_lon_ = options_.lat_field == options_.lon_field;
}

uint32_t LineProtocolParser::Convert(std::string_view data, Precision precision, int64_t now_us, LineBatch* batch,
                                     uint32_t first_line) {
  uint32_t number = first_line;
  size_t pos = 0;
  const size_t n = data.size();
  while (pos < n) {
    const char* nl = static_cast<const char*>(std::memchr(data.data() + pos, '\n', n - pos));
    size_t end = nl ? static_cast<size_t>(nl - data.data()) : n;
    std::string_view line = data.substr(pos, end - pos);
    pos = end + 1;
    const uint32_t this_line = number++;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    size_t start = 0;
    while (start < line.size() && (line[start] == ' ' || line[start] == '\t')) ++start;
    if (start == line.size() || line[start] == '#') continue;  // blank line or comment
    line.remove_prefix(start);
    if (line.size() > options_.max_line_bytes) {
      batch->rejects.push_back({this_line, RejectReason::kOversized,
                                fmt::format("line of {} bytes, over max_line_bytes = {}", line.size(), options_.max_line_bytes),
                                line.substr(0, 1024)});
      continue;
    }
    const size_t json_at = batch->json.size();
    const size_t numbers_at = batch->numbers.size();
    const size_t texts_at = batch->texts.size();
    RejectReason reason;
    std::string why;
    LineReading reading;
    if (!ConvertLine(line, precision, now_us, batch, &reading, &reason, &why)) {
      batch->json.set_size(json_at);
      batch->numbers.resize(numbers_at);
      batch->texts.resize(texts_at);
      batch->rejects.push_back({this_line, reason, std::move(why), line.substr(0, 1024)});
      continue;
    }
    batch->json_starts.push_back(static_cast<uint32_t>(json_at));
    batch->lines.push_back(this_line);
    batch->readings.push_back(reading);
  }
  // As PaddedBuffer::Append leaves it: the byte after the text is zero.
  batch->json.data()[batch->json.size()] = '\0';
  return number;
}

bool LineProtocolParser::ConvertLine(std::string_view line, Precision precision, int64_t now_us, LineBatch* batch,
                                     LineReading* reading, RejectReason* reason, std::string* why) {
  auto syntax = [&](size_t column, std::string_view what) {
    *reason = RejectReason::kInvalidLineProtocol;
    *why = fmt::format("{} (column {})", what, column + 1);
    return false;
  };
  const size_t n = line.size();
  tags_.clear();
  fields_.clear();

  // measurement[,tag=value...]
  uint8_t measurement_seen;
  size_t pos = ScanToken(line, 0, kComma | kSpace | kTab, &measurement_seen);
  std::string_view measurement(line.data(), pos);
  if (measurement.empty()) return syntax(0, "missing measurement");
  while (pos < n && line[pos] == ',') {
    size_t key_at = pos + 1;
    Tag t{};
    size_t eq = ScanToken(line, key_at, kEquals | kComma | kSpace, &t.key_seen);
    if (eq == key_at) return syntax(key_at, "missing tag key");
    t.key = std::string_view(line.data() + key_at, eq - key_at);
    if (eq >= n || line[eq] != '=') return syntax(eq, fmt::format("missing '=' after tag key '{}'", Shown(t.key)));
    size_t value_at = eq + 1;
    size_t value_end = ScanToken(line, value_at, kComma | kSpace | kTab, &t.value_seen);
    if (value_end == value_at) return syntax(value_at, fmt::format("missing value of tag '{}'", Shown(t.key)));
    t.value = std::string_view(line.data() + value_at, value_end - value_at);
    tags_.push_back(t);
    pos = value_end;
  }
  if (pos >= n) return syntax(pos, "missing fields");
  while (pos < n && (line[pos] == ' ' || line[pos] == '\t')) ++pos;
  if (pos >= n) return syntax(pos, "missing fields");

  // field=value[,field=value...]
  for (;;) {
    size_t key_at = pos;
    Field& f = fields_.emplace_back();
    size_t eq = ScanToken(line, key_at, kEquals | kComma | kSpace, &f.key_seen);
    if (eq == key_at) return syntax(key_at, "missing field key");
    std::string_view key(line.data() + key_at, eq - key_at);
    if (eq >= n || line[eq] != '=') return syntax(eq, fmt::format("missing '=' after field key '{}'", Shown(key)));
    size_t value_at = eq + 1;
    if (value_at >= n || line[value_at] == ' ' || line[value_at] == ',') {
      return syntax(value_at, fmt::format("missing value of field '{}'", Shown(key)));
    }
    f.key = key;
    f.type = 'f';
    f.read = false;
    size_t value_end;
    const char* decimal_end;
    if ((IsDigit(line[value_at]) || line[value_at] == '-') &&
        ReadPlainDecimal(line.data() + value_at, line.data() + n, &decimal_end, &f.decimal)) {
      // The common case, a float read as it was scanned: the general path below would find it
      // a float too ('f': neither boolean nor suffixed) and PutValue read it exactly so.
      value_end = static_cast<size_t>(decimal_end - line.data());
      f.value = std::string_view(line.data() + value_at, value_end - value_at);
      f.read = true;
    } else if (line[value_at] == '"') {
      size_t i = value_at + 1;
      while (i < n && line[i] != '"') i += (line[i] == '\\' && i + 1 < n) ? 2 : 1;
      if (i >= n) return syntax(value_at, fmt::format("unterminated string value of field '{}'", Shown(key)));
      f.value = line.substr(value_at + 1, i - value_at - 1);
      f.type = 's';
      value_end = i + 1;
      if (value_end < n && line[value_end] != ',' && line[value_end] != ' ' && line[value_end] != '\t') {
        return syntax(value_end, fmt::format("unexpected text after the string value of field '{}'", Shown(key)));
      }
    } else {
      value_end = value_at;
      while (value_end < n && line[value_end] != ',' && line[value_end] != ' ' && line[value_end] != '\t') ++value_end;
      std::string_view v = line.substr(value_at, value_end - value_at);
      f.value = v;
      char last = v.back();
      const bool letter = v[0] == 't' || v[0] == 'T' || v[0] == 'f' || v[0] == 'F';
      if (letter && (v == "t" || v == "T" || v == "true" || v == "True" || v == "TRUE")) {
        f.type = 'b';
        f.value = "1";
      } else if (letter && (v == "f" || v == "F" || v == "false" || v == "False" || v == "FALSE")) {
        f.type = 'b';
        f.value = "0";
      } else if ((last == 'i' || last == 'u') && v.size() >= 2 && (IsDigit(v[0]) || (last == 'i' && v[0] == '-'))) {
        f.type = last;
        f.value = v.substr(0, v.size() - 1);
      } else if (IsDigit(v[0]) || v[0] == '-' || v[0] == '+' || v[0] == '.') {
        f.type = 'f';
      } else {
        return syntax(value_at, fmt::format("invalid value '{}' of field '{}': not a number, string or boolean", Shown(v), Shown(key)));
      }
    }
    pos = value_end;
    if (pos < n && line[pos] == ',') {
      ++pos;
      continue;
    }
    break;
  }

  // [timestamp]
  int64_t micros = now_us;
  while (pos < n && (line[pos] == ' ' || line[pos] == '\t')) ++pos;
  if (pos < n) {
    // The timestamp is read as it is scanned: it is the token up to the next space or tab, and
    // an integer only if its digits reach that far.
    int64_t t = 0;
    bool overflow = false;
    const char* digits_end = ReadSigned(line.data() + pos, line.data() + n, &t, &overflow);
    size_t ts_end = static_cast<size_t>(digits_end - line.data());
    const bool integer = ts_end > pos && !overflow;
    while (ts_end < n && line[ts_end] != ' ' && line[ts_end] != '\t') ++ts_end;
    std::string_view text(line.data() + pos, ts_end - pos);
    size_t rest = ts_end;
    while (rest < n && (line[rest] == ' ' || line[rest] == '\t')) ++rest;
    if (rest < n) return syntax(rest, "unexpected text after the timestamp");
    if (!integer || digits_end != line.data() + ts_end) {
      *reason = RejectReason::kInvalidTimestamp;
      *why = fmt::format("timestamp '{}' is not an integer in int64's range (column {})", Shown(text), pos + 1);
      return false;
    }
    switch (precision) {
      case Precision::kNanoseconds: micros = t / 1000 - (t % 1000 < 0 ? 1 : 0); break;
      case Precision::kMicroseconds: micros = t; break;
      case Precision::kMilliseconds: overflow = __builtin_mul_overflow(t, int64_t{1000}, &micros); break;
      case Precision::kSeconds: overflow = __builtin_mul_overflow(t, int64_t{1'000'000}, &micros); break;
      case Precision::kMinutes: overflow = __builtin_mul_overflow(t, int64_t{60'000'000}, &micros); break;
      case Precision::kHours: overflow = __builtin_mul_overflow(t, int64_t{3'600'000'000}, &micros); break;
    }
    if (overflow || micros < kMinMicros || micros > kMaxMicros) {
      *reason = RejectReason::kInvalidTimestamp;
      *why = fmt::format("timestamp {} is outside the years 1900 to 9999 at its precision", Shown(text));
      return false;
    }
  }

  // The reading, written straight into the batch: room for the longest JSON this line can make
  // (an escaped byte takes at most 6, a number at most 32, a field's quotes and separators 6).
  PaddedBuffer& json = batch->json;
  const size_t json_at = json.size();
  json.Reserve(json_at + 6 * n + 32 * fields_.size() + 6 * tags_.size() + options_.measurement_field.size() + 128);
  char* const base = json.data();
  char* o = base + json_at;
  *reading = LineReading{};
  reading->timestamp_us = micros;
  reading->numbers_at = static_cast<uint32_t>(batch->numbers.size());
  reading->texts_at = static_cast<uint32_t>(batch->texts.size());
  // Whether ingest's parser would take this JSON as it is and read back exactly what is kept
  // here (its rules, docs/formats/reading.md); if in doubt, not: it then judges the JSON itself.
  bool vouched = micros <= now_us + rules_.max_future_skew_us;
  size_t json_fields = 2;  // timestamp, sensor_id
  names_.clear();
  uint64_t name_bits = 0;
  // A name ingest takes (valid: `is_field_name`, IsFieldName(name); not one of the reading's own;
  // not seen before).
  auto admit_name = [&](std::string_view name, bool is_field_name) {
    if (!is_field_name || IsReadingsOwnName(name)) return false;
    uint64_t bit = NameBit(name);
    if (name_bits & bit) {
      for (std::string_view seen : names_) {
        if (seen == name) return false;
      }
    }
    name_bits |= bit;
    names_.push_back(name);
    return true;
  };
  // A text ingest takes as it is (value plain, see IsPlain).
  auto admit_text = [&](std::string_view name, std::string_view value) {
    if (value.size() > rules_.max_text_bytes || SpellsNonFinite(value)) return false;
    if (numeric_bits_ & NameBit(name)) {
      for (const std::string& numeric : rules_.numeric_fields) {
        if (numeric == name) return false;
      }
    }
    return true;
  };
  auto add_text = [&](const char* name_at, size_t name_size, const char* value_at, size_t value_size) {
    batch->texts.push_back({static_cast<uint32_t>(name_at - base), static_cast<uint32_t>(name_size),
                            static_cast<uint32_t>(value_at - base), static_cast<uint32_t>(value_size)});
  };

  {
    static constexpr std::string_view kOpen = "{\"timestamp\":\"";
    o = Put(o, kOpen);
    int64_t second = micros / 1'000'000;
    int64_t fraction = micros % 1'000'000;
    if (fraction < 0) {
      fraction += 1'000'000;
      --second;
    }
    if (second != stamp_second_) {
      // Readings come many to a second: its date and time are formatted once for them all.
      FormatReadingTime(second * 1'000'000, stamp_);
      stamp_second_ = second;
    }
    o = Put(o, std::string_view(stamp_, kReadingTimeLength - 6));
    for (int i = 5; i >= 0; --i) {
      o[i] = static_cast<char>('0' + fraction % 10);
      fraction /= 10;
    }
    o += 6;
    *o++ = '"';
  }

  // The tag or field the sensor id came from; another of the same name is then a second
  // sensor_id, which ingest refuses as duplicate_field.
  const Tag* sensor_tag = nullptr;
  const Field* sensor_field = nullptr;
  for (const Tag& t : tags_) {
    if (!KeyMatches(t.key, t.key_seen, options_.sensor_id_tag)) continue;
    uint64_t id = 0;
    bool overflow = false;
    const char* end = ReadDigits(t.value.data(), t.value.data() + t.value.size(), &id, &overflow);
    if (end == t.value.data() || overflow || end != t.value.data() + t.value.size() || id > UINT32_MAX) {
      *reason = RejectReason::kInvalidSensorId;
      *why = fmt::format("tag {} = '{}' is not an integer in [0, 4294967295]", options_.sensor_id_tag, Shown(t.value));
      return false;
    }
    o = Put(o, ",\"sensor_id\":");
    o = PutInteger(o, id);
    reading->sensor_id = static_cast<uint32_t>(id);
    sensor_tag = &t;
    break;
  }
  const Field* lat = nullptr;
  const Field* lon = nullptr;
  const std::string_view sensor_name = options_.sensor_id_tag;
  const std::string_view lat_name = options_.lat_field;
  const std::string_view lon_name = options_.lon_field;
  for (const Field& f : fields_) {
    if (!sensor_tag && !sensor_field && KeyMayBe(f.key, f.key_seen, sensor_name) &&
        KeyMatches(f.key, f.key_seen, sensor_name)) {
      double v = 0;
      auto [end, ec] = fast_float::from_chars(f.value.data(), f.value.data() + f.value.size(), v);
      if (f.type == 's' || f.type == 'b' || ec != std::errc() || end != f.value.data() + f.value.size() || v < 0 ||
          v > UINT32_MAX || v != std::floor(v)) {
        *reason = RejectReason::kInvalidSensorId;
        *why = fmt::format("field {} = {} is not an integer in [0, 4294967295]", options_.sensor_id_tag, Shown(f.value));
        return false;
      }
      o = Put(o, ",\"sensor_id\":");
      o = PutInteger(o, static_cast<uint64_t>(v));
      reading->sensor_id = static_cast<uint32_t>(v);
      sensor_field = &f;
      continue;
    }
    // A key that is lat_name is lon_name only if the options name one field for both.
    if (KeyMayBe(f.key, f.key_seen, lat_name) && KeyMatches(f.key, f.key_seen, lat_name)) {
      lat = &f;
      if (lat_is_lon_) lon = &f;
    } else if (KeyMayBe(f.key, f.key_seen, lon_name) && KeyMatches(f.key, f.key_seen, lon_name)) {
      lon = &f;
    }
  }
  if (!sensor_tag && !sensor_field) {
    *reason = RejectReason::kMissingSensorId;
    *why = fmt::format("no tag (or integer field) {}", options_.sensor_id_tag);
    return false;
  }
  if (!options_.measurement_field.empty()) {
    o = Put(o, ",\"");
    const char* name_at = o;
    o = Put(o, options_.measurement_field);
    o = Put(o, "\":");
    const bool plain = !(measurement_seen & kNotPlain);
    const char* value_at = o + 1;
    o = PutIdent(o, measurement, plain);
    ++json_fields;
    if (vouched && plain && admit_name(options_.measurement_field, measurement_field_is_name_) &&
        admit_text(options_.measurement_field, measurement)) {
      add_text(name_at, options_.measurement_field.size(), value_at, measurement.size());
    } else {
      vouched = false;
    }
  }
  if (options_.keep_tags) {
    for (const Tag& t : tags_) {
      if (&t == sensor_tag) continue;
      *o++ = ',';
      const bool key_plain = !(t.key_seen & kNotPlain);
      const char* name_at = o + 1;
      o = PutIdent(o, t.key, key_plain);
      *o++ = ':';
      const bool plain = !(t.value_seen & kNotPlain);
      const char* value_at = o + 1;
      o = PutIdent(o, t.value, plain);
      ++json_fields;
      if (vouched && key_plain && plain && admit_name(t.key, IsFieldNameToken(t.key, t.key_seen)) &&
          admit_text(t.key, t.value)) {
        add_text(name_at, t.key.size(), value_at, t.value.size());
      } else {
        vouched = false;
      }
    }
  }
  if (lat || lon) {
    if (!lat || !lon || lat->type == 's' || lat->type == 'b' || lon->type == 's' || lon->type == 'b') {
      *reason = RejectReason::kInvalidLocation;
      *why = fmt::format("{} and {} must both be numeric fields", options_.lat_field, options_.lon_field);
      return false;
    }
  }

  for (const Field& f : fields_) {
    if (&f == sensor_field || &f == lat || &f == lon) continue;
    *o++ = ',';
    const bool key_plain = !(f.key_seen & kNotPlain);
    const char* name_at = o + 1;
    o = PutIdent(o, f.key, key_plain);
    *o++ = ':';
    const char* value_at = o + 1;
    double number = 0;
    if (f.read) {  // PutValue's first case, inline for the common field
      vouched &= PlainDouble(f.decimal);
      number = f.decimal;
      o = Put(o, f.value);
    } else if (!PutValue(o, f.type, f.key, f.value, nullptr, &number, &vouched, reason, why)) {
      return false;
    }
    ++json_fields;
    if (!vouched || !key_plain || !admit_name(f.key, IsFieldNameToken(f.key, f.key_seen))) {
      vouched = false;
    } else if (f.type == 's') {
      if (admit_text(f.key, f.value)) {
        add_text(name_at, f.key.size(), value_at, f.value.size());
      } else {
        vouched = false;
      }
    } else {
      batch->numbers.push_back({static_cast<uint32_t>(name_at - base), static_cast<uint32_t>(f.key.size()), number});
    }
  }
  if (lat) {
    o = Put(o, ",\"location\":{\"lat\":");
    if (!PutValue(o, lat->type, lat->key, lat->value, lat->read ? &lat->decimal : nullptr, &reading->lat, &vouched, reason,
                  why)) {
      return false;
    }
    o = Put(o, ",\"lon\":");
    if (!PutValue(o, lon->type, lon->key, lon->value, lon->read ? &lon->decimal : nullptr, &reading->lon, &vouched, reason,
                  why)) {
      return false;
    }
    *o++ = '}';
    ++json_fields;
    reading->has_location = true;
    vouched &= reading->lat >= -90 && reading->lat <= 90 && reading->lon >= -180 && reading->lon <= 180;
  }
  *o++ = '}';
  const size_t size = static_cast<size_t>(o - base) - json_at;
  *o++ = '\n';
  json.set_size(static_cast<size_t>(o - base));
  reading->json_size = static_cast<uint32_t>(size);
  reading->vouched = vouched && json_fields <= rules_.max_fields && size <= rules_.max_reading_bytes;
  reading->number_count = static_cast<uint32_t>(batch->numbers.size()) - reading->numbers_at;
  reading->text_count = static_cast<uint32_t>(batch->texts.size()) - reading->texts_at;
  return true;
}

}  // namespace mare
