#include "pgwire/pg_types.h"

#include <bit>
#include <charconv>
#include <cmath>
#include <cstring>
#include <vector>

#include <fmt/compile.h>
#include <fmt/format.h>

#include "common/time.h"
#include "query/literal.h"

namespace mare::pgwire {
namespace {

void AppendBigEndian(uint64_t v, int bytes, std::string* out) {
  for (int k = bytes - 1; k >= 0; --k) out->push_back(static_cast<char>(v >> (8 * k)));
}

uint64_t ReadBigEndian(std::string_view b) {
  uint64_t v = 0;
  for (unsigned char c : b) v = (v << 8) | c;
  return v;
}

void AppendDoubleText(double d, std::string* out) {
  if (std::isnan(d)) {
    out->append("NaN");
  } else if (std::isinf(d)) {
    out->append(d > 0 ? "Infinity" : "-Infinity");
  } else {
    // The shortest text that reads back as the same double: PostgreSQL 12+'s default
    // (extra_float_digits = 1).
    // The format compiled in (FMT_COMPILE) and written through a plain pointer: parsing "{}" at
    // run time, and format_to_n's truncating iterator, were most of the time of a text answer
    // of doubles (bench/notebook.py's Q3 over pgwire, perf). 32 bytes hold the longest form
    // ("-2.2250738585072014e-308", 24).
    char b[32];
    char* end = fmt::format_to(b, FMT_COMPILE("{}"), d);
    out->append(b, static_cast<size_t>(end - b));
  }
}

// PostgreSQL's interval text (IntervalStyle postgres): "1 day 02:00:00", "-00:00:01.5".
void AppendIntervalText(int64_t us, std::string* out) {
  bool negative = us < 0;
  uint64_t a = negative ? 0 - static_cast<uint64_t>(us) : static_cast<uint64_t>(us);
  uint64_t days = a / kMicrosPerDay;
  uint64_t rest = a % kMicrosPerDay;
  if (days > 0) fmt::format_to(std::back_inserter(*out), "{}{} day{} ", negative ? "-" : "", days, days == 1 ? "" : "s");
  uint64_t secs = rest / kMicrosPerSecond, frac = rest % kMicrosPerSecond;
  fmt::format_to(std::back_inserter(*out), "{}{:02}:{:02}:{:02}", negative ? "-" : "", secs / 3600, secs / 60 % 60, secs % 60);
  if (frac != 0) {
    std::string f = fmt::format("{:06}", frac);
    while (f.back() == '0') f.pop_back();
    out->push_back('.');
    out->append(f);
  }
}

bool IsNumberText(std::string_view s) {
  if (s.empty() || s.size() > 64) return false;
  size_t i = 0;
  if (s[0] == '-' || s[0] == '+') i = 1;
  bool digits = false, dot = false, exp = false;
  for (; i < s.size(); ++i) {
    char c = s[i];
    if (c >= '0' && c <= '9') {
      digits = true;
    } else if (c == '.' && !dot && !exp) {
      dot = true;
    } else if ((c == 'e' || c == 'E') && digits && !exp) {
      exp = true;
      digits = false;
      if (i + 1 < s.size() && (s[i + 1] == '-' || s[i + 1] == '+')) ++i;
    } else {
      return false;
    }
  }
  return digits;
}

std::string Quoted(std::string_view s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'') out.push_back('\'');
    out.push_back(c);
  }
  out.push_back('\'');
  return out;
}

// A number's text as a literal: parenthesized when negative, so that "x - $1" stays x - (-5).
std::string NumberLiteral(std::string_view s) {
  if (s[0] == '+') s.remove_prefix(1);
  // The smallest int8 has no literal in mare's SQL (its minus applies to 9223372036854775808,
  // which is past int8): the same value as an expression.
  if (s == "-9223372036854775808") return "(-9223372036854775807 - 1)";
  if (s[0] == '-') return "(" + std::string(s) + ")";
  return std::string(s);
}

std::string DoubleLiteral(double d) {
  std::string s = fmt::format("{}", d);
  if (s.find_first_of(".e") == std::string::npos) s += ".0";
  return NumberLiteral(s);
}

// numeric's special values' sign words (PostgreSQL's numeric_send: no digits follow).
constexpr uint16_t kNumericNaN = 0xC000, kNumericPosInf = 0xD000, kNumericNegInf = 0xF000;

