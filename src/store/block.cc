#include "store/block.h"

#include <algorithm>
#include <cstring>
#include <numeric>

namespace mare::store {

void RowBuffer::AddRow(int64_t ts) {
  if (!ts_.empty() && ts < ts_.back()) in_order_ = false;
  if (ts_.empty() || ts >= ts_[newest_]) newest_ = ts_.size();
  if (!row_of_ts_.empty()) row_of_ts_[ts] = static_cast<uint32_t>(ts_.size());
  current_ = ts_.size();
  ts_.push_back(ts);
  bytes_ += 8;
  for (auto& c : columns_) {
    if (!c.used) continue;
    c.present.push_back(0);
    if (c.type == FieldType::kNumber) {
      c.numbers.push_back(0);
    } else {
      c.texts.emplace_back();
    }
  }
}

void RowBuffer::AddNumberRow(int64_t ts, std::span<const uint32_t> ids, const double* values, uint64_t present) {
  const uint64_t all = ids.size() >= 64 ? ~uint64_t{0} : (uint64_t{1} << ids.size()) - 1;
  bool every_column = present == all && used_columns_ == ids.size();
  for (size_t k = 0; every_column && k < ids.size(); ++k) {
    every_column = ids[k] < columns_.size() && columns_[ids[k]].used && columns_[ids[k]].type == FieldType::kNumber;
  }
  if (!every_column) {
    AddRow(ts);
    for (size_t k = 0; k < ids.size(); ++k) {
      if ((present >> k) & 1) SetNumber(ids[k], values[k]);
    }
    return;
  }
  // AddRow's bookkeeping, then each column's value where AddRow would put a 0 to overwrite.
  if (!ts_.empty() && ts < ts_.back()) in_order_ = false;
  if (ts_.empty() || ts >= ts_[newest_]) newest_ = ts_.size();
  if (!row_of_ts_.empty()) row_of_ts_[ts] = static_cast<uint32_t>(ts_.size());
  current_ = ts_.size();
  ts_.push_back(ts);
  for (size_t k = 0; k < ids.size(); ++k) {
    Column& c = columns_[ids[k]];
    c.numbers.push_back(values[k]);
    c.present.push_back(1);
  }
  bytes_ += 8 + 9 * ids.size();
}

std::optional<size_t> RowBuffer::Find(int64_t ts) {
  if (ts_.empty() || ts > ts_[newest_]) return std::nullopt;
  if (in_order_) {
    auto it = std::lower_bound(ts_.begin(), ts_.end(), ts);
    if (it == ts_.end() || *it != ts) return std::nullopt;
    return static_cast<size_t>(it - ts_.begin());
  }
  if (row_of_ts_.empty()) {
    row_of_ts_.reserve(ts_.size() * 2);
    for (size_t i = 0; i < ts_.size(); ++i) row_of_ts_[ts_[i]] = static_cast<uint32_t>(i);
  }
  auto it = row_of_ts_.find(ts);
  if (it == row_of_ts_.end()) return std::nullopt;
  return it->second;
}

void RowBuffer::ReplaceRow(size_t i) {
  for (auto& c : columns_) {
    if (!c.used) continue;
    c.present[i] = 0;
    if (c.type == FieldType::kText) c.texts[i].clear();
  }
  current_ = i;
}

RowBuffer::Column& RowBuffer::AddColumn(uint32_t field, FieldType type) {
  if (field >= columns_.size()) columns_.resize(field + 1);
  Column& c = columns_[field];
  if (!c.used) {
    c.used = true;
    ++used_columns_;
    c.type = type;
    if (reserved_ > ts_.size()) {
      c.present.reserve(reserved_);
      if (type == FieldType::kNumber) {
        c.numbers.reserve(reserved_);
      } else {
        c.texts.reserve(reserved_);
      }
    }
    c.present.assign(ts_.size(), 0);
    if (type == FieldType::kNumber) {
      c.numbers.assign(ts_.size(), 0);
    } else {
      c.texts.assign(ts_.size(), std::string());
    }
  }
  return c;
}

void RowBuffer::SetText(uint32_t field, std::string_view value) {
  Column& c = ColumnFor(field, FieldType::kText);
  c.texts[current_].assign(value);
  c.present[current_] = 1;
  bytes_ += 33 + (value.size() > 15 ? value.size() : 0);
}

void RowBuffer::AppendRows(const RowBuffer& other, size_t begin, size_t end) {
  for (size_t i = begin; i < end; ++i) {
    AddRow(other.ts_[i]);
    for (uint32_t f = 0; f < other.columns_.size(); ++f) {
      const Column& c = other.columns_[f];
      if (!c.used || !c.present[i]) continue;
      if (c.type == FieldType::kNumber) {
        SetNumber(f, c.numbers[i]);
      } else {
        SetText(f, c.texts[i]);
      }
    }
  }
}

void RowBuffer::AppendNewer(RowBuffer&& other) {
  const size_t n0 = ts_.size(), n = other.ts_.size();
  if (n == 0) return;
  for (uint32_t f = 0; f < std::max(columns_.size(), other.columns_.size()); ++f) {
    Column* from = f < other.columns_.size() && other.columns_[f].used ? &other.columns_[f] : nullptr;
    if (f >= columns_.size() || !columns_[f].used) {
      if (from == nullptr) continue;
      AddColumn(f, from->type);  // absent in the rows before: padded as such
    }
    Column& c = columns_[f];
    if (from == nullptr) {
      // A field these rows lack: absent in each.
      c.present.resize(n0 + n, 0);
      if (c.type == FieldType::kNumber) {
        c.numbers.resize(n0 + n, 0);
      } else {
        c.texts.resize(n0 + n);
      }
      continue;
    }
    c.present.insert(c.present.end(), from->present.begin(), from->present.end());
    if (c.type == FieldType::kNumber) {
      c.numbers.insert(c.numbers.end(), from->numbers.begin(), from->numbers.end());
    } else {
      c.texts.insert(c.texts.end(), std::make_move_iterator(from->texts.begin()), std::make_move_iterator(from->texts.end()));
    }
  }
  // The times last: a column new here was padded above to the rows before.
  ts_.insert(ts_.end(), other.ts_.begin(), other.ts_.end());
  newest_ = ts_.size() - 1;
  current_ = newest_;
  if (!row_of_ts_.empty()) {
    for (size_t i = n0; i < ts_.size(); ++i) row_of_ts_[ts_[i]] = static_cast<uint32_t>(i);
  }
  bytes_ += other.bytes_;
}

void RowBuffer::Reserve(size_t rows) {
  reserved_ = rows;
  ts_.reserve(rows);
  for (auto& c : columns_) {
    if (!c.used) continue;
    c.present.reserve(rows);
    if (c.type == FieldType::kNumber) {
      c.numbers.reserve(rows);
    } else {
      c.texts.reserve(rows);
    }
  }
}

bool RowBuffer::StrictlyIncreasing() const {
  for (size_t i = 1; i < ts_.size(); ++i) {
    if (ts_[i] <= ts_[i - 1]) return false;
  }
  return true;
}

void RowBuffer::SortByTime() {
  if (std::is_sorted(ts_.begin(), ts_.end())) return;
  std::vector<uint32_t> order(ts_.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](uint32_t a, uint32_t b) { return ts_[a] < ts_[b]; });
  auto permute = [&](auto& v) {
    auto copy = v;
    for (size_t i = 0; i < order.size(); ++i) v[i] = std::move(copy[order[i]]);
  };
  permute(ts_);
  newest_ = ts_.size() - 1;  // a stable sort puts the newest, last added among ties, last
  current_ = newest_;
  in_order_ = true;
  row_of_ts_.clear();
  for (auto& c : columns_) {
    if (!c.used) continue;
    permute(c.present);
    if (c.type == FieldType::kNumber) {
      permute(c.numbers);
    } else {
      permute(c.texts);
    }
  }
}

