// A query result's column: the values of one output column in one typed array, as Vec holds
// them while expressions run (integers, timestamps, intervals and booleans as int64, doubles
// as double, texts back to back in one string), and which rows have a value. The executor
// appends a block's selected rows at a time and the formats (format.h) write straight from
// it: no allocation per row or per value.
//
//   ResultColumn c(Type::kDouble);
//   c.Append(vec, sel.data(), sel.size());
//   if (c.IsValid(r)) use(c.Double(r));
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "query/value.h"

namespace mare::query {

struct Vec;

class ResultColumn {
 public:
  explicit ResultColumn(Type type = Type::kNull) : type_(type) {}

  Type type() const { return type_; }
  size_t size() const { return valid_.size(); }
  bool IsValid(size_t r) const { return valid_[r] != 0; }
  // The value of row r, by the column's type (only where IsValid).
  int64_t Int(size_t r) const { return i_[r]; }
  double Double(size_t r) const { return d_[r]; }
  std::string_view Text(size_t r) const {
    size_t begin = r == 0 ? 0 : text_end_[r - 1];
    return std::string_view(text_).substr(begin, text_end_[r] - begin);
  }
  Value Get(size_t r) const;
  // The arrays themselves, for writers that copy a run of rows at once (arrow_writer.h):
  // one byte per row of validity (1: a value), the values (0 where NULL), and for text the
  // values back to back with where each row's value ends.
  const uint8_t* valid_bytes() const { return valid_.data(); }
  const int64_t* ints() const { return i_.data(); }
  const double* doubles() const { return d_.data(); }
  std::string_view text_bytes() const { return text_; }
  const uint64_t* text_ends() const { return text_end_.data(); }
  // <0, 0, >0 as row a sorts before, with or after row b (both with a value).
  int Compare(size_t a, size_t b) const;

  void Reserve(size_t rows);
  // No rows, the memory kept for the next ones.
  void Clear();
  // Appends the rows sel[0..n) of v, a vector of this column's type (a NULL vector of any).
  void Append(const Vec& v, const uint32_t* sel, size_t n);
  void Append(const Value& v);
  // This column's rows order[0..n), in that order.
  ResultColumn Gather(const uint32_t* order, size_t n) const;
  // The memory it holds (capacities), for query.max_memory.
  size_t Bytes() const {
    return valid_.capacity() + (i_.capacity() + d_.capacity() + text_end_.capacity()) * 8 + text_.capacity();
  }

 private:
  bool IsText() const { return type_ == Type::kText; }
  bool IsDouble() const { return type_ == Type::kDouble; }

  Type type_;
  std::vector<uint8_t> valid_;
  std::vector<int64_t> i_;          // every type but double and text
  std::vector<double> d_;           // double
  std::string text_;                // text: the values back to back
  std::vector<uint64_t> text_end_;  // text: where row r's value ends in text_
};

}  // namespace mare::query
