// NativeBlock: the rows of a batch, encoded row by row in RowBinary as the sink builds them, laid
// out again as one block of ClickHouse's Native format (each column's values together), in the
// order of the table's key. The server takes such a block as it is, without parsing rows or
// sorting them, which is most of its work on a RowBinary insert (docs/formats/clickhouse.md,
// "Native, byte by byte").
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"

namespace mare::sinks::clickhouse {

class NativeBlock {
 public:
  // `columns`: (name, type) in the rows' order, as in the INSERT's column list; the first
  // `key_columns` are the table's ORDER BY. Types: (U)Int8/16/32/64, Float32/64, DateTime (with
  // or without a time zone), String, Nullable and Array of those; InvalidArgument for another.
  static Result<NativeBlock> Make(std::vector<std::pair<std::string, std::string>> columns, size_t key_columns);

  // The indexes of the rows (`rows` RowBinary, row i ending at row_ends[i]) ordered by the key
  // columns; rows with equal keys keep their order, so that the last of two copies stays the
  // one ReplacingMergeTree keeps. Corruption when a row does not hold the columns.
  Status Order(std::string_view rows, const std::vector<size_t>& row_ends, std::vector<uint32_t>* order);

  // The `count` RowBinary rows of `rows` as one Native block, into *out (cleared first).
  // Corruption when the bytes are not `count` rows of the columns.
  Status Encode(std::string_view rows, size_t count, std::string* out);
  // The rows `order` names (`rows` RowBinary, row i ending at row_ends[i]), in that order, as one
  // Native block: what Order gave, or a part of it.
  Status Encode(std::string_view rows, const std::vector<size_t>& row_ends, std::span<const uint32_t> order,
                std::string* out);

 private:
  enum class Kind : uint8_t { kUnsigned, kSigned, kFloat, kString };
  struct Column {
    std::string name;
    std::string type;
    Kind kind = Kind::kUnsigned;
    size_t width = 0;  // bytes of a fixed-width value; 0 for String
    bool nullable = false;
    bool array = false;
  };
  NativeBlock() = default;
  static Result<Column> Parse(std::string name, std::string type);
  // `row_start(i)`: where the i-th row to encode starts; when `contiguous`, each row follows the
  // one before and the rows end with `rows`.
  template <typename RowStart>
  Status Encode(std::string_view rows, size_t count, RowStart row_start, bool contiguous, std::string* out);

  std::vector<Column> columns_;
  size_t key_columns_ = 0;
  bool fixed_key_ = false;  // the key's columns are fixed-width values of fixed_key_width_ bytes, 16 at most
  size_t fixed_key_width_ = 0;
  // Reused per block: each column's streams. Nullable: the null map, then the values; Array: the
  // offsets, then the elements; otherwise the values only (in `values`).
  std::vector<std::string> maps_;
  std::vector<std::string> values_;
  std::vector<uint64_t> elements_;
  // Order's, for a fixed-width key: the key as two words that order as its values do, then the row.
  struct SortKey {
    uint64_t high, low;
    uint32_t row;
  };
  std::vector<SortKey> sort_keys_;
  // Rows arrive sensor after sensor, each sensor's in time order: a stable counting sort of
  // sort_keys_ by the first key column's value leaves each value's rows in order already (checked;
  // sorted when not), in linear time where std::sort compares each key log n times. False, with
  // sort_keys_ untouched, when the values span a range wider than the rows.
  bool OrderByFirstColumn();
  std::vector<SortKey> sort_scratch_;
  std::vector<uint32_t> bucket_starts_;
};

}  // namespace mare::sinks::clickhouse