namespace {

// A number column's statistics: EncodeNumbers' summary of its values, with the first and last
// of them and their times.
ColumnStats NumberStats(std::span<const int64_t> ts, std::span<const double> v, std::span<const uint8_t> present,
                        const NumberSummary& sum) {
  ColumnStats s;
  if (sum.count == 0) return s;
  size_t first = 0, last = v.size() - 1;
  while (!present[first]) ++first;
  while (!present[last]) --last;
  s.count = static_cast<uint32_t>(sum.count);
  s.first = v[first];
  s.first_ts = ts[first];
  s.last = v[last];
  s.last_ts = ts[last];
  s.min = sum.min;
  s.max = sum.max;
  s.sum = sum.sum;
  s.m2 = sum.m2;
  return s;
}

ColumnStats TextColumnStats(std::span<const int64_t> ts, std::span<const std::string_view> v, std::span<const uint8_t> present) {
  ColumnStats s;
  size_t first = 0;
  for (size_t i = 0; i < v.size(); ++i) {
    if (!present[i]) continue;
    if (s.count == 0) {
      first = i;
      s.first_ts = ts[i];
    }
    s.last_ts = ts[i];
    ++s.count;
  }
  size_t last = 0;
  for (size_t i = v.size(); i-- > 0;) {
    if (present[i]) {
      last = i;
      break;
    }
  }
  if (s.count > 0) s.text.Set(v[first], v[last]);
  return s;
}

}  // namespace

