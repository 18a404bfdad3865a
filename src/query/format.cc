#include "query/format.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstring>

#include <fmt/format.h>

#include "common/json_writer.h"
#include "common/time.h"

namespace mare::query {
namespace {

// Appends to a string through a pointer: room is made once per value, not per character, and
// the string is cut to what was written at the end.
class Buffer {
 public:
  explicit Buffer(std::string* s) : s_(s), n_(s->size()) {}
  ~Buffer() { s_->resize(n_); }
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;

  // Where to write at least `bytes` more; Done(end) takes what was written.
  char* Room(size_t bytes) {
    if (n_ + bytes > s_->size()) s_->resize(std::max(n_ + bytes, s_->size() + s_->size() / 2 + 4096));
    return s_->data() + n_;
  }
  void Done(char* end) { n_ = static_cast<size_t>(end - s_->data()); }
  void Append(std::string_view v) {
    char* p = Room(v.size());
    std::memcpy(p, v.data(), v.size());
    Done(p + v.size());
  }
  void Push(char c) {
    char* p = Room(1);
    *p = c;
    Done(p + 1);
  }

 private:
  std::string* s_;
  size_t n_;
};

constexpr size_t kNumberRoom = 48;  // more than any number or in-range timestamp takes

// ISO 8601 UTC: "2024-01-21T10:00:00Z", microseconds only when there are any. Results hold
// runs of timestamps of the same day, so the date part is kept (civil_from_days after Howard
// Hinnant's date algorithms); years outside 0000-9999 are left to FormatTimestamp.
class TimestampWriter {
 public:
  // Writes at p (room for kNumberRoom); null when the year is out of range.
  char* Write(char* p, int64_t us) {
    // Floor division by remainders: negating us (or secs * 1e6 near the ends) overflows at the
    // smallest int64 (fuzz_sql found `ts - INTERVAL '106751990 days' - ...`).
    int64_t secs = us / 1'000'000, micros = us % 1'000'000;
    if (micros < 0) micros += 1'000'000, --secs;
    int64_t days = secs / 86'400, sod = secs % 86'400;
    if (sod < 0) sod += 86'400, --days;
    if (days != day_ || !have_day_) {
      if (!SetDay(days)) return nullptr;
    }
    std::memcpy(p, date_, 11);
    p += 11;
    Two(p, sod / 3600);
    p[2] = ':';
    Two(p + 3, sod / 60 % 60);
    p[5] = ':';
    Two(p + 6, sod % 60);
    p += 8;
    if (micros != 0) {
      *p++ = '.';
      for (int64_t div = 100'000; div > 0; div /= 10) *p++ = static_cast<char>('0' + micros / div % 10);
    }
    *p++ = 'Z';
    return p;
  }

 private:
  static void Two(char* p, int64_t v) {
    p[0] = static_cast<char>('0' + v / 10);
    p[1] = static_cast<char>('0' + v % 10);
  }

  bool SetDay(int64_t days) {
    int64_t z = days + 719'468;
    int64_t era = (z >= 0 ? z : z - 146'096) / 146'097;
    int64_t doe = z - era * 146'097;
    int64_t yoe = (doe - doe / 1460 + doe / 36'524 - doe / 146'096) / 365;
    int64_t y = yoe + era * 400;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    int64_t d = doy - (153 * mp + 2) / 5 + 1;
    int64_t m = mp < 10 ? mp + 3 : mp - 9;
    if (m <= 2) ++y;
    if (y < 0 || y > 9999) return false;
    Two(date_, y / 100);
    Two(date_ + 2, y % 100);
    date_[4] = '-';
    Two(date_ + 5, m);
    date_[7] = '-';
    Two(date_ + 8, d);
    date_[10] = 'T';
    day_ = days;
    have_day_ = true;
    return true;
  }

  bool have_day_ = false;
  int64_t day_ = 0;
  char date_[11] = {};
};

void AppendTimestamp(TimestampWriter& ts, Buffer& out, int64_t us) {
  char* p = out.Room(kNumberRoom);
  char* end = ts.Write(p, us);
  if (end != nullptr) {
    out.Done(end);
  } else {
    out.Append(FormatTimestamp(us));
  }
}

}  // namespace

namespace {

// A result's cells, whichever form it comes in: the writers below are written once for both.
// Rows [begin, begin + rows) of result columns (a whole ResultTable, or a batch of a streamed answer).
class TableCells {
 public:
  explicit TableCells(const ResultTable& t) : TableCells(t.names, t.columns, 0, t.rows) {}
  TableCells(const std::vector<std::string>& names, const std::vector<ResultColumn>& columns, size_t begin, size_t rows)
      : names_(names), columns_(columns), begin_(begin), rows_(rows) {}
  size_t rows() const { return rows_; }
  size_t columns() const { return names_.size(); }
  const std::string& name(size_t c) const { return names_[c]; }
  Type column_type(size_t c) const { return columns_[c].type(); }
  Type type(size_t, size_t c) const { return columns_[c].type(); }
  bool valid(size_t r, size_t c) const { return columns_[c].IsValid(begin_ + r); }
  int64_t i(size_t r, size_t c) const { return columns_[c].Int(begin_ + r); }
  double d(size_t r, size_t c) const { return columns_[c].Double(begin_ + r); }
  std::string_view s(size_t r, size_t c) const { return columns_[c].Text(begin_ + r); }
  Value value(size_t r, size_t c) const { return columns_[c].Get(begin_ + r); }

