// Column chunks: how one column of one block is encoded (docs/formats/store.md, "Column
// chunk"). Timestamps as delta-of-delta varints; numbers as scaled decimals, bit-packed as
// deltas or against the minimum, or raw doubles when they are not short decimals; text as a
// dictionary with bit-packed indexes. Any chunk is zstd-compressed when that saves an eighth.
//
//   std::string chunk;
//   EncodeNumbers(values, present, &chunk);      // present: one byte per row, or empty: all
//   ColumnValues decoded;
//   Status s = DecodeNumbers(chunk, rows, &decoded);
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace mare::store {

enum class Encoding : uint8_t {
  kTimestamps = 1,  // delta-of-delta, zigzag varints
  kDecimal = 2,     // value = integer / 10^scale, integers bit-packed
  kDouble = 3,      // raw IEEE-754 doubles
  kDictionary = 4,  // text: distinct strings, then bit-packed indexes
};

// Decoded values of a column for the rows of a block. For numbers `numbers` holds a value for
// every row (0 where absent); for text `texts` views into `arena`. `valid` is empty when every
// row has a value, else one byte per row (1: has a value).
struct ColumnValues {
  std::vector<double> numbers;
  std::vector<std::string_view> texts;
  std::vector<uint8_t> valid;
  std::string arena;
  void Clear() {
    numbers.clear();
    texts.clear();
    valid.clear();
    arena.clear();
  }
};

// `ts` must be sorted ascending.
void EncodeTimestamps(std::span<const int64_t> ts, std::string* out);
Status DecodeTimestamps(std::string_view chunk, size_t rows, std::vector<int64_t>* out);

// Of the values with a value, in row order: what a block's column statistics need, computed
// by EncodeNumbers' own passes (ColumnStats' count, min, max, sum and m2; the same bits).
struct NumberSummary {
  size_t count = 0;
  double min = 0;
  double max = 0;
  double sum = 0;
  double m2 = 0;  // sum of squared deviations from sum / count
};

// values[i] is row i's value where present[i] (or every row when present is empty);
// *summary, when given, summarises those values.
void EncodeNumbers(std::span<const double> values, std::span<const uint8_t> present, std::string* out,
                   NumberSummary* summary = nullptr);
Status DecodeNumbers(std::string_view chunk, size_t rows, ColumnValues* out);

void EncodeTexts(std::span<const std::string_view> values, std::span<const uint8_t> present, std::string* out);
Status DecodeTexts(std::string_view chunk, size_t rows, ColumnValues* out);

// The smallest k in [0, 9] such that every value is an integer divided by 10^k, exactly as a
// decimal parser reads it; -1 when there is none (or a value is not finite or too large).
int DecimalScale(std::span<const double> values);

}  // namespace mare::store