// NaN and the infinities have no literal in mare's SQL: these constant expressions make them,
// in floating point as PostgreSQL's float8 does (1e308 * 10 overflows to an infinity).
constexpr std::string_view kInfinityExpr = "(1e308 * 10)";
constexpr std::string_view kNegInfinityExpr = "(-1e308 * 10)";
constexpr std::string_view kNaNExpr = "(1e308 * 10 - 1e308 * 10)";

std::string SpecialDoubleLiteral(double d) {
  if (std::isnan(d)) return std::string(kNaNExpr);
  return std::string(d > 0 ? kInfinityExpr : kNegInfinityExpr);
}

// The words PostgreSQL's float8in and numeric_in take for the special values, any case:
// "NaN", "Infinity", "inf", with a sign for the infinities. False for anything else.
bool SpecialDoubleText(std::string_view s, double* d) {
  std::string v;
  for (char c : s) v.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
  if (v == "nan") {
    *d = std::nan("");
    return true;
  }
  bool negative = !v.empty() && v[0] == '-';
  if (!v.empty() && (v[0] == '-' || v[0] == '+')) v.erase(0, 1);
  if (v == "infinity" || v == "inf") {
    *d = negative ? -HUGE_VAL : HUGE_VAL;
    return true;
  }
  return false;
}

// numeric's binary form (JDBC's setBigDecimal, psycopg's Decimal and ints past int8): int16
// ndigits, int16 weight (of the first digit, in powers of 10000), uint16 sign, int16 dscale
// (digits after the point), then ndigits base-10000 digits; to its decimal text ("NaN",
// "Infinity", "-Infinity" for the special sign words), or "" when the bytes are not one (or
// more than 400 digits either side).
std::string NumericBinaryText(std::string_view b) {
  if (b.size() < 8) return "";
  auto at = [&](size_t k) { return static_cast<uint16_t>(ReadBigEndian(b.substr(2 * k, 2))); };
  int ndigits = static_cast<int16_t>(at(0)), weight = static_cast<int16_t>(at(1)), dscale = static_cast<int16_t>(at(3));
  uint16_t sign = at(2);
  if (sign == kNumericNaN || sign == kNumericPosInf || sign == kNumericNegInf) {
    if (ndigits != 0 || b.size() != 8) return "";
    return sign == kNumericNaN ? "NaN" : sign == kNumericPosInf ? "Infinity" : "-Infinity";
  }
  if (ndigits < 0 || b.size() != 8 + 2 * static_cast<size_t>(ndigits) || (sign != 0 && sign != 0x4000) || dscale < 0 ||
      dscale > 400 || weight > 100 || weight < -101) {
    return "";
  }
  std::vector<int> d(static_cast<size_t>(ndigits));
  for (int i = 0; i < ndigits; ++i) {
    d[i] = at(4 + i);
    if (d[i] > 9999) return "";
  }
  auto digit = [&](int i) { return i >= 0 && i < ndigits ? d[i] : 0; };  // the digit of 10000^(weight - i)
  std::string out = sign == 0x4000 ? "-" : "";
  if (weight < 0) {
    out += "0";
  } else {
    out += std::to_string(digit(0));
    for (int i = 1; i <= weight; ++i) out += fmt::format("{:04}", digit(i));
  }
  if (dscale > 0) {
    std::string fraction;
    for (int i = weight + 1; static_cast<int>(fraction.size()) < dscale; ++i) fraction += fmt::format("{:04}", digit(i));
    out += "." + fraction.substr(0, dscale);
  }
  return out;
}

// A timestamp parameter's text in a form mare's TIMESTAMP literal reads: PostgreSQL writes the
// zone as "+00" or "+05:30"; mare wants "+00:00" (or none, meaning UTC).
// Without an offset, the text is the wall-clock time of the session's zone (as PostgreSQL reads
// timestamptz input), written for mare in UTC.
std::string TimestampLiteral(std::string_view s, const SessionZone* zone) {
  std::string t(s);
  size_t offset = t.find_last_of("+-");
  bool has_offset = (offset != std::string::npos && offset > 10) || (!t.empty() && (t.back() == 'Z' || t.back() == 'z'));
  if (has_offset && t.size() - offset == 3) t += ":00";
  int64_t local = 0;
  std::string why;
  if (!has_offset && zone != nullptr && !zone->is_utc() && query::ParseTimestampLiteral(t, &local, &why)) {
    t.clear();
    AppendTimestampText(zone->FromLocal(local), false, &t);
  }
  return "TIMESTAMP " + Quoted(t);
}

