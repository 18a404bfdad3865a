// The number writers of json_writer.h: WriteJsonNumber and AppendJsonNumber write what fmt's
// "{}" writes (the rollups topic's text, docs/formats/rollups.md), WriteDouble what
// std::to_chars writes (query answers), over readings' usual values and any double at all.
#include "common/json_writer.h"

#include <fmt/compile.h>
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <charconv>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <string>

namespace mare {
namespace {

// A double with the bits of b.
double FromBits(uint64_t b) {
  double d;
  std::memcpy(&d, &b, sizeof d);
  return d;
}

void ExpectNumberText(double d) {
  char got[kMaxDoubleChars];
  std::string want = std::isfinite(d) ? fmt::format("{}", d) : "null";
  ASSERT_EQ(want, std::string(got, WriteJsonNumber(got, d))) << fmt::format("{:a}", d);
  if (std::isfinite(d)) {  // the text the processor wrote: fmt compiled, as above
    char old[64];
    ASSERT_EQ(want, std::string(old, fmt::format_to(old, FMT_COMPILE("{}"), d)));
  }
  std::string appended = "x";
  AppendJsonNumber(&appended, d);
  ASSERT_EQ("x" + want, appended);
  char to_chars[64];
  char* end = std::fabs(d) >= 0x1p63 ? std::to_chars(to_chars, to_chars + sizeof to_chars, d, std::chars_format::scientific).ptr
                                      : std::to_chars(to_chars, to_chars + sizeof to_chars, d).ptr;
  ASSERT_EQ(std::string(to_chars, end), std::string(got, WriteDouble(got, d))) << fmt::format("{:a}", d);
}

// Found by fuzzing: 2^64 was written "18446744073709552000", which 64-bit JSON readers refuse as
// an integer out of range. From 2^63 on a double is written in scientific notation.
TEST(JsonWriter, HugeDoublesAreNeverWrittenAsIntegers) {
  auto text = [](double d) {
    char buf[kMaxDoubleChars];
    return std::string(buf, WriteDouble(buf, d));
  };
  EXPECT_EQ(text(0x1p64), "1.8446744073709552e+19");
  EXPECT_EQ(text(-0x1p63), "-9.223372036854776e+18");
  EXPECT_EQ(text(1e300), "1e+300");
  EXPECT_EQ(text(9007199254740992.0), "9007199254740992");  // 2^53: still an int64, fixed is fine
  EXPECT_EQ(text(1e18), "1e+18");                          // shorter in scientific anyway
}

// Found by fuzz/sql (fuzz/corpus/sql/error-quotes-invalid-utf8.sql): an error quoting a statement
// whose bytes are not UTF-8 was not JSON. Well-formed UTF-8 passes unchanged; each byte of a
// malformed sequence becomes U+FFFD.
TEST(JsonWriter, StringsAreAlwaysUtf8) {
  auto json = [](std::string_view s) {
    std::string out;
    AppendJsonString(&out, s);
    return out;
  };
  EXPECT_EQ(json("caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x8C\x8A"), "\"caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x8C\x8A\"");
  EXPECT_EQ(json("temperat\xD3\xD3ure"), "\"temperat\\ufffd\\ufffdure\"");  // a lead byte without its continuation
  EXPECT_EQ(json("\x80"), "\"\\ufffd\"");                          // a continuation byte alone
  EXPECT_EQ(json("\xC0\xAF"), "\"\\ufffd\\ufffd\"");                // an overlong '/'
  EXPECT_EQ(json("\xED\xA0\x80"), "\"\\ufffd\\ufffd\\ufffd\"");      // a UTF-16 surrogate
  EXPECT_EQ(json("\xF4\x90\x80\x80"), "\"\\ufffd\\ufffd\\ufffd\\ufffd\""); // beyond U+10FFFF
  EXPECT_EQ(json("\xE2\x82"), "\"\\ufffd\\ufffd\"");                // cut short at the end
  EXPECT_EQ(json("a\"\\\n\x01"), "\"a\\\"\\\\\\n\\u0001\"");
  // Plain runs are appended whole: escapes and UTF-8 between, first and last.
  EXPECT_EQ(json(""), "\"\"");
  EXPECT_EQ(json("\tab\"cd\\ef\xC3\xA9gh\x7f\r"), "\"\\tab\\\"cd\\\\ef\xC3\xA9gh\x7f\\r\"");
}

TEST(JsonWriter, NumbersAreWrittenAsFmtAndToCharsWriteThem) {
  std::mt19937_64 rng(5);
  for (int i = 0; i < 1'000'000; ++i) {
    // Readings' values: up to eight decimals (two most often), any magnitude around the fast
    // path's bounds (1 and 1e9), either sign.
    int decimals = rng() % 3 == 0 ? 2 : static_cast<int>(rng() % 9);
    double scale = std::pow(10.0, decimals);
    double magnitude = std::pow(10.0, static_cast<double>(rng() % 15) - 2);  // 0.01 to 1e12
    double v = std::round(static_cast<double>(rng() % 2'000'000'000) / 2e9 * magnitude * scale) / scale;
    ExpectNumberText(rng() % 2 ? v : -v);
    // Means and standard deviations: long expansions, as a division or a square root makes.
    double n = static_cast<double>(rng() % 5000 + 1);
    ExpectNumberText(v / n);
    ExpectNumberText(-v / n);
    ExpectNumberText(std::sqrt(std::fabs(v) / n));
    ExpectNumberText(std::sqrt(std::fabs(v)) * n);
    // And any double at all.
    ExpectNumberText(FromBits(rng()));
    if (::testing::Test::HasFatalFailure()) return;
  }
  const double kInf = std::numeric_limits<double>::infinity();
  for (double d : {0.0, -0.0, 1.0, 1.5, 0.01, 0.1, 0.0001, 0.00012, 0.000001, 1e-7, 12.34, 1013.25, 100000.0, 123456.7,
                   999999999.99, 999999999.999999, 1e9, 1e9 + 0.5, 1e9 - 1e-6, 1e15, 1e16, 1.5e16, 1e17, 1e21, 1e22, 1e300,
                   1e-300, 5e-324, 1.7976931348623157e308, 2.2250738585072014e-308, 123456.000001, 1.000001, 9.999999,
                   0.30000000000000004, 42.430035, 1026.06, std::nextafter(1.0, 2.0), std::nextafter(1.0, 0.0),
                   std::nextafter(1e9, 0.0), std::nextafter(1e9, 2e9), kInf, -kInf, std::nan(""), 0.000001, 42.430035,
                   1026.06}) {
    ExpectNumberText(d);
    ExpectNumberText(-d);
  }
}

}  // namespace
}  // namespace mare
