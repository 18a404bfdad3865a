// Blocks: the unit of the store. A block holds one sensor's readings within one UTC hour (at
// most kMaxBlockRows of them), one column chunk per field, with statistics per column so that
// whole-block aggregates need no decoding. RowBuffer is a block's rows before encoding (the
// memtable's and compaction's working form).
//
//   RowBuffer rows(sensor_id);
//   rows.Append(ts, fields...);        // any order
//   rows.SortByTime();
//   EncodedBlock block = EncodeBlock(rows, 0, rows.size());
#pragma once

#include <cstdint>
#include <limits>
#include <memory>
#include <optional>
#include <unordered_map>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/heap_chunk.h"
#include "common/status.h"
#include "store/column.h"

namespace mare::store {

constexpr int64_t kHourMicros = 3'600'000'000;

constexpr int64_t kDayMicros = 24 * kHourMicros;
constexpr size_t kMaxBlockRows = 65'536;

inline int64_t HourOf(int64_t ts) { return ts >= 0 ? ts - ts % kHourMicros : ts - ((ts % kHourMicros) + kHourMicros) % kHourMicros; }
inline int64_t DayOf(int64_t ts) { return ts >= 0 ? ts - ts % kDayMicros : ts - ((ts % kDayMicros) + kDayMicros) % kDayMicros; }

enum class FieldType : uint8_t { kNumber = 1, kText = 2 };

// The store's columns besides ts and sensor_id: a reading's location and its fields. The
// location is kept as two number fields under names no reading field can have.
constexpr std::string_view kLatField = "location.lat";
constexpr std::string_view kLonField = "location.lon";

// The first and last values of a text column. Number columns, most of them, have none and pay
// a null pointer: two strings in every column's statistics were 64 of its 152 bytes, and a
// store's block indexes are what its memory grows with (segment_index.h).
class TextStats {
 public:
  TextStats() = default;
  TextStats(const TextStats& o) : p_(o.p_ ? std::make_unique<Pair>(*o.p_) : nullptr) {}
  TextStats& operator=(const TextStats& o) {
    if (this != &o) p_ = o.p_ ? std::make_unique<Pair>(*o.p_) : nullptr;
    return *this;
  }
  TextStats(TextStats&&) noexcept = default;
  TextStats& operator=(TextStats&&) noexcept = default;

  const std::string& first() const { return p_ ? p_->first : Empty(); }
  const std::string& last() const { return p_ ? p_->last : Empty(); }
  void Set(std::string_view first, std::string_view last) { p_ = std::make_unique<Pair>(Pair{std::string(first), std::string(last)}); }
  // Heap bytes beyond the pointer (the pair, and strings past the small-string buffer), as the
  // allocator's chunks (HeapChunk: 80 for the 64-byte pair).
  size_t HeapBytes() const {
    if (!p_) return 0;
    size_t bytes = HeapChunk(sizeof(Pair));
    if (p_->first.capacity() > 15) bytes += HeapChunk(p_->first.capacity() + 1);
    if (p_->last.capacity() > 15) bytes += HeapChunk(p_->last.capacity() + 1);
    return bytes;
  }

 private:
  struct Pair {
    std::string first, last;
  };
  static const std::string& Empty() {
    static const std::string empty;
    return empty;
  }
  std::unique_ptr<Pair> p_;
};

// Statistics of one column over the rows of a block that have a value. first/last are the
// values at the earliest/latest such row (the earliest-arrived among equal timestamps).
struct ColumnStats {
  uint32_t count = 0;
  int64_t first_ts = 0;
  int64_t last_ts = 0;
  double min = std::numeric_limits<double>::infinity();
  double max = -std::numeric_limits<double>::infinity();
  double sum = 0;
  double m2 = 0;  // sum of squared deviations from the block's mean (for stddev)
  double first = 0;
  double last = 0;
  TextStats text;  // text columns only

  const std::string& first_text() const { return text.first(); }
  const std::string& last_text() const { return text.last(); }
};

struct ColumnMeta {
  uint32_t field = 0;  // store-wide field id (Schema)
  FieldType type = FieldType::kNumber;
  uint32_t offset = 0;  // of the chunk within the block's bytes
  uint32_t length = 0;
  ColumnStats stats;
};

struct BlockMeta {
  uint32_t sensor_id = 0;
  uint32_t rows = 0;
  int64_t min_ts = 0;
  int64_t max_ts = 0;
  uint64_t offset = 0;  // of the block's bytes within its segment file
  uint32_t length = 0;
  uint32_t crc = 0;        // CRC-32 of the block's bytes
  uint32_t ts_length = 0;  // the timestamp chunk comes first
  std::vector<ColumnMeta> columns;  // sorted by field id