// An integer parameter's text within its type's range (PostgreSQL's 22003 past it): int2, int4
// and int8 (oid as an unsigned 32-bit number).
Status CheckIntegerRange(std::string_view s, int32_t type_oid) {
  if (s.find_first_of(".eE") != std::string_view::npos) return Status::OK();  // refused or rounded by mare
  std::string_view digits = s;
  if (!digits.empty() && digits[0] == '+') digits.remove_prefix(1);
  int64_t v = 0;
  auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), v);
  bool past = ec == std::errc::result_out_of_range;
  int64_t lo = INT64_MIN, hi = INT64_MAX;
  const char* name = "bigint";
  if (type_oid == oid::kInt2) lo = INT16_MIN, hi = INT16_MAX, name = "smallint";
  if (type_oid == oid::kInt4) lo = INT32_MIN, hi = INT32_MAX, name = "integer";
  if (type_oid == oid::kOid) lo = 0, hi = UINT32_MAX, name = "oid";
  (void)end;
  if (past || v < lo || v > hi) return Status::InvalidArgument(fmt::format("value \"{}\" is out of range for type {}", s, name));
  return Status::OK();
}

}  // namespace

int32_t OidOf(query::Type type) {
  switch (type) {
    case query::Type::kBoolean: return oid::kBool;
    case query::Type::kInteger: return oid::kInt8;
    case query::Type::kDouble: return oid::kFloat8;
    case query::Type::kTimestamp: return oid::kTimestamptz;
    case query::Type::kInterval: return oid::kInterval;
    case query::Type::kNull:
    case query::Type::kText: return oid::kText;
  }
  return oid::kText;
}

int16_t TypeLength(int32_t type_oid) {
  switch (type_oid) {
    case oid::kBool: return 1;
    case oid::kInt2: return 2;
    case oid::kInt4:
    case oid::kOid:
    case oid::kFloat4: return 4;
    case oid::kInt8:
    case oid::kFloat8:
    case oid::kTimestamp:
    case oid::kTimestamptz: return 8;
    case oid::kInterval: return 16;
    case oid::kName: return 64;
    default: return -1;
  }
}

std::string_view TypeName(int32_t type_oid) {
  switch (type_oid) {
    case oid::kBool: return "bool";
    case oid::kName: return "name";
    case oid::kInt8: return "int8";
    case oid::kInt2: return "int2";
    case oid::kInt4: return "int4";
    case oid::kText: return "text";
    case oid::kOid: return "oid";
    case oid::kFloat4: return "float4";
    case oid::kFloat8: return "float8";
    case oid::kUnknown: return "unknown";
    case oid::kVarchar: return "varchar";
    case oid::kTimestamp: return "timestamp";
    case oid::kTimestamptz: return "timestamptz";
    case oid::kInterval: return "interval";
    case oid::kNumeric: return "numeric";
    default: return "";
  }
}

int32_t OidByName(std::string_view name) {
  static constexpr std::pair<std::string_view, int32_t> kAliases[] = {
      {"boolean", oid::kBool},          {"bigint", oid::kInt8},
      {"smallint", oid::kInt2},         {"integer", oid::kInt4},
      {"int", oid::kInt4},              {"real", oid::kFloat4},
      {"double precision", oid::kFloat8}, {"character varying", oid::kVarchar},
      {"timestamp without time zone", oid::kTimestamp}, {"timestamp with time zone", oid::kTimestamptz},
  };
  for (const auto& [alias, o] : kAliases) {
    if (name == alias) return o;
  }
  for (int32_t o : {oid::kBool, oid::kName, oid::kInt8, oid::kInt2, oid::kInt4, oid::kText, oid::kOid, oid::kFloat4,
                    oid::kFloat8, oid::kUnknown, oid::kVarchar, oid::kTimestamp, oid::kTimestamptz, oid::kInterval,
                    oid::kNumeric}) {
    if (name == TypeName(o)) return o;
  }
  return 0;
}

