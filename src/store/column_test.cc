#include "store/column.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "store/block.h"
#include "store/coding.h"

namespace mare::store {
namespace {

TEST(DecimalScale, FindsTheFewestDecimalsThatReadBackExactly) {
  std::vector<double> a = {20.91, 21.5, 19};
  EXPECT_EQ(DecimalScale(a), 2);
  std::vector<double> b = {3.130123, 42.430456};
  EXPECT_EQ(DecimalScale(b), 6);
  std::vector<double> c = {1, 2, -7};
  EXPECT_EQ(DecimalScale(c), 0);
  std::vector<double> d = {std::sin(1.0)};
  EXPECT_EQ(DecimalScale(d), -1);
  std::vector<double> e = {NAN};
  EXPECT_EQ(DecimalScale(e), -1);
  std::vector<double> f = {1e300};
  EXPECT_EQ(DecimalScale(f), -1);
}

TEST(Timestamps, RoundTripRegularAndIrregularSeries) {
  std::vector<int64_t> ts;
  for (int i = 0; i < 3600; ++i) ts.push_back(1'704'067'200'000'000 + i * 1'000'000LL);
  std::string chunk;
  EncodeTimestamps(ts, &chunk);
  EXPECT_LT(chunk.size(), 100u) << "a regular series compresses to almost nothing";
  std::vector<int64_t> back;
  ASSERT_TRUE(DecodeTimestamps(chunk, ts.size(), &back).ok());
  EXPECT_EQ(back, ts);

  std::mt19937_64 rng(7);
  ts = {-5'000'000, 0, 0, 17, 1'000'000'000'000'000};
  for (int i = 0; i < 1000; ++i) ts.push_back(ts.back() + static_cast<int64_t>(rng() % 5'000'000));
  chunk.clear();
  EncodeTimestamps(ts, &chunk);
  ASSERT_TRUE(DecodeTimestamps(chunk, ts.size(), &back).ok());
  EXPECT_EQ(back, ts);
}

TEST(Numbers, DecimalsRoundTripBitExactly) {
  std::mt19937_64 rng(1);
  std::vector<double> v;
  for (int i = 0; i < 5000; ++i) v.push_back(std::round((15 + 5 * std::sin(i / 500.0) + (rng() % 1000) / 2500.0) * 100) / 100);
  std::string chunk;
  EncodeNumbers(v, {}, &chunk);
  EXPECT_EQ(static_cast<Encoding>(chunk[0]), Encoding::kDecimal);
  EXPECT_LT(chunk.size(), v.size() * 2) << "two-decimal temperatures take under 2 bytes each";
  ColumnValues out;
  ASSERT_TRUE(DecodeNumbers(chunk, v.size(), &out).ok());
  EXPECT_TRUE(out.valid.empty());
  ASSERT_EQ(out.numbers.size(), v.size());
  for (size_t i = 0; i < v.size(); ++i) ASSERT_EQ(out.numbers[i], v[i]) << i;
}

// EncodeNumbers' summary is what a plain pass over the values with a value gives: count, min,
// max and the sum exactly (the same additions in the same order), m2 to rounding (the test's
// own expression may be contracted differently); and the chunk decodes to the values, for a
// decimal column, one of doubles, and one that turns to doubles late (a large value after the
// scale rose).
TEST(Numbers, SummaryOfTheValuesWithAValue) {
  std::mt19937_64 rng(15);
  std::uniform_int_distribution<int> cents(-500000, 500000);
  std::uniform_real_distribution<double> any(-1e3, 1e3);
  for (int kind = 0; kind < 3; ++kind) {
    for (size_t n : {size_t{1}, size_t{2}, size_t{7}, size_t{3600}}) {
      std::vector<double> v(n);
      std::vector<uint8_t> present(n);
      for (size_t i = 0; i < n; ++i) {
        v[i] = kind == 1 ? any(rng) : cents(rng) / 100.0;
        present[i] = (rng() % 5) != 0 || i == 0;
      }
      if (kind == 2) v[0] = 8.5e14;  // fine at scale 0, too large at the scale of 2 a later value needs
      for (bool all : {true, false}) {
        std::span<const uint8_t> p = all ? std::span<const uint8_t>() : std::span<const uint8_t>(present);
        size_t count = 0;
        double lo = std::numeric_limits<double>::infinity(), hi = -lo, sum = 0;
        for (size_t i = 0; i < n; ++i) {
          if (!all && !present[i]) continue;
          ++count;
          lo = std::min(lo, v[i]);
          hi = std::max(hi, v[i]);
          sum += v[i];
        }
        double m2 = 0;
        for (size_t i = 0; i < n; ++i) {
          if (all || present[i]) m2 += (v[i] - sum / count) * (v[i] - sum / count);
        }
        std::string chunk;
        NumberSummary got;
        EncodeNumbers(v, p, &chunk, &got);
        SCOPED_TRACE(fmt::format("kind {} n {} all {}", kind, n, all));
        EXPECT_EQ(got.count, count);
        EXPECT_EQ(got.min, lo);
        EXPECT_EQ(got.max, hi);
        EXPECT_EQ(got.sum, sum);
        EXPECT_NEAR(got.m2, m2, 1e-9 * std::max(1.0, m2));
        if (kind == 2 && n > 2) {
          EXPECT_EQ(static_cast<Encoding>(chunk[0]), Encoding::kDouble);
        }
        std::string without;
        EncodeNumbers(v, p, &without);
        EXPECT_EQ(chunk, without);  // the summary changes nothing of the bytes
        ColumnValues out;
        ASSERT_TRUE(DecodeNumbers(chunk, n, &out).ok());
        for (size_t i = 0; i < n; ++i) {
          if (all || present[i]) {
            ASSERT_EQ(out.numbers[i], v[i]) << i;
          }
        }
      }
    }
  }
}

TEST(Numbers, ArbitraryDoublesAndMissingValues) {
  std::vector<double> v = {std::sin(1.0), 0, -1e-300, 1e300, std::cos(2.0), 5};
  std::vector<uint8_t> present = {1, 0, 1, 1, 1, 0};
  std::string chunk;
  EncodeNumbers(v, present, &chunk);
  EXPECT_EQ(static_cast<Encoding>(chunk[0]), Encoding::kDouble);
  ColumnValues out;
  ASSERT_TRUE(DecodeNumbers(chunk, v.size(), &out).ok());
  ASSERT_EQ(out.valid, present);
  for (size_t i = 0; i < v.size(); ++i) {
    if (present[i]) {
      EXPECT_EQ(out.numbers[i], v[i]);
    }
  }
}

TEST(Numbers, ConstantColumnTakesNoBitsPerValue) {
  std::vector<double> v(4000, 1013.25);
  std::string chunk;
  EncodeNumbers(v, {}, &chunk);
  EXPECT_LT(chunk.size(), 40u);
  ColumnValues out;
  ASSERT_TRUE(DecodeNumbers(chunk, v.size(), &out).ok());
  EXPECT_EQ(out.numbers, v);
}

TEST(Texts, DictionaryRoundTrip) {
  std::vector<std::string_view> v = {"ok", "ok", "degraded", "", "ok", "offline", "x"};
  std::vector<uint8_t> present = {1, 1, 1, 1, 1, 1, 0};
  std::string chunk;
  EncodeTexts(v, present, &chunk);
  ColumnValues out;
  ASSERT_TRUE(DecodeTexts(chunk, v.size(), &out).ok());
  ASSERT_EQ(out.valid, present);
  for (size_t i = 0; i + 1 < v.size(); ++i) EXPECT_EQ(out.texts[i], v[i]);
}

TEST(Chunks, CorruptionIsReportedNotMisread) {
  std::vector<double> v = {1.5, 2.5, 3.5};
  std::string chunk;
  EncodeNumbers(v, {}, &chunk);
  ColumnValues out;
  EXPECT_TRUE(DecodeNumbers(chunk.substr(0, 3), v.size(), &out).IsCorruption());
  EXPECT_TRUE(DecodeNumbers("", v.size(), &out).IsCorruption());
  std::string wrong = chunk;
  wrong[0] = 9;
  EXPECT_TRUE(DecodeNumbers(wrong, v.size(), &out).IsCorruption());
  std::vector<int64_t> ts;
  EXPECT_TRUE(DecodeTimestamps(chunk, 3, &ts).IsCorruption());
}

// Found by fuzz/store_column (fuzz/corpus/store_column/raw-size-without-frame): a zstd chunk whose
// varint claimed 512 MiB made the decoder allocate and zero that much before zstd refused the
// bytes (10 s under ASan). The frame's own size is checked first now.
TEST(Chunks, ARawSizeTheZstdFrameDoesNotSayIsRefused) {
  const std::string chunk("\x04\x01\xff\xff\xff\xff\x01\0\0\0\0\0\0\0", 14);
  ColumnValues out;
  Status s = DecodeTexts(chunk, 1, &out);
  ASSERT_TRUE(s.IsCorruption());
  EXPECT_NE(s.ToString().find("zstd frame's size"), std::string::npos) << s.ToString();
}

// A body above 1 MiB is decompressed into a buffer that grows with what the frame holds: it
// decodes the same, and a truncated frame is refused.
TEST(Texts, ABodyOfMegabytesRoundTripsAndItsTruncationIsRefused) {
  std::vector<std::string> owned;
  for (int i = 0; i < 30000; ++i) owned.push_back(fmt::format("station-{:06}-", i) + std::string(100, 'a' + i % 26));
  std::vector<std::string_view> v(owned.begin(), owned.end());
  std::string chunk;
  EncodeTexts(v, {}, &chunk);
  ASSERT_EQ(chunk[1], 1) << "the body is compressed";
  ColumnValues out;
  ASSERT_TRUE(DecodeTexts(chunk, v.size(), &out).ok());
  ASSERT_EQ(out.texts.size(), v.size());
  for (size_t i = 0; i < v.size(); ++i) ASSERT_EQ(out.texts[i], v[i]);
  EXPECT_TRUE(DecodeTexts(chunk.substr(0, chunk.size() - 7), v.size(), &out).IsCorruption());
  EXPECT_TRUE(DecodeTexts(chunk + std::string(5, '\0'), v.size(), &out).IsCorruption());
}

// Found by fuzz/store_column (fuzz/corpus/store_column/timestamp-deltas-overflow): a damaged
// timestamp chunk whose deltas sum past int64 was a signed overflow (undefined behaviour; the
// ASan+UBSan build stops on it). It decodes, to wrapped times, and intact chunks are unchanged.
TEST(Timestamps, DamagedDeltasWrapInsteadOfOverflowing) {
  std::string chunk = {static_cast<char>(Encoding::kTimestamps), 0};  // uncompressed
  PutVarint(&chunk, ZigZag(std::numeric_limits<int64_t>::max() - 1));
  PutVarint(&chunk, ZigZag(std::numeric_limits<int64_t>::max() / 2));
  PutVarint(&chunk, ZigZag(std::numeric_limits<int64_t>::max() / 2));
  std::vector<int64_t> ts;
  ASSERT_TRUE(DecodeTimestamps(chunk, 3, &ts).ok());
  uint64_t first = std::numeric_limits<int64_t>::max() - 1, delta = std::numeric_limits<int64_t>::max() / 2;
  EXPECT_EQ(ts[1], static_cast<int64_t>(first + delta));
  EXPECT_EQ(ts[2], static_cast<int64_t>(first + delta + 2 * delta));

  std::vector<int64_t> intact = {-3, 0, 1'705'831'200'000'000, 1'705'831'200'000'001, 4'102'444'800'000'000};
  chunk.clear();
  EncodeTimestamps(intact, &chunk);
  ASSERT_TRUE(DecodeTimestamps(chunk, intact.size(), &ts).ok());
  EXPECT_EQ(ts, intact);
}

// Found by fuzz/store_column (fuzz/corpus/store_column/doubles-none-present): a raw-double chunk
// in which no row has a value copied zero bytes to a null pointer (undefined behaviour; the
// ASan+UBSan build stops on it). It decodes to every row absent.
TEST(Numbers, ADoubleChunkWithNoValuesDecodesToAllAbsent) {
  std::string chunk = {static_cast<char>(Encoding::kDouble), 0};  // uncompressed
  PutVarint(&chunk, 0);                                           // no row has a value
  chunk.append(1, '\0');                                          // presence bitmap of 3 rows
  ColumnValues out;
  ASSERT_TRUE(DecodeNumbers(chunk, 3, &out).ok());
  EXPECT_EQ(out.valid, (std::vector<uint8_t>{0, 0, 0}));
  EXPECT_EQ(out.numbers, (std::vector<double>{0, 0, 0}));
}

// Found by fuzz/store_column (fuzz/corpus/store_column/large-then-many-decimals): a large value
// checked at the scale of its time, then a value of more decimals raising the scale, made the
// large one overflow int64 when scaled (undefined behaviour; garbage stored in practice).
TEST(Numbers, ALargeValueBeforeOneOfManyDecimalsIsStoredExactly) {
  std::vector<double> v = {3.9e11, 1e-9, -3.9e11};
  EXPECT_EQ(DecimalScale(v), -1);
  std::string chunk;
  EncodeNumbers(v, {}, &chunk);
  ColumnValues out;
  ASSERT_TRUE(DecodeNumbers(chunk, v.size(), &out).ok());
  EXPECT_EQ(out.numbers, v);
}

TEST(Blocks, StatisticsDescribeTheRowsWithValues) {
  RowBuffer rows(7);
  rows.AddRow(3'000'000);
  rows.SetNumber(0, 20.5);
  rows.SetText(1, "ok");
  rows.AddRow(1'000'000);
  rows.SetNumber(0, 18.25);
  rows.AddRow(2'000'000);
  rows.SetText(1, "low battery");
  rows.SortByTime();
  EncodedBlock block = EncodeBlock(rows, 0, rows.size());
  EXPECT_EQ(block.meta.rows, 3u);
  EXPECT_EQ(block.meta.min_ts, 1'000'000);
  EXPECT_EQ(block.meta.max_ts, 3'000'000);
  const ColumnMeta* t = block.meta.Column(0);
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->stats.count, 2u);
  EXPECT_EQ(t->stats.min, 18.25);
  EXPECT_EQ(t->stats.max, 20.5);
  EXPECT_EQ(t->stats.sum, 38.75);
  EXPECT_EQ(t->stats.first, 18.25);
  EXPECT_EQ(t->stats.first_ts, 1'000'000);
  EXPECT_EQ(t->stats.last, 20.5);
  EXPECT_DOUBLE_EQ(t->stats.m2, 2 * 1.125 * 1.125);
  const ColumnMeta* s = block.meta.Column(1);
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(s->stats.first_text(), "low battery");
  EXPECT_EQ(s->stats.last_text(), "ok");

  std::vector<int64_t> ts;
  ASSERT_TRUE(DecodeBlockTimestamps(block.meta, block.bytes, &ts).ok());
  EXPECT_EQ(ts, (std::vector<int64_t>{1'000'000, 2'000'000, 3'000'000}));
  ColumnValues values;
  ASSERT_TRUE(DecodeBlockColumn(block.meta, block.bytes, 0, FieldType::kNumber, &values).ok());
  EXPECT_EQ(values.valid, (std::vector<uint8_t>{1, 0, 1}));
  EXPECT_EQ(values.numbers[0], 18.25);
  ASSERT_TRUE(DecodeBlockColumn(block.meta, block.bytes, 5, FieldType::kNumber, &values).ok());
  EXPECT_EQ(values.valid, (std::vector<uint8_t>{0, 0, 0})) << "a field the block lacks is absent in every row";
}

}  // namespace
}  // namespace mare::store

namespace mare::store {
namespace {

// LATEST ON takes a memtable buffer's newest row without scanning it: the greatest timestamp,
// the last added among ties, before and after sorting.
TEST(RowBufferNewest, IsTheGreatestTimestampLastAddedAmongTies) {
  RowBuffer rows(7);
  EXPECT_EQ(rows.newest(), 0u);
  int64_t ts[] = {50, 10, 70, 70, 20, 60};
  for (size_t i = 0; i < std::size(ts); ++i) {
    rows.AddRow(ts[i]);
    rows.SetNumber(0, static_cast<double>(i));
    size_t want = 0;
    for (size_t j = 0; j <= i; ++j) {
      if (ts[j] >= ts[want]) want = j;
    }
    EXPECT_EQ(rows.newest(), want) << "after row " << i;
  }
  rows.SortByTime();
  EXPECT_EQ(rows.ts()[rows.newest()], 70);
  EXPECT_EQ(rows.columns()[0].numbers[rows.newest()], 3.0);  // the second 70
  rows.AddRow(65);
  EXPECT_EQ(rows.columns()[0].numbers[rows.newest()], 3.0);
}

}  // namespace
}  // namespace mare::store