  const ColumnMeta* Column(uint32_t field) const {
    for (const auto& c : columns) {
      if (c.field == field) return &c;
      if (c.field > field) break;
    }
    return nullptr;
  }
};

// One sensor's rows, column-wise. Columns are indexed by field id and grow as fields appear.
class RowBuffer {
 public:
  struct Column {
    FieldType type = FieldType::kNumber;
    std::vector<double> numbers;
    std::vector<std::string> texts;
    std::vector<uint8_t> present;
    bool used = false;
  };

  explicit RowBuffer(uint32_t sensor_id = 0) : sensor_id_(sensor_id) {}

  uint32_t sensor_id() const { return sensor_id_; }
  size_t size() const { return ts_.size(); }
  const std::vector<int64_t>& ts() const { return ts_; }
  const std::vector<Column>& columns() const { return columns_; }
  // The row with the greatest timestamp (the last added of those that tie); 0 when empty.
  size_t newest() const { return newest_; }

  // Starts a row; then SetNumber/SetText for its fields.
  void AddRow(int64_t ts);
  // The row holding timestamp ts, if any. O(1) for a reading newer than every row; otherwise a
  // binary search while rows came in time order, else a hash index built on first need.
  std::optional<size_t> Find(int64_t ts);
  // Makes row i hold a new reading of the same time: its values are cleared, and SetNumber/
  // SetText then write to it (a later reading replaces an earlier one whole).
  void ReplaceRow(size_t i);
  // (Inline, as ColumnFor's common case: a bulk load sets every field of every reading.)
  void SetNumber(uint32_t field, double value) {
    Column& c = ColumnFor(field, FieldType::kNumber);
    c.numbers[current_] = value;
    c.present[current_] = 1;
    bytes_ += 9;
  }
  void SetText(uint32_t field, std::string_view value);
  // A new row of numbers alone (a bulk load's plain line): field ids[k] (of numbers, distinct)
  // gets values[k] for each bit k of `present` (at most 64), the others none; the same as
  // AddRow and a SetNumber each, and one pass when the row sets every column the buffer has.
  void AddNumberRow(int64_t ts, std::span<const uint32_t> ids, const double* values, uint64_t present);
  // Appends rows [begin, end) of another buffer.
  void AppendRows(const RowBuffer& other, size_t begin, size_t end);
  // Appends every row of `other` (another buffer of the same fields' ids) column by column, one
  // copy per column rather than a lookup per row and value: for a bulk load's chunks. Its
  // timestamps must be strictly increasing and newer than every row here (the caller checks:
  // no row of `other` may be a second copy of one here). Its texts are moved.
  void AppendNewer(RowBuffer&& other);
  // True when the timestamps strictly increase (no two rows of the same time).
  bool StrictlyIncreasing() const;
  // Room for this many rows in the times and in every column, those to come too: a bulk
  // load's parser knows about how many rows a sensor's hour gets, and growing from nothing
  // was a good part of its time (allocations and copies).
  void Reserve(size_t rows);
  // Stable sort by timestamp.
  void SortByTime();
  size_t MemoryBytes() const { return bytes_; }

 private:
  Column& ColumnFor(uint32_t field, FieldType type) {
    if (field < columns_.size() && columns_[field].used) [[likely]] return columns_[field];
    return AddColumn(field, type);
  }
  Column& AddColumn(uint32_t field, FieldType type);  // the field's first value in this buffer

  uint32_t sensor_id_;
  std::vector<int64_t> ts_;
  size_t newest_ = 0;
  size_t current_ = 0;         // the row SetNumber/SetText write
  bool in_order_ = true;       // rows were added in non-decreasing time
  std::unordered_map<int64_t, uint32_t> row_of_ts_;  // Find's index once rows came out of order
  std::vector<Column> columns_;
  size_t used_columns_ = 0;  // of columns_, those used
  size_t bytes_ = 0;
  size_t reserved_ = 0;  // Reserve's rows, for the columns added later
};

struct EncodedBlock {
  BlockMeta meta;  // offset and crc are set by the segment writer
  std::string bytes;
};

// Encodes rows [begin, end) of a time-sorted buffer.
EncodedBlock EncodeBlock(const RowBuffer& rows, size_t begin, size_t end);

// A block's rows decoded, column by column on demand.
struct DecodedColumn {
  uint32_t field = 0;
  FieldType type = FieldType::kNumber;
  ColumnValues values;
};

// Decodes the timestamp chunk of a block's bytes.
Status DecodeBlockTimestamps(const BlockMeta& meta, std::string_view bytes, std::vector<int64_t>* ts);
// Decodes one column; a field the block lacks decodes as all absent.
Status DecodeBlockColumn(const BlockMeta& meta, std::string_view bytes, uint32_t field, FieldType type, ColumnValues* out);

}  // namespace mare::store