 private:
  const std::vector<std::string>& names_;
  const std::vector<ResultColumn>& columns_;
  size_t begin_, rows_;
};

class RowCells {
 public:
  explicit RowCells(const QueryResult& r) : r_(r) {}
  size_t rows() const { return r_.rows.size(); }
  size_t columns() const { return r_.names.size(); }
  const std::string& name(size_t c) const { return r_.names[c]; }
  Type column_type(size_t c) const { return r_.types[c]; }
  // The value's own type: a result read back from JSON (`mare query`) may differ from its column's.
  Type type(size_t r, size_t c) const { return r_.rows[r][c].type; }
  bool valid(size_t r, size_t c) const { return c < r_.rows[r].size() && !r_.rows[r][c].null; }
  int64_t i(size_t r, size_t c) const { return r_.rows[r][c].i; }
  double d(size_t r, size_t c) const { return r_.rows[r][c].d; }
  std::string_view s(size_t r, size_t c) const { return r_.rows[r][c].s; }
  Value value(size_t r, size_t c) const { return r_.rows[r][c]; }

 private:
  const QueryResult& r_;
};

// A JSON string literal, escaped as AppendJsonString does (RFC 8259); the store's texts are
// UTF-8 already (ingest checked them).
void AppendJsonText(Buffer& out, std::string_view s) {
  char* p = out.Room(6 * s.size() + 2);
  *p++ = '"';
  for (char c : s) p = PutJsonStringByte(p, c);
  *p++ = '"';
  out.Done(p);
}

template <typename Cells>
void AppendJsonCell(const Cells& t, size_t r, size_t c, TimestampWriter& ts, Buffer& out) {
  if (!t.valid(r, c)) {
    out.Append("null");
    return;
  }
  char* p;
  switch (t.type(r, c)) {
    case Type::kDouble: {
      double d = t.d(r, c);
      if (!std::isfinite(d)) {
        out.Append("null");
        return;
      }
      p = out.Room(kNumberRoom);
      out.Done(WriteDouble(p, d));
      return;
    }
    case Type::kInteger:
      p = out.Room(kNumberRoom);
      out.Done(std::to_chars(p, p + kNumberRoom, t.i(r, c)).ptr);
      return;
    case Type::kBoolean:
      out.Append(t.i(r, c) ? "true" : "false");
      return;
    case Type::kText:
      AppendJsonText(out, t.s(r, c));
      return;
    case Type::kTimestamp:
      out.Push('"');
      AppendTimestamp(ts, out, t.i(r, c));
      out.Push('"');
      return;
    default:
      AppendJsonText(out, FormatValue(t.value(r, c)));
  }
}

template <typename Cells>
void JsonOf(const Cells& t, const QueryStats& stats, double elapsed_ms, std::string* s) {
  s->reserve(s->size() + 256 + t.rows() * (t.columns() * 14 + 4));
  Buffer out(s);
  TimestampWriter ts;
  out.Append("{\"columns\":[");
  for (size_t c = 0; c < t.columns(); ++c) {
    if (c > 0) out.Push(',');
    out.Append("{\"name\":");
    AppendJsonText(out, t.name(c));
    out.Append(",\"type\":\"");
    out.Append(TypeName(t.column_type(c)));
    out.Append("\"}");
  }
  out.Append("],\"rows\":[");
  for (size_t r = 0; r < t.rows(); ++r) {
    out.Append(r > 0 ? ",[" : "[");
    for (size_t c = 0; c < t.columns(); ++c) {
      if (c > 0) out.Push(',');
      AppendJsonCell(t, r, c, ts, out);
    }
    out.Push(']');
  }
  out.Append(fmt::format("],\"row_count\":{},\"elapsed_ms\":{:.3f}", t.rows(), elapsed_ms));
  out.Append(fmt::format(",\"stats\":{{\"blocks_skipped\":{},\"blocks_from_stats\":{},\"blocks_decoded\":{},\"memtable_rows\":{},\"rows_scanned\":{}}}}}",
                         stats.blocks_skipped, stats.blocks_from_stats, stats.blocks_decoded, stats.memtable_rows, stats.rows_scanned));
}

// A CSV field, quoted when it holds a comma, quote or line break (RFC 4180).
void AppendCsvText(Buffer& out, std::string_view s) {
  if (s.find_first_of(",\"\r\n") == std::string_view::npos) {
    out.Append(s);
    return;
  }
  char* p = out.Room(2 * s.size() + 2);
  *p++ = '"';
  for (char c : s) {
    if (c == '"') *p++ = '"';
    *p++ = c;
  }
  *p++ = '"';
  out.Done(p);
}

template <typename Cells>
void CsvOf(const Cells& t, std::string* s, bool header = true) {
  s->reserve(s->size() + 64 + t.rows() * (t.columns() * 12 + 1));
  Buffer out(s);
  TimestampWriter ts;
  for (size_t c = 0; header && c < t.columns(); ++c) {
    if (c > 0) out.Push(',');
    AppendCsvText(out, t.name(c));
  }
  if (header) out.Push('\n');
  for (size_t r = 0; r < t.rows(); ++r) {
    for (size_t c = 0; c < t.columns(); ++c) {
      if (c > 0) out.Push(',');
      if (!t.valid(r, c)) continue;
      char* p;
      switch (t.type(r, c)) {
        case Type::kDouble:
          p = out.Room(kNumberRoom);
          out.Done(WriteDouble(p, t.d(r, c)));
          break;
        case Type::kInteger:
          p = out.Room(kNumberRoom);
          out.Done(std::to_chars(p, p + kNumberRoom, t.i(r, c)).ptr);
          break;
        case Type::kBoolean:
          out.Append(t.i(r, c) ? "true" : "false");
          break;
        case Type::kText:
          AppendCsvText(out, t.s(r, c));
          break;
        case Type::kTimestamp:
          AppendTimestamp(ts, out, t.i(r, c));
          break;
        default:
          AppendCsvText(out, FormatValue(t.value(r, c)));
      }
    }
    out.Push('\n');
  }
}

template <typename Cells>
void NdjsonOf(const Cells& t, std::string* s) {
  std::vector<std::string> keys;  // "name": of each column, escaped once
  for (size_t c = 0; c < t.columns(); ++c) {
    std::string key = c > 0 ? "," : "";
    AppendJsonString(&key, t.name(c));
    key.push_back(':');
    keys.push_back(std::move(key));
  }
  Buffer out(s);
  TimestampWriter ts;
  for (size_t r = 0; r < t.rows(); ++r) {
    out.Push('{');
    for (size_t c = 0; c < t.columns(); ++c) {
      out.Append(keys[c]);
      AppendJsonCell(t, r, c, ts, out);
    }
    out.Append("}\n");
  }
}

}  // namespace

std::string FormatValue(const Value& v) {
  if (v.null) return "";
  switch (v.type) {
    case Type::kDouble: {
      char buf[kNumberRoom];
      return std::string(buf, WriteDouble(buf, v.d));
    }
    case Type::kInteger: return std::to_string(v.i);
    case Type::kBoolean: return v.i ? "true" : "false";
    case Type::kTimestamp: {
      std::string s;
      {
        Buffer out(&s);
        TimestampWriter ts;
        AppendTimestamp(ts, out, v.i);
      }
      return s;
    }
    case Type::kInterval: return v.i < 0 ? "-" + FormatDuration(-v.i) : FormatDuration(v.i);
    case Type::kText: return v.s;
    case Type::kNull: return "";
  }
  return "";
}

void WriteJson(const ResultTable& result, double elapsed_ms, std::string* out) {
  JsonOf(TableCells(result), result.stats, elapsed_ms, out);
}
void WriteJson(const QueryResult& result, double elapsed_ms, std::string* out) {
  JsonOf(RowCells(result), result.stats, elapsed_ms, out);
}
void WriteCsv(const ResultTable& result, std::string* out) { CsvOf(TableCells(result), out); }
void WriteCsv(const QueryResult& result, std::string* out) { CsvOf(RowCells(result), out); }
void WriteNdjson(const ResultTable& result, std::string* out) { NdjsonOf(TableCells(result), out); }
void WriteNdjson(const QueryResult& result, std::string* out) { NdjsonOf(RowCells(result), out); }

void WriteCsvHeader(const std::vector<std::string>& names, std::string* out) {
  std::vector<ResultColumn> none(names.size());
  CsvOf(TableCells(names, none, 0, 0), out);
}
void WriteCsvRows(const std::vector<std::string>& names, const std::vector<ResultColumn>& columns, size_t begin, size_t end,
                  std::string* out) {
  CsvOf(TableCells(names, columns, begin, end - begin), out, false);
}
void WriteNdjsonRows(const std::vector<std::string>& names, const std::vector<ResultColumn>& columns, size_t begin, size_t end,
                     std::string* out) {
  NdjsonOf(TableCells(names, columns, begin, end - begin), out);
}

std::string FormatTable(const QueryResult& result) {
  size_t n = result.names.size();
  std::vector<size_t> width(n);
  std::vector<std::vector<std::string>> cells;
  for (size_t c = 0; c < n; ++c) width[c] = result.names[c].size();
  for (const auto& row : result.rows) {
    std::vector<std::string> line;
    for (size_t c = 0; c < n; ++c) {
      line.push_back(row[c].null ? "NULL" : FormatValue(row[c]));
      width[c] = std::max(width[c], line.back().size());
    }
    cells.push_back(std::move(line));
  }
  auto numeric = [&](size_t c) { return result.types[c] == Type::kDouble || result.types[c] == Type::kInteger; };
  std::string out;
  auto emit = [&](const std::vector<std::string>& line, bool header) {
    for (size_t c = 0; c < n; ++c) {
      if (c > 0) out.append(" | ");
      size_t pad = width[c] - line[c].size();
      if (!header && numeric(c)) out.append(pad, ' ');
      out.append(line[c]);
      if (header || !numeric(c)) {
        if (c + 1 < n) out.append(pad, ' ');
      }
    }
    out.push_back('\n');
  };
  emit(result.names, true);
  for (size_t c = 0; c < n; ++c) {
    if (c > 0) out.append("-+-");
    out.append(width[c], '-');
  }
  out.push_back('\n');
  for (const auto& line : cells) emit(line, false);
  out.append(fmt::format("({} row{})\n", result.rows.size(), result.rows.size() == 1 ? "" : "s"));
  return out;
}

std::string ErrorJson(const SqlError& error) {
  std::string out = "{\"error\":";
  AppendJsonString(&out, error.pos.line > 0 ? error.ToString() : error.message);
  out.append(fmt::format(",\"message\":"));
  AppendJsonString(&out, error.message);
  out.append(fmt::format(",\"line\":{},\"column\":{}}}", error.pos.line, error.pos.column));
  return out;
}

}  // namespace mare::query
