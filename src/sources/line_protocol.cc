#include "sources/line_protocol.h"

#include <fast_float/fast_float.h>
#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstring>

#include "reading/timestamp.h"

namespace mare {
namespace {

// Mare's readings start in 1900 (docs/formats/reading.md) and the text form has four year digits.
constexpr int64_t kMinMicros = -2'208'988'800'000'000;      // 1900-01-01T00:00:00Z
constexpr int64_t kMaxMicros = 253'402'300'799'999'999;     // 9999-12-31T23:59:59.999999Z

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

// The end of an escaped token starting at `pos`: the first of `stop1`/`stop2`/`stop3` not
// preceded by a backslash, or the line's end. A backslash always takes the next byte with it.
size_t ScanToken(std::string_view line, size_t pos, char stop1, char stop2, char stop3) {
  const size_t n = line.size();
  while (pos < n) {
    char c = line[pos];
    if (c == stop1 || c == stop2 || c == stop3) return pos;
    pos += (c == '\\' && pos + 1 < n) ? 2 : 1;
  }
  return n;
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

// Writes a JSON string's contents for byte `c`, escaped if JSON wants it.
char* PutJsonByte(char* o, char c) {
  static constexpr char kHex[] = "0123456789abcdef";
  switch (c) {
    case '"': *o++ = '\\'; *o++ = '"'; return o;
    case '\\': *o++ = '\\'; *o++ = '\\'; return o;
    default: {
      auto u = static_cast<unsigned char>(c);
      if (u < 0x20) {
        std::memcpy(o, "\\u00", 4);
        o[4] = kHex[u >> 4];
        o[5] = kHex[u & 15];
        return o + 6;
      }
      *o++ = c;
      return o;
    }
  }
}

char* Put(char* o, std::string_view s) {
  std::memcpy(o, s.data(), s.size());
  return o + s.size();
}

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
      o = PutJsonByte(o, c);
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
      o = PutJsonByte(o, c);
    }
  }
  *o++ = '"';
  return o;
}

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
bool PutValue(char*& o, char type, std::string_view key, std::string_view v, double* number, bool* vouched,
              RejectReason* reason, std::string* why) {
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
      auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), x);
      if (ec != std::errc() || end != v.data() + v.size()) {
        *reason = ec == std::errc::result_out_of_range ? RejectReason::kInvalidNumber : RejectReason::kInvalidLineProtocol;
        *why = fmt::format("field '{}' = {}i is not a 64-bit signed integer", Shown(key), Shown(v));
        return false;
      }
      o = PutInteger(o, x);
      *number = static_cast<double>(x);  // rounded to nearest, as a parser reading the digits rounds
      return true;
    }
    case 'u': {
      uint64_t x = 0;
      auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), x);
      if (ec != std::errc() || end != v.data() + v.size()) {
        *reason = ec == std::errc::result_out_of_range ? RejectReason::kInvalidNumber : RejectReason::kInvalidLineProtocol;
        *why = fmt::format("field '{}' = {}u is not a 64-bit unsigned integer", Shown(key), Shown(v));
        return false;
      }
      o = PutInteger(o, x);
      *number = static_cast<double>(x);
      return true;
    }
    default: {
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
}

