// Query answers in the Apache Arrow IPC streaming format (docs/formats/arrow.md), written from
// the specification without an Arrow library: a schema message, record batches copied column by
// column from the result's arrays, then the end-of-stream marker. pyarrow, polars, DuckDB and
// every other Arrow reader take it as it is.
//
//   ArrowStreamWriter arrow(result.names, types);
//   arrow.WriteSchema(&out);
//   for (size_t at = 0; at < result.rows;) {
//     size_t end = ArrowBatchEnd(result.columns, at, result.rows, kArrowBatchRows);
//     arrow.WriteBatch(result.columns, at, end, &out);
//     at = end;
//   }
//   ArrowStreamWriter::WriteEnd(&out);
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "query/executor.h"
#include "query/result.h"
#include "query/value.h"

namespace mare::query {

// Rows in one record batch of a whole answer: large enough that the per-batch metadata is
// negligible, small enough that a reader gets its first rows early.
inline constexpr size_t kArrowBatchRows = 65'536;

class ArrowStreamWriter {
 public:
  // The answer's columns, the schema every batch follows: timestamp as timestamp[us, UTC],
  // integer as int64, double as float64, text as utf8, boolean as bool, interval as
  // duration[us], an untyped NULL column as null. Every field is nullable.
  ArrowStreamWriter(std::vector<std::string> names, std::vector<Type> types);

  // Appends the schema message: first in a stream, once.
  void WriteSchema(std::string* out) const;
  // Appends rows [begin, end) of `columns` (one per name, each of its type) as one record
  // batch. A text column's values in those rows must fit Arrow's 32-bit offsets (below 2 GiB):
  // ArrowBatchEnd picks such an end.
  void WriteBatch(const std::vector<ResultColumn>& columns, size_t begin, size_t end, std::string* out) const;
  // Appends the end-of-stream marker: last in a stream.
  static void WriteEnd(std::string* out);

 private:
  std::vector<std::string> names_;
  std::vector<Type> types_;
};

// Where a batch starting at `begin` ends: after at most max_rows rows and at most `end`, and
// earlier when a text column's values would pass 2 GiB (at least one row, always).
size_t ArrowBatchEnd(const std::vector<ResultColumn>& columns, size_t begin, size_t end, size_t max_rows);

// A whole answer as one stream: the schema, batches of up to kArrowBatchRows rows, the end.
void WriteArrow(const ResultTable& result, std::string* out);

}  // namespace mare::query
