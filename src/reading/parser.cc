#include "reading/parser.h"

#include <fmt/format.h>
#include <simdjson.h>

#include <cstring>
#include <new>

#include "common/time.h"
#include "reading/json_number.h"
#include "reading/timestamp.h"

namespace mare {

static_assert(kParsePadding >= simdjson::SIMDJSON_PADDING);

const char* ReasonName(RejectReason reason) {
  switch (reason) {
    case RejectReason::kNotJson: return "not_json";
    case RejectReason::kNotObject: return "not_object";
    case RejectReason::kMissingTimestamp: return "missing_timestamp";
    case RejectReason::kInvalidTimestamp: return "invalid_timestamp";
    case RejectReason::kFutureTimestamp: return "future_timestamp";
    case RejectReason::kMissingSensorId: return "missing_sensor_id";
    case RejectReason::kInvalidSensorId: return "invalid_sensor_id";
    case RejectReason::kInvalidNumber: return "invalid_number";
    case RejectReason::kInvalidLocation: return "invalid_location";
    case RejectReason::kInvalidFieldName: return "invalid_field_name";
    case RejectReason::kDuplicateField: return "duplicate_field";
    case RejectReason::kUnsupportedValue: return "unsupported_value";
    case RejectReason::kTooManyFields: return "too_many_fields";
    case RejectReason::kTextTooLong: return "text_too_long";
    case RejectReason::kInvalidUtf8: return "invalid_utf8";
    case RejectReason::kOversized: return "oversized";
    case RejectReason::kDuplicate: return "duplicate";
    case RejectReason::kInvalidLineProtocol: return "invalid_line_protocol";
    case RejectReason::kCount: break;
  }
  return "unknown";
}

namespace {

namespace od = simdjson::ondemand;

constexpr size_t kMaxFieldName = 64;

bool IsNameStart(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }

// Characters allowed in field names, as a table: this check runs for every byte of every key.
struct NameChars {
  bool allowed[256] = {};
  constexpr NameChars() {
    for (int c = 0; c < 256; ++c) {
      allowed[c] = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
    }
  }
};
constexpr NameChars kNameChars;
bool IsNameChar(char c) { return kNameChars.allowed[static_cast<unsigned char>(c)]; }

// One bit per field name, from its length and first and last bytes: names whose bits differ
// cannot be equal, so the duplicate check compares strings only on a collision.
uint64_t NameBit(std::string_view name) {
  return uint64_t{1} << ((name.size() * 7 + static_cast<unsigned char>(name.front()) * 3 +
                          static_cast<unsigned char>(name.back())) & 63);
}

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    char c = a[i];
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    if (c != b[i]) return false;
  }
  return true;
}

std::string_view TrimToken(std::string_view s) {
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r' || s.back() == '\n' ||
                        s.back() == ',' || s.back() == '}' || s.back() == ']')) {
    s.remove_suffix(1);
  }
  return s.substr(0, 40);
}

// A field's key, as a view into the input when it is a valid name. Keys with escapes can never
// be valid names, so the raw bytes up to the closing quote are all we need.
bool FieldName(od::field& field, std::string_view* name, std::string* why) {
  const char* k = field.key().raw();
  size_t n = 0;
  while (n <= kMaxFieldName && IsNameChar(k[n])) ++n;
  if (k[n] == '"' && n > 0 && n <= kMaxFieldName && IsNameStart(k[0])) {
    *name = std::string_view(k, n);
    return true;
  }
  size_t shown = 0;
  while (shown < 40 && k[shown] != '"' && k[shown] != '\0') ++shown;
  *why = fmt::format("field name '{}' is not a name: use letters, digits and _, starting with a letter or _, at most {} bytes",
                     std::string_view(k, shown), kMaxFieldName);
  return false;
}

// True when the document has been read to its end (simdjson 3.0 has no document::at_end):
// current_location() is an error exactly when nothing but whitespace is left.
bool AtEnd(od::document& doc) {
  const char* where;
  return doc.current_location().get(where) != simdjson::SUCCESS;
}