EncodedBlock EncodeBlock(const RowBuffer& rows, size_t begin, size_t end) {
  EncodedBlock block;
  BlockMeta& meta = block.meta;
  size_t n = end - begin;
  std::span<const int64_t> ts(rows.ts().data() + begin, n);
  meta.sensor_id = rows.sensor_id();
  meta.rows = static_cast<uint32_t>(n);
  meta.min_ts = ts.front();
  meta.max_ts = ts.back();
  EncodeTimestamps(ts, &block.bytes);
  meta.ts_length = static_cast<uint32_t>(block.bytes.size());
  std::vector<std::string_view> views;
  for (uint32_t f = 0; f < rows.columns().size(); ++f) {
    const auto& c = rows.columns()[f];
    if (!c.used) continue;
    std::span<const uint8_t> present(c.present.data() + begin, n);
    if (std::memchr(present.data(), 1, n) == nullptr) continue;
    const bool all = std::memchr(present.data(), 0, n) == nullptr;
    ColumnMeta col;
    col.field = f;
    col.type = c.type;
    col.offset = static_cast<uint32_t>(block.bytes.size());
    if (c.type == FieldType::kNumber) {
      std::span<const double> values(c.numbers.data() + begin, n);
      NumberSummary sum;
      EncodeNumbers(values, all ? std::span<const uint8_t>() : present, &block.bytes, &sum);
      col.stats = NumberStats(ts, values, present, sum);
    } else {
      views.assign(c.texts.begin() + static_cast<std::ptrdiff_t>(begin), c.texts.begin() + static_cast<std::ptrdiff_t>(end));
      col.stats = TextColumnStats(ts, views, present);
      EncodeTexts(views, all ? std::span<const uint8_t>() : present, &block.bytes);
    }
    col.length = static_cast<uint32_t>(block.bytes.size() - col.offset);
    meta.columns.push_back(std::move(col));
  }
  meta.length = static_cast<uint32_t>(block.bytes.size());
  return block;
}

Status DecodeBlockTimestamps(const BlockMeta& meta, std::string_view bytes, std::vector<int64_t>* ts) {
  if (meta.ts_length > bytes.size()) return Status::Corruption("block shorter than its timestamp chunk");
  return DecodeTimestamps(bytes.substr(0, meta.ts_length), meta.rows, ts);
}

Status DecodeBlockColumn(const BlockMeta& meta, std::string_view bytes, uint32_t field, FieldType type, ColumnValues* out) {
  const ColumnMeta* c = meta.Column(field);
  if (c == nullptr) {
    out->Clear();
    out->valid.assign(meta.rows, 0);
    if (type == FieldType::kNumber) {
      out->numbers.assign(meta.rows, 0);
    } else {
      out->texts.assign(meta.rows, std::string_view());
    }
    return Status::OK();
  }
  if (static_cast<size_t>(c->offset) + c->length > bytes.size()) return Status::Corruption("block shorter than its column chunk");
  std::string_view chunk = bytes.substr(c->offset, c->length);
  return type == FieldType::kNumber ? DecodeNumbers(chunk, meta.rows, out) : DecodeTexts(chunk, meta.rows, out);
}

}  // namespace mare::store
