#include "query/format.h"

#include <algorithm>
#include <charconv>
#include <cmath>

#include <fmt/format.h>

#include "common/json_writer.h"
#include "common/time.h"

namespace mare::query {
namespace {

std::string Timestamp(int64_t us) {
  std::string s = FormatTimestamp(us);  // always six fraction digits
  if (s.size() > 8 && s.compare(s.size() - 8, 8, ".000000Z") == 0) s.replace(s.size() - 8, 8, "Z");
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