void AppendTimestampText(int64_t micros, bool with_zone, std::string* out, int offset_seconds) {
  int64_t local = 0;
  // At the very ends of int64 the offset would overflow: such an instant is written in UTC.
  if (__builtin_add_overflow(micros, offset_seconds * kMicrosPerSecond, &local)) offset_seconds = 0, local = micros;
  CivilTime c = ToCivil(local);
  if (c.year < 0 || c.year > 9999) {
    fmt::format_to(std::back_inserter(*out), "{:04}-{:02}-{:02} {:02}:{:02}:{:02}", c.year, c.month, c.day, c.hour, c.minute,
                   c.second);
  } else {
    // By hand: this runs once per timestamp of a text answer, and fmt's parsing of the format
    // was most of a SELECT *'s server time in text (bench/notebook.py's psycopg line).
    char b[19];
    auto put2 = [&](int at, unsigned v) {
      b[at] = static_cast<char>('0' + v / 10);
      b[at + 1] = static_cast<char>('0' + v % 10);
    };
    put2(0, static_cast<unsigned>(c.year) / 100);
    put2(2, static_cast<unsigned>(c.year) % 100);
    b[4] = '-';
    put2(5, static_cast<unsigned>(c.month));
    b[7] = '-';
    put2(8, static_cast<unsigned>(c.day));
    b[10] = ' ';
    put2(11, static_cast<unsigned>(c.hour));
    b[13] = ':';
    put2(14, static_cast<unsigned>(c.minute));
    b[16] = ':';
    put2(17, static_cast<unsigned>(c.second));
    out->append(b, sizeof b);
  }
  if (c.micros != 0) {
    char f[7] = {'.'};
    auto us = static_cast<uint32_t>(c.micros);
    for (int i = 6; i >= 1; --i, us /= 10) f[i] = static_cast<char>('0' + us % 10);
    int n = 7;
    while (f[n - 1] == '0') --n;
    out->append(f, static_cast<size_t>(n));
  }
  if (with_zone && offset_seconds == 0) {
    out->append("+00");
  } else if (with_zone) {
    AppendOffsetText(offset_seconds, out);
  }
}

void AppendValue(const query::ResultColumn& column, size_t r, int32_t type_oid, bool binary, std::string* out,
                 const SessionZone* zone) {
  query::Type t = column.type();
  if (t == query::Type::kText) {
    out->append(column.Text(r));  // text's binary form is its bytes
    return;
  }
  if (t == query::Type::kDouble) {
    double d = column.Double(r);
    if (binary) {
      AppendBigEndian(std::bit_cast<uint64_t>(d), 8, out);
    } else {
      AppendDoubleText(d, out);
    }
    return;
  }
  int64_t v = column.Int(r);
  switch (type_oid) {
    case oid::kBool:
      if (binary) {
        out->push_back(v != 0 ? 1 : 0);
      } else {
        out->push_back(v != 0 ? 't' : 'f');
      }
      return;
    case oid::kTimestamp:
    case oid::kTimestamptz:
      if (binary) {
        AppendBigEndian(static_cast<uint64_t>(v - kPgEpochMicros), 8, out);
      } else {
        bool tz = type_oid == oid::kTimestamptz;
        AppendTimestampText(v, tz, out, tz && zone != nullptr ? zone->OffsetSeconds(v) : 0);
      }
      return;
    case oid::kInterval:
      if (binary) {
        AppendBigEndian(static_cast<uint64_t>(v), 8, out);  // microseconds, then 0 days, 0 months
        AppendBigEndian(0, 8, out);
      } else {
        AppendIntervalText(v, out);
      }
      return;
    case oid::kInt4:
    case oid::kOid:
      if (binary) {
        AppendBigEndian(static_cast<uint64_t>(v), 4, out);
        return;
      }
      break;
    case oid::kInt2:
      if (binary) {
        AppendBigEndian(static_cast<uint64_t>(v), 2, out);
        return;
      }
      break;
    default:
      if (binary) {
        AppendBigEndian(static_cast<uint64_t>(v), 8, out);
        return;
      }
  }
  fmt::format_int text(v);
  out->append(text.data(), text.size());
}

bool IsOutOfRange(const Status& status) { return status.message().find("is out of range for type") != std::string::npos; }