// Whether a document that is not an object is at least valid JSON (a string, number, ...).
bool IsValidScalar(od::document& doc) {
  od::json_type type;
  if (doc.type().get(type)) return false;
  switch (type) {
    case od::json_type::string: { std::string_view s; return !doc.get_string().get(s) && AtEnd(doc); }
    case od::json_type::number: { double d; return !doc.get_double().get(d) && AtEnd(doc); }
    case od::json_type::boolean: { bool b; return !doc.get_bool().get(b) && AtEnd(doc); }
    case od::json_type::null: { bool n; return !doc.is_null().get(n) && n && AtEnd(doc); }
    default: return false;
  }
}

}  // namespace

// NaN and infinities, as firmware prints them when JSON has no way to say so.
bool SpellsNonFinite(std::string_view s) {
  if (!s.empty() && (s[0] == '+' || s[0] == '-')) s.remove_prefix(1);
  return EqualsIgnoreCase(s, "nan") || EqualsIgnoreCase(s, "inf") || EqualsIgnoreCase(s, "infinity");
}

bool IsFieldName(std::string_view name) {
  if (name.empty() || name.size() > kMaxFieldName || !IsNameStart(name[0])) return false;
  for (char c : name) {
    if (!IsNameChar(c)) return false;
  }
  return true;
}

struct ReadingParser::Impl {
  od::parser parser;
  Reading reading;
  std::vector<std::string_view> seen;   // field names of the current reading
  std::vector<std::string_view> items;  // raw readings of an array line
  std::string why;

  // Each returns false after setting `reason` and `why`.
  RejectReason reason = RejectReason::kNotJson;
  bool Fail(RejectReason r, std::string detail) {
    reason = r;
    why = std::move(detail);
    return false;
  }
  bool FailJson(simdjson::error_code e, std::string_view where) {
    if (e == simdjson::UTF8_ERROR) return Fail(RejectReason::kInvalidUtf8, "text is not valid UTF-8");
    return Fail(RejectReason::kNotJson, fmt::format("not JSON{}: {}", where, simdjson::error_message(e)));
  }

  // Only nulls and booleans need it: the test at the call keeps it off the hot path.
  bool LiteralOk(od::value& v, od::json_type type, std::string_view name) {
    return (type != od::json_type::null && type != od::json_type::boolean) || CheckLiteral(v, type, name);
  }
  bool CheckLiteral(od::value& v, od::json_type type, std::string_view name);
  bool ParseTimestamp(od::value& v);
  bool ParseSensorId(od::value& v);
  bool ParseLocation(od::value& v);
  bool ParseField(std::string_view name, od::value& v, const ParserOptions& options);
  bool ParseObject(od::object& obj, const ParserOptions& options, int64_t now_us);
};

// simdjson's type() judges a value by its first byte ('n' is null, 't' and 'f' a boolean) and
// nothing checks the rest until it is read: `nonsense` would pass for null, `trueish` for true.
// So a null or boolean is read here before it is believed. Numbers, strings, objects and arrays
// are checked when they are read.
[[gnu::noinline]] bool ReadingParser::Impl::CheckLiteral(od::value& v, od::json_type type, std::string_view name) {
  if (type == od::json_type::null) {
    bool is_null = false;
    if (!v.is_null().get(is_null) && is_null) return true;
  } else if (type == od::json_type::boolean) {
    bool b;
    if (!v.get_bool().get(b)) return true;
  } else {
    return true;
  }
  std::string_view token = TrimToken(v.raw_json_token());
  return Fail(RejectReason::kNotJson, fmt::format("not JSON in field '{}': {} is not a JSON value (null, true, false, a number, a string, an object or an array)", name, token));
}

