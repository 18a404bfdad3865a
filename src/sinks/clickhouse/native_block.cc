#include "sinks/clickhouse/native_block.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>
#include <numeric>

#include "sinks/clickhouse/row_binary.h"

namespace mare::sinks::clickhouse {
namespace {

namespace rb = row_binary;

bool Strip(std::string_view* type, std::string_view prefix) {
  if (type->size() <= prefix.size() + 1 || !type->starts_with(prefix) || type->back() != ')') return false;
  *type = type->substr(prefix.size(), type->size() - prefix.size() - 1);
  return true;
}

// A LEB128 length at *p (not beyond end); false when cut short or longer than 10 bytes.
bool ReadVarUInt(const char** p, const char* end, uint64_t* v) {
  *v = 0;
  for (int shift = 0; shift < 70 && *p < end; shift += 7) {
    auto byte = static_cast<uint8_t>(*(*p)++);
    *v |= static_cast<uint64_t>(byte & 0x7f) << shift;
    if (!(byte & 0x80)) return true;
  }
  return false;
}

// A fixed-width value's bytes: widths known to the compiler make each a load and a store, where
// memcpy of a width only known at run time is a call per value.
inline void CopyFixed(char* to, const char* from, size_t width) {
  switch (width) {
    case 1: *to = *from; break;
    case 2: std::memcpy(to, from, 2); break;
    case 4: std::memcpy(to, from, 4); break;
    case 8: std::memcpy(to, from, 8); break;
    default: std::memcpy(to, from, width);
  }
}

Status Cut(size_t row) { return Status::Corruption(fmt::format("RowBinary row {} is cut short", row)); }

}  // namespace

Result<NativeBlock::Column> NativeBlock::Parse(std::string name, std::string type) {
  Column c{.name = std::move(name), .type = std::move(type)};
  std::string_view t = c.type;
  c.array = Strip(&t, "Array(");
  c.nullable = Strip(&t, "Nullable(");
  if (c.array && c.nullable) {  // its null map would be per element
    return Status::InvalidArgument(fmt::format("column {}: no Native layout for type {}", c.name, c.type));
  }
  struct Simple {
    std::string_view name;
    Kind kind;
    size_t width;
  };
  static constexpr Simple kSimple[] = {
      {"UInt8", Kind::kUnsigned, 1},  {"UInt16", Kind::kUnsigned, 2}, {"UInt32", Kind::kUnsigned, 4},
      {"UInt64", Kind::kUnsigned, 8}, {"Int8", Kind::kSigned, 1},     {"Int16", Kind::kSigned, 2},
      {"Int32", Kind::kSigned, 4},    {"Int64", Kind::kSigned, 8},    {"Float32", Kind::kFloat, 4},
      {"Float64", Kind::kFloat, 8},   {"Date", Kind::kUnsigned, 2},   {"String", Kind::kString, 0},
  };
  bool datetime = t == "DateTime" || (t.starts_with("DateTime(") && t.ends_with(")"));  // a UInt32 of seconds
  if (datetime) {
    c.kind = Kind::kUnsigned;
    c.width = 4;
    return c;
  }
  for (const Simple& s : kSimple) {
    if (t == s.name) {
      c.kind = s.kind;
      c.width = s.width;
      return c;
    }
  }
  return Status::InvalidArgument(fmt::format("column {}: no Native layout for type {}", c.name, c.type));
}

Result<NativeBlock> NativeBlock::Make(std::vector<std::pair<std::string, std::string>> columns, size_t key_columns) {
  NativeBlock b;
  if (key_columns > columns.size()) return Status::InvalidArgument("more key columns than columns");
  for (auto& [name, type] : columns) {
    auto c = Parse(std::move(name), std::move(type));
    if (!c.ok()) return c.status();
    b.columns_.push_back(std::move(*c));
  }
  for (size_t i = 0; i < key_columns; ++i) {
    if (b.columns_[i].nullable || b.columns_[i].array) {
      return Status::InvalidArgument(fmt::format("key column {} is {}: only plain values are ordered", b.columns_[i].name,
                                                 b.columns_[i].type));
    }
  }
  b.key_columns_ = key_columns;
  b.fixed_key_ = true;
  for (size_t i = 0; i < key_columns; ++i) {
    b.fixed_key_ = b.fixed_key_ && b.columns_[i].kind != Kind::kString;
    b.fixed_key_width_ += b.columns_[i].width;
  }
  b.fixed_key_ = b.fixed_key_ && b.fixed_key_width_ <= 16 && key_columns > 0;
  b.maps_.resize(b.columns_.size());
  b.values_.resize(b.columns_.size());
  return b;
}

Status NativeBlock::Order(std::string_view rows, const std::vector<size_t>& row_ends, std::vector<uint32_t>* order) {
  const size_t n = row_ends.size();
  order->resize(n);
  if (fixed_key_) {
    // A key of fixed-width values of 16 bytes at most (readings': 4 + 4 + 8) is sorted as two
    // unsigned words that order as the values do, made in one pass over the rows, with the row's
    // index last for stability: far fewer cache misses than comparing rows in place.
    std::vector<SortKey>& keys = sort_keys_;
    keys.resize(n);
    for (uint32_t i = 0; i < n; ++i) {
      size_t from = i == 0 ? 0 : row_ends[i - 1];
      if (row_ends[i] < from || row_ends[i] > rows.size() || row_ends[i] - from < fixed_key_width_) return Cut(i);
      const char* p = rows.data() + from;
      uint64_t high = 0, low = 0;  // the key's values one after the other, big-end first
      for (size_t c = 0; c < key_columns_; ++c) {
        const Column& col = columns_[c];
        uint64_t v = 0;
        CopyFixed(reinterpret_cast<char*>(&v), p, col.width);  // little-endian: the low bytes
        p += col.width;
        int bits = static_cast<int>(8 * col.width);
        uint64_t sign = uint64_t{1} << (bits - 1);
        if (col.kind == Kind::kSigned) {
          v ^= sign;  // two's complement to offset binary
        } else if (col.kind == Kind::kFloat) {
          v = (v & sign) ? ~v : v | sign;  // negative: all bits flipped; positive: above them
        }
        if (bits < 64) v &= (uint64_t{1} << bits) - 1;
        high = bits == 64 ? low : (high << bits) | (low >> (64 - bits));
        low = bits == 64 ? v : (low << bits) | v;
      }
      int rest = static_cast<int>(128 - 8 * fixed_key_width_);  // left-aligned, so that keys compare whole
      if (rest >= 64) {
        high = low << (rest - 64);
        low = 0;
      } else if (rest > 0) {
        high = (high << rest) | (low >> (64 - rest));
        low <<= rest;
      }
      keys[i] = {high, low, i};
    }
    auto key_less = [](const SortKey& a, const SortKey& b) {
      if (a.high != b.high) return a.high < b.high;
      if (a.low != b.low) return a.low < b.low;
      return a.row < b.row;
    };
    if (!std::is_sorted(keys.begin(), keys.end(), key_less) && !OrderByFirstColumn()) {
      std::sort(keys.begin(), keys.end(), key_less);
    }
    for (uint32_t i = 0; i < n; ++i) (*order)[i] = sort_keys_[i].row;
    return Status::OK();
  }
  std::iota(order->begin(), order->end(), 0);
  auto row = [&](uint32_t i) { return rows.data() + (i == 0 ? 0 : row_ends[i - 1]); };
  // The key's bytes are checked once here, so that the comparisons below can read them blind.
  for (uint32_t i = 0; i < n; ++i) {
    size_t from = i == 0 ? 0 : row_ends[i - 1];
    if (row_ends[i] < from || row_ends[i] > rows.size()) return Cut(i);
    const char* p = rows.data() + from;
    const char* end = rows.data() + row_ends[i];
    for (size_t c = 0; c < key_columns_; ++c) {
      uint64_t len = columns_[c].width;
      if (columns_[c].kind == Kind::kString && !ReadVarUInt(&p, end, &len)) return Cut(i);
      if (static_cast<uint64_t>(end - p) < len) return Cut(i);
      p += len;
    }
  }
  auto less = [&](uint32_t a, uint32_t b) {
    const char* p = row(a);
    const char* q = row(b);
    for (size_t c = 0; c < key_columns_; ++c) {
      const Column& col = columns_[c];
      if (col.kind == Kind::kString) {
        uint64_t x_len = 0, y_len = 0;
        ReadVarUInt(&p, p + 10, &x_len);
        ReadVarUInt(&q, q + 10, &y_len);
        std::string_view x(p, x_len), y(q, y_len);
        if (x != y) return x < y;
        p += x_len;
        q += y_len;
        continue;
      }
      uint64_t x = 0, y = 0;
      std::memcpy(&x, p, col.width);
      std::memcpy(&y, q, col.width);
      p += col.width;
      q += col.width;
      if (x == y) continue;
      if (col.kind == Kind::kUnsigned) return x < y;
      if (col.kind == Kind::kSigned) {
        int shift = static_cast<int>(64 - 8 * col.width);  // sign-extends the narrower ones
        return static_cast<int64_t>(x << shift) < static_cast<int64_t>(y << shift);
      }
      if (col.width == 4) {
        float f, g;
        std::memcpy(&f, &x, 4);
        std::memcpy(&g, &y, 4);
        if (f != g) return f < g;
      } else {
        double f, g;
        std::memcpy(&f, &x, 8);
        std::memcpy(&g, &y, 8);
        if (f != g) return f < g;
      }
    }
    return false;
  };
  std::stable_sort(order->begin(), order->end(), less);
  return Status::OK();
}

bool NativeBlock::OrderByFirstColumn() {
  std::vector<SortKey>& keys = sort_keys_;
  const size_t n = keys.size();
  const int shift = static_cast<int>(64 - 8 * std::min<size_t>(columns_[0].width, 8));
  auto first = [shift](const SortKey& k) { return shift == 0 ? k.high : k.high >> shift; };
  uint64_t lo = UINT64_MAX, hi = 0;
  for (const SortKey& k : keys) {
    lo = std::min(lo, first(k));
    hi = std::max(hi, first(k));
  }
  // Counts for every value between the least and the greatest: worth it while they are no more
  // than the rows (a sensor's ids are usually a dense range).
  if (n == 0 || hi - lo >= std::max<uint64_t>(n, 1024)) return false;
  std::vector<uint32_t>& starts = bucket_starts_;
  starts.assign(hi - lo + 2, 0);
  for (const SortKey& k : keys) ++starts[first(k) - lo + 1];
  for (size_t b = 1; b < starts.size(); ++b) starts[b] += starts[b - 1];
  std::vector<SortKey>& out = sort_scratch_;
  out.resize(n);
  {
    std::vector<uint32_t> next(starts.begin(), starts.end() - 1);  // stable: rows keep their order in a bucket
    for (const SortKey& k : keys) out[next[first(k) - lo]++] = k;
  }
  auto key_less = [](const SortKey& a, const SortKey& b) {
    if (a.high != b.high) return a.high < b.high;
    if (a.low != b.low) return a.low < b.low;
    return a.row < b.row;
  };
  for (size_t b = 0; b + 1 < starts.size(); ++b) {
    auto from = out.begin() + starts[b], to = out.begin() + starts[b + 1];
    if (!std::is_sorted(from, to, key_less)) std::sort(from, to, key_less);
  }
  keys.swap(out);
  return true;
}

Status NativeBlock::Encode(std::string_view rows, size_t count, std::string* out) {
  return Encode(rows, count, [&](size_t) { return rows.data(); }, true, out);
}

Status NativeBlock::Encode(std::string_view rows, const std::vector<size_t>& row_ends, std::span<const uint32_t> order,
                           std::string* out) {
  for (uint32_t row : order) {
    if (row >= row_ends.size() || row_ends[row] > rows.size() || (row > 0 && row_ends[row - 1] > row_ends[row])) {
      return Status::InvalidArgument(fmt::format("no row {} among {}", row, row_ends.size()));
    }
  }
  return Encode(
      rows, order.size(), [&](size_t i) { return rows.data() + (order[i] == 0 ? 0 : row_ends[order[i] - 1]); }, false, out);
}

template <typename RowStart>
Status NativeBlock::Encode(std::string_view rows, size_t count, RowStart row_start, bool contiguous, std::string* out) {
  // Fixed-width values have their place from the start; the rest are appended.
  for (size_t c = 0; c < columns_.size(); ++c) {
    const Column& col = columns_[c];
    maps_[c].clear();
    values_[c].clear();
    if (col.nullable) maps_[c].resize(count);
    if (col.array) maps_[c].resize(count * 8);
    if (!col.array && col.kind != Kind::kString) values_[c].resize(count * col.width);
  }
  elements_.assign(columns_.size(), 0);  // an Array column's elements so far
  const char* end = rows.data() + rows.size();
  const char* p = contiguous ? rows.data() : nullptr;
  for (size_t r = 0; r < count; ++r) {
    if (!contiguous) p = row_start(r);
    for (size_t c = 0; c < columns_.size(); ++c) {
      const Column& col = columns_[c];
      std::string& values = values_[c];
      if (col.nullable) {
        if (p == end) return Cut(r);
        bool null = *p++ != 0;
        maps_[c][r] = null ? 1 : 0;
        if (null) {  // the values hold a default in its place (already there for a fixed width)
          if (col.kind == Kind::kString) values.push_back(0);
          continue;
        }
      }
      if (!col.array && col.kind != Kind::kString) {
        if (static_cast<size_t>(end - p) < col.width) return Cut(r);
        CopyFixed(values.data() + r * col.width, p, col.width);
        p += col.width;
        continue;
      }
      uint64_t n = 1;
      if (col.array) {
        if (!ReadVarUInt(&p, end, &n)) return Cut(r);
        elements_[c] += n;
        std::memcpy(maps_[c].data() + r * 8, &elements_[c], 8);  // offsets: where each row's elements end
      }
      if (col.kind == Kind::kString) {
        const char* from = p;  // Native keeps each string as RowBinary does: its length, then its bytes
        for (uint64_t i = 0; i < n; ++i) {
          uint64_t len = 0;
          if (!ReadVarUInt(&p, end, &len) || static_cast<uint64_t>(end - p) < len) return Cut(r);
          p += len;
        }
        values.append(from, static_cast<size_t>(p - from));
      } else {
        if (n > static_cast<uint64_t>(end - p) / col.width) return Cut(r);
        values.append(p, n * col.width);
        p += n * col.width;
      }
    }
  }
  if (contiguous && p != end) return Status::Corruption(fmt::format("{} bytes after {} RowBinary rows", end - p, count));
  out->clear();
  size_t size = 20;
  for (size_t c = 0; c < columns_.size(); ++c) size += columns_[c].name.size() + columns_[c].type.size() + 4 + maps_[c].size() + values_[c].size();
  out->reserve(size);
  rb::AppendVarUInt(out, columns_.size());
  rb::AppendVarUInt(out, count);
  for (size_t c = 0; c < columns_.size(); ++c) {
    rb::AppendString(out, columns_[c].name);
    rb::AppendString(out, columns_[c].type);
    out->append(maps_[c]);
    out->append(values_[c]);
  }
  return Status::OK();
}

}  // namespace mare::sinks::clickhouse