Result<std::string> ParameterLiteral(std::string_view value, bool is_null, int16_t format, int32_t type_oid,
                                     const SessionZone* zone) {
  if (is_null) return std::string("NULL");
  auto bad = [&](std::string_view what) {
    return Status::InvalidArgument(fmt::format("invalid {} parameter of type {}", what,
                                               TypeName(type_oid).empty() ? std::to_string(type_oid) : TypeName(type_oid)));
  };
  if (format == 1) {
    switch (type_oid) {
      case oid::kBool:
        if (value.size() != 1) return bad("binary");
        return std::string(value[0] != 0 ? "TRUE" : "FALSE");
      case oid::kInt2:
        if (value.size() != 2) return bad("binary");
        return NumberLiteral(std::to_string(static_cast<int16_t>(ReadBigEndian(value))));
      case oid::kInt4:
      case oid::kOid:
        if (value.size() != 4) return bad("binary");
        return NumberLiteral(std::to_string(type_oid == oid::kOid ? static_cast<int64_t>(static_cast<uint32_t>(ReadBigEndian(value)))
                                                                   : static_cast<int64_t>(static_cast<int32_t>(ReadBigEndian(value)))));
      case oid::kInt8:
        if (value.size() != 8) return bad("binary");
        return NumberLiteral(std::to_string(static_cast<int64_t>(ReadBigEndian(value))));
      case oid::kFloat4: {
        if (value.size() != 4) return bad("binary");
        float f = std::bit_cast<float>(static_cast<uint32_t>(ReadBigEndian(value)));
        if (!std::isfinite(f)) return SpecialDoubleLiteral(f);
        return DoubleLiteral(f);
      }
      case oid::kFloat8: {
        if (value.size() != 8) return bad("binary");
        double d = std::bit_cast<double>(ReadBigEndian(value));
        if (!std::isfinite(d)) return SpecialDoubleLiteral(d);
        return DoubleLiteral(d);
      }
      case oid::kNumeric: {
        std::string text = NumericBinaryText(value);
        if (text.empty()) return bad("binary");
        double special = 0;
        if (SpecialDoubleText(text, &special)) return SpecialDoubleLiteral(special);
        return NumberLiteral(text);
      }
      case oid::kTimestamp:
      case oid::kTimestamptz: {
        if (value.size() != 8) return bad("binary");
        int64_t us = static_cast<int64_t>(ReadBigEndian(value));
        if (us > INT64_MAX - kPgEpochMicros || us < INT64_MIN + kPgEpochMicros) return bad("out-of-range");
        us += kPgEpochMicros;
        // timestamp (without time zone) is a wall-clock time: the session zone's.
        if (type_oid == oid::kTimestamp && zone != nullptr) us = zone->FromLocal(us);
        std::string text;
        AppendTimestampText(us, false, &text);
        return "TIMESTAMP " + Quoted(text);
      }
      case 0:
      case oid::kText:
      case oid::kVarchar:
      case oid::kUnknown:
      case oid::kName:
        break;
      default:
        return Status::InvalidArgument(
            fmt::format("binary parameters of type {} are not supported; send it as text", type_oid));
    }
  }
  if (value.find('\0') != std::string_view::npos) return bad("text (a 0 byte)");
  switch (type_oid) {
    case oid::kInt2:
    case oid::kInt4:
    case oid::kInt8:
    case oid::kOid:
    case oid::kFloat4:
    case oid::kFloat8:
    case oid::kNumeric: {
      double special = 0;
      if ((type_oid == oid::kFloat4 || type_oid == oid::kFloat8 || type_oid == oid::kNumeric) &&
          SpecialDoubleText(value, &special)) {
        return SpecialDoubleLiteral(special);
      }
      if (!IsNumberText(value)) return bad("number");
      bool integer = type_oid == oid::kInt2 || type_oid == oid::kInt4 || type_oid == oid::kInt8 || type_oid == oid::kOid;
      if (Status range = integer ? CheckIntegerRange(value, type_oid) : Status::OK(); !range.ok()) return range;
      return NumberLiteral(value);
    }
    case oid::kBool: {
      std::string v(value);
      for (char& c : v) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      if (v == "t" || v == "true" || v == "1" || v == "on" || v == "yes" || v == "y") return std::string("TRUE");
      if (v == "f" || v == "false" || v == "0" || v == "off" || v == "no" || v == "n") return std::string("FALSE");
      return bad("boolean");
    }
    case oid::kTimestamp:
    case oid::kTimestamptz:
      return TimestampLiteral(value, zone);
    case oid::kInterval:
      return "INTERVAL " + Quoted(value);
    case 0:
      // Left open by the client: a number if it reads as one (PostgreSQL would infer it from
      // the context, mare's comparisons take a number next to a number column).
      if (IsNumberText(value)) return NumberLiteral(value);
      return Quoted(value);
    default:
      return Quoted(value);
  }
}

}  // namespace mare::pgwire