bool ReadingParser::Impl::ParseTimestamp(od::value& v) {
  od::json_type type;
  if (auto e = v.type().get(type)) return FailJson(e, " in timestamp");
  if (!LiteralOk(v, type, "timestamp")) return false;
  std::string detail;
  if (type == od::json_type::string) {
    std::string_view text;
    if (auto e = v.get_string().get(text)) return FailJson(e, " in timestamp");
    if (!ParseTimestampText(text, &reading.timestamp_us, &detail)) {
      return Fail(RejectReason::kInvalidTimestamp, "timestamp " + detail);
    }
    return true;
  }
  if (type == od::json_type::number) {
    od::number_type nt;
    if (auto e = v.get_number_type().get(nt)) return Fail(RejectReason::kInvalidTimestamp, "timestamp: " + std::string(simdjson::error_message(e)));
    if (nt == od::number_type::floating_point_number) {
      double d;
      std::string_view token = v.raw_json_token();
      if (auto e = v.get_double().get(d)) return Fail(RejectReason::kInvalidTimestamp, "timestamp: " + std::string(simdjson::error_message(e)));
      CorrectLongNumber(token, &d);
      if (!ParseTimestampEpoch(d, &reading.timestamp_us, &detail)) return Fail(RejectReason::kInvalidTimestamp, "timestamp: " + detail);
      return true;
    }
    int64_t i;
    if (v.get_int64().get(i) || i < 0) return Fail(RejectReason::kInvalidTimestamp, "timestamp: epoch time must be a positive number");
    if (i < 100'000'000'000) reading.timestamp_us = i * kMicrosPerSecond;             // seconds
    else if (i < 100'000'000'000'000) reading.timestamp_us = i * 1000;                 // milliseconds
    else return Fail(RejectReason::kInvalidTimestamp, fmt::format("timestamp: epoch time {} too large for seconds or milliseconds", i));
    return true;
  }
  return Fail(RejectReason::kInvalidTimestamp, "timestamp must be a date-time string or epoch seconds/milliseconds");
}

bool ReadingParser::Impl::ParseSensorId(od::value& v) {
  od::json_type type;
  if (auto e = v.type().get(type)) return FailJson(e, " in sensor_id");
  if (!LiteralOk(v, type, "sensor_id")) return false;
  uint64_t id = 0;
  if (type != od::json_type::number || v.get_uint64().get(id) || id > UINT32_MAX) {
    std::string_view token = type == od::json_type::string ? "a string" : TrimToken(v.raw_json_token());
    return Fail(RejectReason::kInvalidSensorId,
                fmt::format("sensor_id must be an integer from 0 to 4294967295, got {} (put a station name in a text field such as \"station\")", token));
  }
  reading.sensor_id = static_cast<uint32_t>(id);
  return true;
}

bool ReadingParser::Impl::ParseLocation(od::value& v) {
  od::json_type type;
  if (auto e = v.type().get(type)) return FailJson(e, " in location");
  if (!LiteralOk(v, type, "location")) return false;
  if (type == od::json_type::null) return true;  // no position
  od::object obj;
  if (type != od::json_type::object || v.get_object().get(obj)) {
    return Fail(RejectReason::kInvalidLocation, "location must be an object {\"lat\": .., \"lon\": ..}");
  }
  bool have_lat = false, have_lon = false;
  for (auto f : obj) {
    if (auto e = f.error()) return FailJson(e, " in location");
    od::field& field = f.value_unsafe();  // by reference: copying simdjson's field stalls the CPU
    std::string_view key;
    if (!FieldName(field, &key, &why)) return Fail(RejectReason::kInvalidLocation, "location: " + why);
    double d;
    bool is_lat = key == "lat", is_lon = key == "lon";
    if (!is_lat && !is_lon) return Fail(RejectReason::kInvalidLocation, fmt::format("location has an unknown key '{}': only lat and lon", key));
    std::string_view token = field.value().raw_json_token();
    if (field.value().get_double().get(d)) {
      return Fail(RejectReason::kInvalidLocation, fmt::format("location.{} must be a number, got {}", key, TrimToken(token)));
    }
    CorrectLongNumber(token, &d);
    if (is_lat) {
      if (d < -90 || d > 90) return Fail(RejectReason::kInvalidLocation, fmt::format("location.lat {} outside [-90, 90]", d));
      reading.lat = d;
      have_lat = true;
    } else {
      if (d < -180 || d > 180) return Fail(RejectReason::kInvalidLocation, fmt::format("location.lon {} outside [-180, 180]", d));
      reading.lon = d;
      have_lon = true;
    }
  }
  if (!have_lat || !have_lon) return Fail(RejectReason::kInvalidLocation, "location needs both lat and lon");
  reading.has_location = true;
  return true;
}

bool ReadingParser::Impl::ParseField(std::string_view name, od::value& v, const ParserOptions& options) {
  od::json_type type;
  if (auto e = v.type().get(type)) {
    std::string_view token = TrimToken(v.raw_json_token());
    if (SpellsNonFinite(token)) return Fail(RejectReason::kInvalidNumber, fmt::format("field '{}': {} is not a finite number", name, token));
    return FailJson(e, fmt::format(" in field '{}'", name));
  }
  switch (type) {
    case od::json_type::number: {
      double d;
      std::string_view token = v.raw_json_token();
      if (auto e = v.get_double().get(d)) {
        return Fail(RejectReason::kInvalidNumber, fmt::format("field '{}': {} is not a finite number ({})", name,
                                                              TrimToken(token), simdjson::error_message(e)));
      }
      CorrectLongNumber(token, &d);
      reading.numbers.push_back({name, d});
      return true;
    }
    case od::json_type::string: {
      std::string_view s;
      if (auto e = v.get_string().get(s)) return FailJson(e, fmt::format(" in field '{}'", name));
      if (SpellsNonFinite(s)) return Fail(RejectReason::kInvalidNumber, fmt::format("field '{}': \"{}\" is not a finite number", name, s));
      for (const std::string& numeric : options.numeric_fields) {
        if (numeric == name) {
          return Fail(RejectReason::kInvalidNumber, fmt::format("field '{}' must be a number, got the string \"{}\"", name, s.substr(0, 40)));
        }
      }
      if (s.size() > options.max_text_bytes) {
        return Fail(RejectReason::kTextTooLong, fmt::format("field '{}': text of {} bytes exceeds max_text_bytes {}", name, s.size(), options.max_text_bytes));
      }
      reading.texts.push_back({name, s});
      return true;
    }
    case od::json_type::null: {
      if (CheckLiteral(v, type, name)) return true;  // a missing value: the field is absent from this reading
      std::string_view token = TrimToken(v.raw_json_token());
      if (SpellsNonFinite(token)) return Fail(RejectReason::kInvalidNumber, fmt::format("field '{}': {} is not a finite number", name, token));
      return false;
    }
    case od::json_type::boolean:
      if (!CheckLiteral(v, type, name)) return false;
      return Fail(RejectReason::kUnsupportedValue, fmt::format("field '{}': only numbers, text and null are accepted, not true/false", name));
    default:
      return Fail(RejectReason::kUnsupportedValue,
                  fmt::format("field '{}': only numbers, text and null are accepted, not {}", name,
                              type == od::json_type::object ? "an object" : "an array"));
  }
}

bool ReadingParser::Impl::ParseObject(od::object& obj, const ParserOptions& options, int64_t now_us) {
  reading.Clear();
  seen.clear();
  uint64_t seen_bits = 0;
  bool have_ts = false, have_sensor = false;
  for (auto f : obj) {
    if (auto e = f.error()) return FailJson(e, "");
    od::field& field = f.value_unsafe();  // by reference: copying simdjson's field stalls the CPU
    if (seen.size() >= options.max_fields) {
      return Fail(RejectReason::kTooManyFields, fmt::format("more than max_fields = {} fields", options.max_fields));
    }
    std::string_view name;
    if (!FieldName(field, &name, &why)) return Fail(RejectReason::kInvalidFieldName, why);
    uint64_t bit = NameBit(name);
    if (seen_bits & bit) {
      for (std::string_view s : seen) {
        if (s == name) return Fail(RejectReason::kDuplicateField, fmt::format("field '{}' appears twice", name));
      }
    }
    seen_bits |= bit;
    seen.push_back(name);
    od::value& v = field.value();
    if (name == "timestamp") {
      if (!ParseTimestamp(v)) return false;
      have_ts = true;
    } else if (name == "sensor_id") {
      if (!ParseSensorId(v)) return false;
      have_sensor = true;
    } else if (name == "location") {
      if (!ParseLocation(v)) return false;
    } else if (!ParseField(name, v, options)) {
      return false;
    }
  }
  if (!have_ts) return Fail(RejectReason::kMissingTimestamp, "no timestamp field");
  if (!have_sensor) return Fail(RejectReason::kMissingSensorId, "no sensor_id field");
  if (reading.timestamp_us > now_us + options.max_future_skew_us) {
    return Fail(RejectReason::kFutureTimestamp,
                fmt::format("timestamp {} is {:.1f} s ahead of the clock (max_future_skew {})", FormatTimestamp(reading.timestamp_us),
                            static_cast<double>(reading.timestamp_us - now_us) / 1e6, FormatDuration(options.max_future_skew_us)));
  }
  return true;
}

ReadingParser::ReadingParser(ParserOptions options) : options_(std::move(options)), impl_(std::make_unique<Impl>()) {
  if (impl_->parser.allocate(options_.max_reading_bytes + kParsePadding) != simdjson::SUCCESS) throw std::bad_alloc();
  impl_->reading.numbers.reserve(options_.max_fields);
  impl_->reading.texts.reserve(options_.max_fields);
  impl_->seen.reserve(options_.max_fields);
}

ReadingParser::~ReadingParser() = default;

void ReadingParser::Parse(std::string_view data, int64_t now_us, ReadingSink& sink) {
  Impl& im = *impl_;
  const char* p = data.data();
  const char* const end = p + data.size();
  const char* const readable_end = end + kParsePadding;

  auto reject = [&](std::string_view raw) { sink.OnReject(Reject{im.reason, raw, std::move(im.why)}); };

  // Parses one reading (a whole object) at raw; returns whether it was accepted.
  auto one = [&](std::string_view raw) {
    od::document doc;
    od::object obj;
    auto padded = simdjson::padded_string_view(raw.data(), raw.size(), static_cast<size_t>(readable_end - raw.data()));
    if (auto e = im.parser.iterate(padded).get(doc)) return im.FailJson(e, "");
    if (auto e = doc.get_object().get(obj)) {
      return e == simdjson::INCORRECT_TYPE && IsValidScalar(doc) ? im.Fail(RejectReason::kNotObject, "a reading must be a JSON object")
                                                                 : im.FailJson(e, "");
    }
    if (!im.ParseObject(obj, options_, now_us)) return false;
    if (!AtEnd(doc)) return im.Fail(RejectReason::kNotJson, "not JSON: unexpected text after the reading");
    im.reading.raw = raw;
    return true;
  };

  while (p < end) {
    const char* nl = static_cast<const char*>(std::memchr(p, '\n', static_cast<size_t>(end - p)));
    const char* line_end = nl ? nl : end;
    std::string_view line(p, static_cast<size_t>(line_end - p));
    p = nl ? nl + 1 : end;
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ' || line.back() == '\t')) line.remove_suffix(1);
    // Every JSON whitespace before the reading, '\r' too: the log keeps the reading's text alone.
    while (!line.empty() && (line.front() == ' ' || line.front() == '\t' || line.front() == '\r')) line.remove_prefix(1);
    if (line.empty()) continue;

    if (line.size() > options_.max_reading_bytes) {
      im.Fail(RejectReason::kOversized, fmt::format("line of {} bytes exceeds max_reading_bytes {}", line.size(), options_.max_reading_bytes));
      reject(line);
      continue;
    }
    if (line.front() != '[') {
      if (one(line)) sink.OnReading(im.reading);
      else reject(line);
      continue;
    }
    // An array of readings: find each element's extent, then validate each on its own.
    im.items.clear();
    bool ok = true;
    {
      od::document doc;
      od::array arr;
      auto padded = simdjson::padded_string_view(line.data(), line.size(), static_cast<size_t>(readable_end - line.data()));
      if (auto e = im.parser.iterate(padded).get(doc)) ok = im.FailJson(e, "");
      else if (auto e2 = doc.get_array().get(arr)) ok = im.FailJson(e2, "");
      else {
        for (auto element : arr) {
          od::value v;
          std::string_view raw;
          od::object o;
          if (auto e3 = element.get(v)) { ok = im.FailJson(e3, ""); break; }
          if (v.get_object().get(o)) {
            raw = TrimToken(v.raw_json_token());
            im.items.push_back(raw.empty() ? std::string_view(line) : raw);
            continue;  // not an object: reported below as not_object
          }
          if (auto e4 = o.raw_json().get(raw)) { ok = im.FailJson(e4, ""); break; }
          im.items.push_back(raw);
        }
        if (ok && !AtEnd(doc)) ok = im.Fail(RejectReason::kNotJson, "not JSON: unexpected text after the array");
      }
    }
    if (!ok) {
      reject(line);
      continue;
    }
    for (std::string_view item : im.items) {
      if (one(item)) sink.OnReading(im.reading);
      else reject(item);
    }
  }
}

}  // namespace mare
