#include "query/format.h"

#include <algorithm>
#include <charconv>
#include <cmath>

#include <fmt/format.h>

#include "common/json_writer.h"
#include "common/time.h"

namespace mare::query {
namespace {

// ISO 8601 UTC without a library call per value: "2024-01-21T10:00:00Z", microseconds only
// when there are any (civil_from_days after Howard Hinnant's date algorithms).
void AppendTimestamp(int64_t us, std::string* out) {
  int64_t secs = us >= 0 ? us / 1'000'000 : -((-us + 999'999) / 1'000'000);
  int64_t micros = us - secs * 1'000'000;
  int64_t days = secs >= 0 ? secs / 86'400 : -((-secs + 86'399) / 86'400);
  int64_t sod = secs - days * 86'400;
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
  if (y < 0 || y > 9999) {
    out->append(FormatTimestamp(us));
    return;
  }
  char buf[32];
  auto two = [&](char* p, int64_t v) {
    p[0] = static_cast<char>('0' + v / 10);
    p[1] = static_cast<char>('0' + v % 10);
  };
  two(buf, y / 100);
  two(buf + 2, y % 100);
  buf[4] = '-';
  two(buf + 5, m);
  buf[7] = '-';
  two(buf + 8, d);
  buf[10] = 'T';
  two(buf + 11, sod / 3600);
  buf[13] = ':';
  two(buf + 14, sod / 60 % 60);
  buf[16] = ':';
  two(buf + 17, sod % 60);
  size_t n = 19;
  if (micros != 0) {
    buf[n++] = '.';
    for (int64_t div = 100'000; div > 0; div /= 10) buf[n++] = static_cast<char>('0' + micros / div % 10);
  }
  buf[n++] = 'Z';
  out->append(buf, n);
}

std::string Timestamp(int64_t us) {
  std::string s;
  AppendTimestamp(us, &s);
  return s;
}

void AppendDouble(double d, std::string* out) {
  char buf[32];
  auto r = std::to_chars(buf, buf + sizeof(buf), d);
  out->append(buf, r.ptr);
}

void AppendJsonValue(const Value& v, std::string* out) {
  if (v.null) {
    out->append("null");
    return;
  }
  switch (v.type) {
    case Type::kDouble:
      if (std::isfinite(v.d)) {
        AppendDouble(v.d, out);
      } else {
        out->append("null");
      }
      return;
    case Type::kInteger:
      out->append(std::to_string(v.i));
      return;
    case Type::kBoolean:
      out->append(v.i ? "true" : "false");
      return;
    case Type::kText:
      AppendJsonString(out, v.s);
      return;
    case Type::kTimestamp:
      out->push_back('"');
      AppendTimestamp(v.i, out);
      out->push_back('"');
      return;
    default:
      AppendJsonString(out, FormatValue(v));
  }
}

}  // namespace

std::string FormatValue(const Value& v) {
  if (v.null) return "";
  switch (v.type) {
    case Type::kDouble: {
      std::string s;
      AppendDouble(v.d, &s);
      return s;
    }
    case Type::kInteger: return std::to_string(v.i);
    case Type::kBoolean: return v.i ? "true" : "false";
    case Type::kTimestamp: return Timestamp(v.i);
    case Type::kInterval: return v.i < 0 ? "-" + FormatDuration(-v.i) : FormatDuration(v.i);
    case Type::kText: return v.s;
    case Type::kNull: return "";
  }
  return "";
}

void WriteJson(const QueryResult& result, double elapsed_ms, std::string* out) {
  out->reserve(out->size() + 256 + result.rows.size() * (result.names.size() * 14 + 4));
  out->append("{\"columns\":[");
  for (size_t c = 0; c < result.names.size(); ++c) {
    if (c > 0) out->push_back(',');
    out->append("{\"name\":");
    AppendJsonString(out, result.names[c]);
    out->append(",\"type\":\"");
    out->append(TypeName(result.types[c]));
    out->append("\"}");
  }
  out->append("],\"rows\":[");
  for (size_t r = 0; r < result.rows.size(); ++r) {
    out->append(r > 0 ? ",[" : "[");
    const auto& row = result.rows[r];
    for (size_t c = 0; c < row.size(); ++c) {
      if (c > 0) out->push_back(',');
      AppendJsonValue(row[c], out);
    }
    out->push_back(']');
  }
  out->append(fmt::format("],\"row_count\":{},\"elapsed_ms\":{:.3f}", result.rows.size(), elapsed_ms));
  const QueryStats& s = result.stats;
  out->append(fmt::format(",\"stats\":{{\"blocks_skipped\":{},\"blocks_from_stats\":{},\"blocks_decoded\":{},\"memtable_rows\":{},\"rows_scanned\":{}}}}}",
                          s.blocks_skipped, s.blocks_from_stats, s.blocks_decoded, s.memtable_rows, s.rows_scanned));
}

void WriteCsv(const QueryResult& result, std::string* out) {
  auto field = [&](const std::string& s) {
    if (s.find_first_of(",\"\r\n") == std::string::npos) {
      out->append(s);
      return;
    }
    out->push_back('"');
    for (char c : s) {
      if (c == '"') out->push_back('"');
      out->push_back(c);
    }
    out->push_back('"');
  };
  for (size_t c = 0; c < result.names.size(); ++c) {
    if (c > 0) out->push_back(',');
    field(result.names[c]);
  }
  out->push_back('\n');
  for (const auto& row : result.rows) {
    for (size_t c = 0; c < row.size(); ++c) {
      if (c > 0) out->push_back(',');
      field(FormatValue(row[c]));
    }
    out->push_back('\n');
  }
}

void WriteNdjson(const QueryResult& result, std::string* out) {
  for (const auto& row : result.rows) {
    out->push_back('{');
    for (size_t c = 0; c < row.size(); ++c) {
      if (c > 0) out->push_back(',');
      AppendJsonString(out, result.names[c]);
      out->push_back(':');
      AppendJsonValue(row[c], out);
    }
    out->append("}\n");
  }
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
