#include "sinks/clickhouse/native_block.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "sinks/clickhouse/tables.h"

namespace mare::sinks::clickhouse {
namespace {

template <typename T>
void Fixed(std::string* out, T v) {
  out->append(reinterpret_cast<const char*>(&v), sizeof(v));
}

Reading Make(uint32_t sensor, int64_t us, bool located, std::vector<NumberField> numbers, std::vector<TextField> texts) {
  Reading r;
  r.sensor_id = sensor;
  r.timestamp_us = us;
  r.has_location = located;
  r.lat = 42.5;
  r.lon = -3.25;
  r.numbers = std::move(numbers);
  r.texts = std::move(texts);
  return r;
}

// Two readings as the Native block docs/formats/clickhouse.md describes, written out by hand:
// the column count and row count, then each column's name, type and values together; a Nullable
// its null map then its values (a default under a NULL), an Array its cumulative offsets then
// its elements.
TEST(NativeBlock, TwoReadingsAreTheDocumentedBytes) {
  ReadingsTable table({"humidity"});
  std::string rows;
  ASSERT_TRUE(table.Append(Make(7, 1'700'000'000'123'456, true, {{"humidity", 80.0}, {"wave", 1.5}}, {{"status", "ok"}}), &rows).ok());
  ASSERT_TRUE(table.Append(Make(8, 2'000'000, false, {{"wave", 2.5}, {"seq", 3.0}}, {}), &rows).ok());
  auto block = NativeBlock::Make(table.columns(), ReadingsTable::kKeyColumns);
  ASSERT_TRUE(block.ok()) << block.status().ToString();
  std::string out;
  ASSERT_TRUE(block->Encode(rows, 2, &out).ok());

  std::string want = "\x0a\x02";  // 10 columns, 2 rows
  auto head = [&](std::string_view name, std::string_view type) {
    want.push_back(static_cast<char>(name.size()));
    want += name;
    want.push_back(static_cast<char>(type.size()));
    want += type;
  };
  head("sensor_id", "UInt32");
  Fixed(&want, uint32_t{7}), Fixed(&want, uint32_t{8});
  head("ts", "DateTime('UTC')");
  Fixed(&want, uint32_t{1'700'000'000}), Fixed(&want, uint32_t{2});
  head("ts_us", "Int64");
  Fixed(&want, int64_t{1'700'000'000'123'456}), Fixed(&want, int64_t{2'000'000});
  head("lat", "Nullable(Float64)");
  want += std::string("\x00\x01", 2), Fixed(&want, 42.5), Fixed(&want, 0.0);
  head("lon", "Nullable(Float64)");
  want += std::string("\x00\x01", 2), Fixed(&want, -3.25), Fixed(&want, 0.0);
  head("humidity", "Nullable(Float64)");
  want += std::string("\x00\x01", 2), Fixed(&want, 80.0), Fixed(&want, 0.0);
  head("number_names", "Array(String)");
  Fixed(&want, uint64_t{1}), Fixed(&want, uint64_t{3});
  want += "\x04wave\x04wave\x03seq";
  head("number_values", "Array(Float64)");
  Fixed(&want, uint64_t{1}), Fixed(&want, uint64_t{3});
  Fixed(&want, 1.5), Fixed(&want, 2.5), Fixed(&want, 3.0);
  head("text_names", "Array(String)");
  Fixed(&want, uint64_t{1}), Fixed(&want, uint64_t{1});
  want += "\x06status";
  head("text_values", "Array(String)");
  Fixed(&want, uint64_t{1}), Fixed(&want, uint64_t{1});
  want += "\x02ok";
  EXPECT_EQ(out, want);
}

// Rows come back in the key's order (sensor_id, ts, ts_us); two rows with the same key keep the
// order they were read in, so that ReplacingMergeTree keeps the later one as it would have.
TEST(NativeBlock, OrderIsTheKeysAndKeepsCopiesInTheirOrder) {
  ReadingsTable table({});
  std::string rows;
  std::vector<size_t> ends;
  struct Row {
    uint32_t sensor;
    int64_t us;
    double seq;
  };
  std::vector<Row> in = {{9, 5'000'000, 0}, {2, 7'000'000, 1}, {2, 6'500'000, 2}, {300, 1'000'000, 3},
                         {2, 7'000'000, 4}, {9, 4'999'999, 5}, {2, 7'000'000, 6}};
  for (const Row& r : in) {
    ASSERT_TRUE(table.Append(Make(r.sensor, r.us, false, {{"seq", r.seq}}, {}), &rows).ok());
    ends.push_back(rows.size());
  }
  auto block = NativeBlock::Make(table.columns(), ReadingsTable::kKeyColumns);
  ASSERT_TRUE(block.ok());
  std::vector<uint32_t> order;
  ASSERT_TRUE(block->Order(rows, ends, &order).ok());
  EXPECT_EQ(order, (std::vector<uint32_t>{2, 1, 4, 6, 5, 0, 3}));
}

// Many rows, as the sink gets them (sensors in turn, each mostly in time order, some late and
// some repeated) and with sensor ids spread wide: the order is the keys', copies in their order,
// whichever way Order takes (a count per sensor id, or a sort of every key).
TEST(NativeBlock, ManyRowsOrderAsAStableSortOfTheirKeys) {
  for (uint32_t spread : {1u, 1000u, 4'000'000u}) {
    ReadingsTable table({});
    std::string rows;
    std::vector<size_t> ends;
    std::vector<std::pair<uint32_t, int64_t>> keys;
    std::mt19937 random(spread);
    for (int i = 0; i < 20'000; ++i) {
      uint32_t sensor = (1 + i % 100) * spread;
      int64_t us = 1'700'000'000'000'000 + (i / 100) * 1'000'000 + (random() % 50 == 0 ? -3'000'000 : 0) + (random() % 7 == 0 ? 0 : 250);
      if (spread == 4'000'000u && random() % 3 == 0) sensor = static_cast<uint32_t>(random());
      keys.emplace_back(sensor, us);
      ASSERT_TRUE(table.Append(Make(sensor, us, false, {{"seq", static_cast<double>(i)}}, {}), &rows).ok());
      ends.push_back(rows.size());
    }
    auto block = NativeBlock::Make(table.columns(), ReadingsTable::kKeyColumns);
    ASSERT_TRUE(block.ok());
    std::vector<uint32_t> order, want(keys.size());
    ASSERT_TRUE(block->Order(rows, ends, &order).ok());
    std::iota(want.begin(), want.end(), 0);
    std::stable_sort(want.begin(), want.end(), [&](uint32_t a, uint32_t b) { return keys[a] < keys[b]; });
    EXPECT_EQ(order, want) << "sensor ids spread " << spread;
  }
}

// Signed and floating-point keys order as numbers, not as their bytes.
TEST(NativeBlock, SignedAndFloatKeysOrderAsNumbers) {
  std::string rows;
  std::vector<size_t> ends;
  std::vector<std::pair<int32_t, double>> in = {{5, -1.5}, {-3, 2.0}, {5, -20.0}, {-3, -0.5}, {0, 0.0}, {5, 3.25}, {-300, 1.0}};
  for (auto [i, d] : in) {
    Fixed(&rows, i), Fixed(&rows, d);
    ends.push_back(rows.size());
  }
  auto block = NativeBlock::Make({{"i", "Int32"}, {"d", "Float64"}}, 2);
  ASSERT_TRUE(block.ok());
  std::vector<uint32_t> order;
  ASSERT_TRUE(block->Order(rows, ends, &order).ok());
  EXPECT_EQ(order, (std::vector<uint32_t>{6, 3, 1, 4, 2, 0, 5}));
  // The same through the comparison of rows in place (a key with a string takes that way).
  auto with_text = NativeBlock::Make({{"i", "Int32"}, {"d", "Float64"}, {"s", "String"}}, 3);
  ASSERT_TRUE(with_text.ok());
  std::string text_rows;
  std::vector<size_t> text_ends;
  for (auto [i, d] : in) {
    Fixed(&text_rows, i), Fixed(&text_rows, d), text_rows += std::string("\x00", 1);
    text_ends.push_back(text_rows.size());
  }
  std::vector<uint32_t> text_order;
  ASSERT_TRUE(with_text->Order(text_rows, text_ends, &text_order).ok());
  EXPECT_EQ(text_order, order);
}

// A rollup's key holds strings (field, resolution): compared as bytes, shorter first on a tie.
TEST(NativeBlock, RollupsAreOrderedByTheirStringsToo) {
  RollupsTable table;
  std::string rows;
  std::vector<size_t> ends;
  auto add = [&](uint32_t sensor, std::string field, std::string resolution, int64_t start) {
    RollupMessage m;
    m.sensor_id = sensor;
    m.field = std::move(field);
    m.resolution = std::move(resolution);
    m.window_start_us = start;
    m.source = "stream";
    ASSERT_TRUE(table.Append(m, &rows).ok());
    ends.push_back(rows.size());
  };
  add(1, "temperature", "1m", 120'000'000);
  add(1, "temp", "1m", 180'000'000);
  add(1, "temperature", "1h", 0);
  add(0, "wind", "1m", 0);
  add(1, "temperature", "1m", 60'000'000);
  auto block = NativeBlock::Make(table.columns(), RollupsTable::kKeyColumns);
  ASSERT_TRUE(block.ok());
  std::vector<uint32_t> order;
  ASSERT_TRUE(block->Order(rows, ends, &order).ok());
  EXPECT_EQ(order, (std::vector<uint32_t>{3, 1, 2, 4, 0}));
  std::string out;
  ASSERT_TRUE(block->Encode(rows, ends.size(), &out).ok());
  EXPECT_EQ(out.substr(0, 2), "\x0f\x05");  // 15 columns, 5 rows
}

// A part of a batch (after a refusal) is laid out on its own: the offsets of its arrays start again.
TEST(NativeBlock, APartOfTheRowsIsABlockOfItsOwn) {
  ReadingsTable table({});
  std::string rows;
  std::vector<size_t> ends;
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(table.Append(Make(1, 1'000'000 * (i + 1), false, {{"seq", double(i)}, {"x", 1.0}}, {}), &rows).ok());
    ends.push_back(rows.size());
  }
  auto block = NativeBlock::Make(table.columns(), ReadingsTable::kKeyColumns);
  ASSERT_TRUE(block.ok());
  std::string part, alone, all_of_them, in_order;
  std::vector<uint32_t> places = {0, 1, 2};
  ASSERT_TRUE(block->Encode(rows, ends, std::span<const uint32_t>(places).subspan(1), &part).ok());
  std::string last_two = rows.substr(ends[0]);
  ASSERT_TRUE(block->Encode(last_two, 2, &alone).ok());
  EXPECT_EQ(part, alone);
  ASSERT_TRUE(block->Encode(rows, ends, places, &in_order).ok());
  ASSERT_TRUE(block->Encode(rows, 3, &all_of_them).ok());
  EXPECT_EQ(in_order, all_of_them);
  // number_names' offsets: 2 then 4, not 4 then 6.
  std::string offsets;
  Fixed(&offsets, uint64_t{2}), Fixed(&offsets, uint64_t{4});
  std::string head = std::string("\x0cnumber_names\x0d") + "Array(String)";
  size_t at = part.find(head);
  ASSERT_NE(at, std::string::npos);
  EXPECT_EQ(part.substr(at + head.size(), 16), offsets);
}

TEST(NativeBlock, RowsCutShortOrTooLongAreCorruption) {
  ReadingsTable table({});
  std::string rows;
  ASSERT_TRUE(table.Append(Make(1, 1'000'000, true, {{"a", 1.0}}, {{"s", "text"}}), &rows).ok());
  auto block = NativeBlock::Make(table.columns(), ReadingsTable::kKeyColumns);
  ASSERT_TRUE(block.ok());
  std::string out;
  for (size_t cut = 0; cut < rows.size(); ++cut) {
    EXPECT_TRUE(block->Encode(std::string_view(rows).substr(0, cut), 1, &out).IsCorruption()) << cut;
  }
  EXPECT_TRUE(block->Encode(rows + "x", 1, &out).IsCorruption());
  EXPECT_TRUE(block->Encode(rows, 1, &out).ok());
  std::vector<uint32_t> order;
  EXPECT_TRUE(block->Order(std::string_view(rows).substr(0, 10), {10}, &order).IsCorruption());
}

TEST(NativeBlock, TypesWithoutALayoutAreRefused) {
  EXPECT_FALSE(NativeBlock::Make({{"a", "Decimal(9, 2)"}}, 0).ok());
  EXPECT_FALSE(NativeBlock::Make({{"a", "Array(Nullable(Float64))"}}, 0).ok());
  EXPECT_FALSE(NativeBlock::Make({{"a", "Nullable(UInt32)"}}, 1).ok());  // a key column must be plain
  EXPECT_FALSE(NativeBlock::Make({{"a", "UInt32"}}, 2).ok());
  EXPECT_TRUE(NativeBlock::Make({{"a", "Nullable(String)"}, {"b", "DateTime"}, {"c", "Int16"}}, 0).ok());
}

}  // namespace
}  // namespace mare::sinks::clickhouse
