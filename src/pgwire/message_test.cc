// The wire protocol's codec and statement text as a client's bytes meet them: framing, lengths
// that lie, truncated fields, parameters that try to become SQL, and positions.
#include <gtest/gtest.h>

#include <cstring>

#include "pgwire/connection.h"
#include "pgwire/message.h"
#include "pgwire/pg_types.h"
#include "pgwire/statement_text.h"

namespace mare::pgwire {
namespace {

std::string Be32(uint32_t v) {
  std::string s(4, '\0');
  for (int k = 0; k < 4; ++k) s[k] = static_cast<char>(v >> (24 - 8 * k));
  return s;
}

Result<size_t> Length(uint32_t v, size_t max) {
  std::string b = Be32(v);
  return BodyLength(reinterpret_cast<const unsigned char*>(b.data()), max);
}

TEST(PgwireMessage, WriterFramesWithLengthCountingItself) {
  std::string out;
  MessageWriter w(&out);
  w.Begin('Z');
  w.Byte('I');
  w.End();
  EXPECT_EQ(out, std::string("Z\0\0\0\x05I", 6));
  out.clear();
  w.Begin('C');
  w.CString("SELECT 3");
  w.End();
  EXPECT_EQ(out.size(), 1 + 4 + 9u);
  EXPECT_EQ(out.substr(1, 4), Be32(13));
  EXPECT_EQ(out.back(), '\0');
}

TEST(PgwireMessage, IntegersAreBigEndian) {
  std::string out;
  MessageWriter w(&out);
  w.Int16(-2);
  w.Int32(0x01020304);
  w.Int64(-1);
  EXPECT_EQ(out.substr(0, 2), std::string("\xff\xfe", 2));
  EXPECT_EQ(out.substr(2, 4), std::string("\x01\x02\x03\x04", 4));
  EXPECT_EQ(out.substr(6), std::string(8, '\xff'));
  MessageReader r(out);
  int16_t a;
  int32_t b;
  ASSERT_TRUE(r.Int16(&a));
  ASSERT_TRUE(r.Int32(&b));
  EXPECT_EQ(a, -2);
  EXPECT_EQ(b, 0x01020304);
}

TEST(PgwireMessage, LengthBelowFourOrAboveTheLimitIsRefusedBeforeAllocating) {
  EXPECT_FALSE(Length(0, 1 << 20).ok());
  EXPECT_FALSE(Length(3, 1 << 20).ok());
  ASSERT_TRUE(Length(4, 1 << 20).ok());
  EXPECT_EQ(*Length(4, 1 << 20), 0u);
  EXPECT_EQ(*Length(100, 1 << 20), 96u);
  // 0x7fffffff and 0xffffffff claimed: a refusal naming the setting, never a 2-4 GB buffer.
  auto huge = Length(0x7fffffff, 16 << 20);
  ASSERT_FALSE(huge.ok());
  EXPECT_NE(huge.status().message().find("pgwire.max_message_bytes"), std::string::npos);
  EXPECT_FALSE(Length(0xffffffffu, 16 << 20).ok());
  EXPECT_TRUE(Length(16 << 20, 16 << 20).ok());
  EXPECT_FALSE(Length((16 << 20) + 1, 16 << 20).ok());
}

TEST(PgwireMessage, ReaderNeverReadsPastTheBody) {
  std::string body("ab\0cd", 5);  // one string, then an unterminated one
  MessageReader r(body);
  std::string_view s;
  ASSERT_TRUE(r.CString(&s));
  EXPECT_EQ(s, "ab");
  EXPECT_FALSE(r.CString(&s));
  int32_t v;
  EXPECT_FALSE(r.Int32(&v));  // 2 bytes left
  int16_t h;
  EXPECT_TRUE(r.Int16(&h));
  EXPECT_FALSE(r.Int16(&h));
  char c;
  EXPECT_FALSE(r.Byte(&c));
  std::string_view bytes;
  EXPECT_FALSE(r.Bytes(1, &bytes));
  MessageReader empty("");
  EXPECT_FALSE(empty.Bytes(SIZE_MAX, &bytes));  // a claimed parameter length past the end
}

TEST(PgwireMessage, ErrorResponseCarriesSqlstateAndPosition) {
  std::string out;
  WriteError(&out, "ERROR", "42703", "unknown column \"x\"", 8);
  ASSERT_EQ(out[0], 'E');
  std::string body = out.substr(5);
  EXPECT_NE(body.find(std::string("C42703\0", 7)), std::string::npos);
  EXPECT_NE(body.find(std::string("P8\0", 3)), std::string::npos);
  EXPECT_NE(body.find(std::string("SERROR\0", 7)), std::string::npos);
  EXPECT_EQ(body.back(), '\0');
  // A 0 byte in a message cannot cut the fields after it short.
  out.clear();
  WriteError(&out, "ERROR", "42601", std::string("bad\0byte", 8));
  EXPECT_NE(out.find("bad byte"), std::string::npos);
}

TEST(PgwireStatementText, SplitsAtSemicolonsOutsideQuotesAndComments) {
  auto pieces = SplitStatements("SELECT ';' FROM r; -- a; comment\nSELECT \"a;b\" FROM r /* ; */;  ;");
  ASSERT_EQ(pieces.size(), 2u);
  EXPECT_EQ(pieces[0].text, "SELECT ';' FROM r");
  EXPECT_EQ(pieces[0].offset, 0u);
  EXPECT_EQ(pieces[1].offset, 18u);
  EXPECT_TRUE(SplitStatements("  ; -- nothing\n").empty());
}

TEST(PgwireStatementText, ParametersAreQuotedLiteralsNeverSql) {
  auto lit = ParameterLiteral("x'); DROP TABLE readings; --", false, 0, oid::kText);
  ASSERT_TRUE(lit.ok());
  EXPECT_EQ(*lit, "'x''); DROP TABLE readings; --'");
  EXPECT_EQ(*ParameterLiteral("42", false, 0, oid::kInt8), "42");
  EXPECT_EQ(*ParameterLiteral("-5", false, 0, oid::kInt8), "(-5)");
  EXPECT_FALSE(ParameterLiteral("1 OR 1=1", false, 0, oid::kInt8).ok());
  EXPECT_EQ(*ParameterLiteral("", true, 0, oid::kInt8), "NULL");
  EXPECT_EQ(*ParameterLiteral("t", false, 0, oid::kBool), "TRUE");
  EXPECT_EQ(*ParameterLiteral("2024-01-01 00:00:00+00", false, 0, oid::kTimestamptz), "TIMESTAMP '2024-01-01 00:00:00+00:00'");
  // Binary: int4 7, int8 -1, float8 1.5, timestamptz 2000-01-01 + 1 s.
  EXPECT_EQ(*ParameterLiteral(std::string("\0\0\0\x07", 4), false, 1, oid::kInt4), "7");
  EXPECT_EQ(*ParameterLiteral(std::string(8, '\xff'), false, 1, oid::kInt8), "(-1)");
  EXPECT_EQ(*ParameterLiteral(std::string("\x3f\xf8\0\0\0\0\0\0", 8), false, 1, oid::kFloat8), "1.5");
  EXPECT_EQ(*ParameterLiteral(std::string("\0\0\0\0\0\x0f\x42\x40", 8), false, 1, oid::kTimestamptz),
            "TIMESTAMP '2000-01-01 00:00:01'");
  EXPECT_FALSE(ParameterLiteral(std::string("\0\0\x07", 3), false, 1, oid::kInt4).ok());  // wrong size
  // Binary numeric (JDBC's setBigDecimal): ndigits, weight, sign, dscale, base-10000 digits.
  auto numeric = [](std::initializer_list<uint16_t> words) {
    std::string b;
    for (uint16_t w : words) b += static_cast<char>(w >> 8), b += static_cast<char>(w & 0xff);
    return b;
  };
  EXPECT_EQ(*ParameterLiteral(numeric({1, 0, 0, 0, 3}), false, 1, oid::kNumeric), "3");
  EXPECT_EQ(*ParameterLiteral(numeric({2, 0, 0, 2, 10, 5000}), false, 1, oid::kNumeric), "10.50");
  EXPECT_EQ(*ParameterLiteral(numeric({2, 1, 0x4000, 0, 12, 3400}), false, 1, oid::kNumeric), "(-123400)");
  EXPECT_EQ(*ParameterLiteral(numeric({1, 0xffff, 0, 5, 12}), false, 1, oid::kNumeric), "0.00120");
  EXPECT_EQ(*ParameterLiteral(numeric({0, 0, 0, 0}), false, 1, oid::kNumeric), "0");
  EXPECT_EQ(*ParameterLiteral(numeric({1, 2, 0, 0, 1}), false, 1, oid::kNumeric), "100000000");  // 1 * 10000^2
  // numeric_send's special values, and float8's: the expressions of mare's SQL that make them.
  EXPECT_EQ(*ParameterLiteral(numeric({0, 0, 0xc000, 0}), false, 1, oid::kNumeric), "(1e308 * 10 - 1e308 * 10)");
  EXPECT_EQ(*ParameterLiteral(numeric({0, 0, 0xd000, 0}), false, 1, oid::kNumeric), "(1e308 * 10)");
  EXPECT_EQ(*ParameterLiteral(numeric({0, 0, 0xf000, 0}), false, 1, oid::kNumeric), "(-1e308 * 10)");
  EXPECT_FALSE(ParameterLiteral(numeric({1, 0, 0xc000, 0, 1}), false, 1, oid::kNumeric).ok());  // NaN with digits
  EXPECT_FALSE(ParameterLiteral(numeric({0, 0, 0x8000, 0}), false, 1, oid::kNumeric).ok());     // no such sign
  EXPECT_EQ(*ParameterLiteral(std::string("\x7f\xf0\0\0\0\0\0\0", 8), false, 1, oid::kFloat8), "(1e308 * 10)");
  EXPECT_EQ(*ParameterLiteral("NaN", false, 0, oid::kFloat8), "(1e308 * 10 - 1e308 * 10)");
  EXPECT_EQ(*ParameterLiteral("-Infinity", false, 0, oid::kNumeric), "(-1e308 * 10)");
  EXPECT_EQ(*ParameterLiteral("inf", false, 0, oid::kFloat4), "(1e308 * 10)");
  EXPECT_FALSE(ParameterLiteral("Infinity", false, 0, oid::kInt8).ok());
  // Integers past their type: 22003's message.
  auto over = ParameterLiteral("9223372036854775808", false, 0, oid::kInt8);
  ASSERT_FALSE(over.ok());
  EXPECT_TRUE(IsOutOfRange(over.status())) << over.status().message();
  EXPECT_EQ(*ParameterLiteral("-9223372036854775808", false, 0, oid::kInt8), "(-9223372036854775807 - 1)");
  EXPECT_EQ(*ParameterLiteral(std::string("\x80\0\0\0\0\0\0\0", 8), false, 1, oid::kInt8), "(-9223372036854775807 - 1)");
  EXPECT_TRUE(IsOutOfRange(ParameterLiteral("2147483648", false, 0, oid::kInt4).status()));
  EXPECT_TRUE(IsOutOfRange(ParameterLiteral("-99999999999999999999999", false, 0, oid::kInt8).status()));
  EXPECT_FALSE(IsOutOfRange(ParameterLiteral("12x", false, 0, oid::kInt8).status()));
  EXPECT_FALSE(ParameterLiteral(numeric({2, 0, 0, 0, 1}), false, 1, oid::kNumeric).ok());      // short
  EXPECT_FALSE(ParameterLiteral(numeric({1, 0, 0, 0, 10000}), false, 1, oid::kNumeric).ok());  // digit past 9999
  EXPECT_FALSE(ParameterLiteral(numeric({1, 30000, 0, 0, 1}), false, 1, oid::kNumeric).ok());  // 10^120000
  EXPECT_FALSE(ParameterLiteral(std::string("a\0b", 3), false, 0, oid::kText).ok());
  // Left open: a number reads as one, anything else as text.
  EXPECT_EQ(*ParameterLiteral("3", false, 0, 0), "3");
  EXPECT_EQ(*ParameterLiteral("north", false, 0, 0), "'north'");
}

TEST(PgwireSessionZone, NamesHoursAndPosixOffsetsAsPostgreSqlReadsThem) {
  std::string shown;
  auto paris = SessionZone::Parse("europe/PARIS", &shown);
  ASSERT_TRUE(paris.ok()) << paris.status().message();
  EXPECT_EQ(shown, "Europe/Paris");  // the tz database's spelling
  const int64_t winter = 1704067200'000000, summer = 1719792000'000000;  // 2024-01-01, 2024-07-01 UTC
  EXPECT_EQ(paris->OffsetSeconds(winter), 3600);
  EXPECT_EQ(paris->OffsetSeconds(summer), 7200);
  // 2024-03-31 02:30 does not exist in Paris: read with the offset before the jump (+01).
  EXPECT_EQ(paris->FromLocal(1711852200'000000), 1711852200'000000 - 3600'000000);
  EXPECT_EQ(paris->FromLocal(winter + 500000), winter - 3600'000000 + 500000);
  auto east = SessionZone::Parse("-7", &shown);  // SET TIME ZONE -7: hours east
  ASSERT_TRUE(east.ok());
  EXPECT_EQ(east->OffsetSeconds(winter), -7 * 3600);
  EXPECT_EQ(shown, "<-07>+07");
  ASSERT_TRUE(SessionZone::Parse("5.5", &shown).ok());
  EXPECT_EQ(shown, "<+05:30>-05:30");
  auto posix = SessionZone::Parse("GMT-02:00", &shown);  // JDBC's GMT+02:00, POSIX sign
  ASSERT_TRUE(posix.ok());
  EXPECT_EQ(posix->OffsetSeconds(summer), 7200);
  EXPECT_EQ(shown, "GMT-02:00");
  auto interval = SessionZone::Parse("INTERVAL '+05:45' HOUR TO MINUTE", &shown);
  ASSERT_TRUE(interval.ok());
  EXPECT_EQ(interval->OffsetSeconds(winter), 5 * 3600 + 45 * 60);
  auto utc = SessionZone::Parse("utc", &shown);
  ASSERT_TRUE(utc.ok());
  EXPECT_TRUE(utc->is_utc());
  EXPECT_EQ(shown, "UTC");
  for (const char* bad : {"Mars/Olympus", "../../etc/passwd", "/etc/localtime", "", "99", "Europe/", "+02:00"}) {
    EXPECT_FALSE(SessionZone::Parse(bad, &shown).ok()) << bad;
  }
  EXPECT_NE(SessionZone::Parse("Mars/Olympus", &shown).status().message().find("\"Mars/Olympus\""), std::string::npos);
}

TEST(PgwireSessionZone, TimestamptzTextCarriesTheSessionOffset) {
  std::string out;
  AppendTimestampText(1704067200'500000, true, &out, 3600);
  EXPECT_EQ(out, "2024-01-01 01:00:00.5+01");
  out.clear();
  AppendTimestampText(1704067200'000000, true, &out, 5 * 3600 + 30 * 60);
  EXPECT_EQ(out, "2024-01-01 05:30:00+05:30");
  out.clear();
  AppendTimestampText(1704067200'000000, true, &out, -(9 * 60 + 21));
  EXPECT_EQ(out, "2023-12-31 23:50:39-00:09:21");
  out.clear();
  AppendTimestampText(INT64_MAX, true, &out, 3600);  // no overflow: written in UTC
  EXPECT_TRUE(out.ends_with("+00")) << out;
  std::string shown;
  auto paris = SessionZone::Parse("Europe/Paris", &shown);
  ASSERT_TRUE(paris.ok());
  // A bound timestamp without an offset is the session's wall-clock time; with one, that instant.
  EXPECT_EQ(*ParameterLiteral("2024-07-01 02:00:00", false, 0, oid::kTimestamptz, &*paris), "TIMESTAMP '2024-07-01 00:00:00'");
  EXPECT_EQ(*ParameterLiteral("2024-07-01 02:00:00+00", false, 0, oid::kTimestamptz, &*paris),
            "TIMESTAMP '2024-07-01 02:00:00+00:00'");
  // Binary timestamp (without time zone) likewise; timestamptz is an instant.
  std::string two_hours("\0\0\0\x01\xad\x27\x48\0", 8);  // 7,200,000,000 us past 2000-01-01
  EXPECT_EQ(*ParameterLiteral(two_hours, false, 1, oid::kTimestamp, &*paris), "TIMESTAMP '2000-01-01 01:00:00'");
  EXPECT_EQ(*ParameterLiteral(two_hours, false, 1, oid::kTimestamptz, &*paris), "TIMESTAMP '2000-01-01 02:00:00'");
}

TEST(PgwireStartup, OptionsCarrySettingsAsPostgreSqlSplitsThem) {
  std::vector<std::pair<std::string, std::string>> got;
  ASSERT_TRUE(ParseStartupOptions("-c TimeZone=Europe/Paris  -capplication_name=my\\ app --client-encoding=UTF8", &got).ok());
  EXPECT_EQ(got, (std::vector<std::pair<std::string, std::string>>{
                     {"TimeZone", "Europe/Paris"}, {"application_name", "my app"}, {"client_encoding", "UTF8"}}));
  EXPECT_FALSE(ParseStartupOptions("-d 5", &got).ok());
  EXPECT_FALSE(ParseStartupOptions("-c TimeZone", &got).ok());
  EXPECT_FALSE(ParseStartupOptions("-c", &got).ok());
}

TEST(PgwireStatementText, BindingKeepsDollarsInsideQuotesAndMapsPositionsBack) {
  auto bound = BindParameters("SELECT '$1', x FROM r WHERE a = $1 AND b = $2", {"'it''s'", "12345"});
  ASSERT_TRUE(bound.ok());
  EXPECT_EQ(bound->sql, "SELECT '$1', x FROM r WHERE a =  'it''s'  AND b =  12345 ");
  // "AND" is byte 35 of the original, 42 of the bound text.
  EXPECT_EQ(bound->sql.substr(42, 3), "AND");
  EXPECT_EQ(bound->OriginalOffset(42), 35u);
  EXPECT_EQ(bound->OriginalOffset(34), 32u);  // inside the literal: the $1
  EXPECT_EQ(bound->OriginalOffset(7), 7u);
  EXPECT_FALSE(BindParameters("SELECT $3", {"1"}).ok());
  EXPECT_EQ(CountParameters("SELECT $2, '$9' -- $8\n, $10"), 10);
}

TEST(PgwireStatementText, PositionsCountCharactersFromOne) {
  std::string sql = "SELECT 'é',\n  bad";
  size_t at = OffsetOf(sql, {2, 3});
  EXPECT_EQ(sql.substr(at, 3), "bad");
  EXPECT_EQ(CharacterPosition(sql, at), 15);  // the é is two bytes, one character
  EXPECT_EQ(OffsetOf(sql, {0, 0}), std::string_view::npos);
}

TEST(PgwireTypes, TextAndBinaryForms) {
  query::ResultColumn ts(query::Type::kTimestamp);
  ts.Append(query::Value::Int(query::Type::kTimestamp, 1704067200'500000));
  std::string out;
  AppendValue(ts, 0, oid::kTimestamptz, false, &out);
  EXPECT_EQ(out, "2024-01-01 00:00:00.5+00");
  out.clear();
  AppendValue(ts, 0, oid::kTimestamptz, true, &out);
  ASSERT_EQ(out.size(), 8u);
  int64_t pg = 0;
  for (char c : out) pg = (pg << 8) | static_cast<unsigned char>(c);
  EXPECT_EQ(pg, 1704067200'500000 - kPgEpochMicros);
  query::ResultColumn d(query::Type::kDouble);
  d.Append(query::Value::Double(0.1));
  out.clear();
  AppendValue(d, 0, oid::kFloat8, false, &out);
  EXPECT_EQ(out, "0.1");
  query::ResultColumn b(query::Type::kBoolean);
  b.Append(query::Value::Int(query::Type::kBoolean, 1));
  out.clear();
  AppendValue(b, 0, oid::kBool, false, &out);
  EXPECT_EQ(out, "t");
  // Timestamps written by hand: fractions without trailing zeros, before 1970, and int8 text.
  out.clear();
  AppendTimestampText(1704067199'000001, true, &out);
  EXPECT_EQ(out, "2023-12-31 23:59:59.000001+00");
  out.clear();
  AppendTimestampText(-1'250000, false, &out);
  EXPECT_EQ(out, "1969-12-31 23:59:58.75");
  out.clear();
  AppendTimestampText(951'782'400'120000, true, &out);
  EXPECT_EQ(out, "2000-02-29 00:00:00.12+00");
  query::ResultColumn i(query::Type::kInteger);
  i.Append(query::Value::Int(query::Type::kInteger, INT64_MIN));
  out.clear();
  AppendValue(i, 0, oid::kInt8, false, &out);
  EXPECT_EQ(out, "-9223372036854775808");
  d.Append(query::Value::Double(-1.2345678901234567e-308));
  out.clear();
  AppendValue(d, 1, oid::kFloat8, false, &out);
  EXPECT_EQ(out, "-1.2345678901234567e-308");
}

}  // namespace
}  // namespace mare::pgwire