void LineProtocolParser::Convert(std::string_view data, Precision precision, int64_t now_us, LineBatch* batch,
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
  size_t pos = ScanToken(line, 0, ',', ' ', '\t');
  std::string_view measurement = line.substr(0, pos);
  if (measurement.empty()) return syntax(0, "missing measurement");
  while (pos < n && line[pos] == ',') {
    size_t key_at = pos + 1;
    size_t eq = ScanToken(line, key_at, '=', ',', ' ');
    if (eq == key_at) return syntax(key_at, "missing tag key");
    if (eq >= n || line[eq] != '=') return syntax(eq, fmt::format("missing '=' after tag key '{}'", Shown(line.substr(key_at, eq - key_at))));
    size_t value_at = eq + 1;
    size_t value_end = ScanToken(line, value_at, ',', ' ', '\t');
    if (value_end == value_at) return syntax(value_at, fmt::format("missing value of tag '{}'", Shown(line.substr(key_at, eq - key_at))));
    tags_.push_back({line.substr(key_at, eq - key_at), line.substr(value_at, value_end - value_at)});
    pos = value_end;
  }
  if (pos >= n) return syntax(pos, "missing fields");
  while (pos < n && (line[pos] == ' ' || line[pos] == '\t')) ++pos;
  if (pos >= n) return syntax(pos, "missing fields");

  // field=value[,field=value...]
  for (;;) {
    size_t key_at = pos;
    size_t eq = ScanToken(line, key_at, '=', ',', ' ');
    if (eq == key_at) return syntax(key_at, "missing field key");
    std::string_view key = line.substr(key_at, eq - key_at);
    if (eq >= n || line[eq] != '=') return syntax(eq, fmt::format("missing '=' after field key '{}'", Shown(key)));
    size_t value_at = eq + 1;
    if (value_at >= n || line[value_at] == ' ' || line[value_at] == ',') {
      return syntax(value_at, fmt::format("missing value of field '{}'", Shown(key)));
    }
    Field f{key, {}, 'f'};
    size_t value_end;
    if (line[value_at] == '"') {
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
    fields_.push_back(f);
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
    size_t ts_end = pos;
    while (ts_end < n && line[ts_end] != ' ' && line[ts_end] != '\t') ++ts_end;
    std::string_view text = line.substr(pos, ts_end - pos);
    size_t rest = ts_end;
    while (rest < n && (line[rest] == ' ' || line[rest] == '\t')) ++rest;
    if (rest < n) return syntax(rest, "unexpected text after the timestamp");
    int64_t t = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), t);
    if (ec != std::errc() || end != text.data() + text.size() || !(IsDigit(text[0]) || text[0] == '-')) {
      *reason = RejectReason::kInvalidTimestamp;
      *why = fmt::format("timestamp '{}' is not an integer in int64's range (column {})", Shown(text), pos + 1);
      return false;
    }
    bool overflow = false;
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
  // A name ingest takes (valid, not one of the reading's own, not seen before); its offset in json.
  auto admit_name = [&](std::string_view name) {
    if (!IsFieldName(name) || name == "timestamp" || name == "sensor_id" || name == "location") return false;
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
    if (!KeyIs(t.key, options_.sensor_id_tag)) continue;
    uint64_t id = 0;
    auto [end, ec] = std::from_chars(t.value.data(), t.value.data() + t.value.size(), id);
    if (ec != std::errc() || end != t.value.data() + t.value.size() || id > UINT32_MAX) {
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
  for (const Field& f : fields_) {
    if (!sensor_tag && !sensor_field && KeyIs(f.key, options_.sensor_id_tag)) {
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
    if (KeyIs(f.key, options_.lat_field)) lat = &f;
    if (KeyIs(f.key, options_.lon_field)) lon = &f;
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
    const bool plain = IsPlain(measurement);
    const char* value_at = o + 1;
    o = PutIdent(o, measurement, plain);
    ++json_fields;
    if (vouched && plain && admit_name(options_.measurement_field) && admit_text(options_.measurement_field, measurement)) {
      add_text(name_at, options_.measurement_field.size(), value_at, measurement.size());
    } else {
      vouched = false;
    }
  }
  if (options_.keep_tags) {
    for (const Tag& t : tags_) {
      if (&t == sensor_tag) continue;
      *o++ = ',';
      const bool key_plain = IsPlain(t.key);
      const char* name_at = o + 1;
      o = PutIdent(o, t.key, key_plain);
      *o++ = ':';
      const bool plain = IsPlain(t.value);
      const char* value_at = o + 1;
      o = PutIdent(o, t.value, plain);
      ++json_fields;
      if (vouched && key_plain && plain && admit_name(t.key) && admit_text(t.key, t.value)) {
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
    const bool key_plain = IsPlain(f.key);
    const char* name_at = o + 1;
    o = PutIdent(o, f.key, key_plain);
    *o++ = ':';
    const char* value_at = o + 1;
    double number = 0;
    if (!PutValue(o, f.type, f.key, f.value, &number, &vouched, reason, why)) return false;
    ++json_fields;
    if (!vouched || !key_plain || !admit_name(f.key)) {
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
    if (!PutValue(o, lat->type, lat->key, lat->value, &reading->lat, &vouched, reason, why)) return false;
    o = Put(o, ",\"lon\":");
    if (!PutValue(o, lon->type, lon->key, lon->value, &reading->lon, &vouched, reason, why)) return false;
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
