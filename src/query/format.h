// Query results as text: JSON (the HTTP API's default), CSV, NDJSON and the aligned table
// `mare query` prints. Timestamps are ISO 8601 UTC ("2024-01-01T00:00:00Z", with microseconds
// only when there are any); doubles use the shortest text that reads back exactly. Each
// writer takes a result in either form (executor.h) and writes the same text for both.
#pragma once

#include <string>
#include <vector>

#include "query/ast.h"
#include "query/executor.h"

namespace mare::query {

// {"columns":[{"name":..,"type":..}],"rows":[[..]],"row_count":N,"elapsed_ms":X,"stats":{..}}
void WriteJson(const ResultTable& result, double elapsed_ms, std::string* out);
void WriteJson(const QueryResult& result, double elapsed_ms, std::string* out);
// A header line, then one line per row (RFC 4180 quoting; NULL is an empty field).
void WriteCsv(const ResultTable& result, std::string* out);
void WriteCsv(const QueryResult& result, std::string* out);
// One JSON object per row, keyed by column name.
void WriteNdjson(const ResultTable& result, std::string* out);
void WriteNdjson(const QueryResult& result, std::string* out);
// The same CSV and NDJSON for an answer that comes in batches (answer_stream.h): the CSV
// header once, then each batch's rows [begin, end) of the first names.size() columns.
void WriteCsvHeader(const std::vector<std::string>& names, std::string* out);
void WriteCsvRows(const std::vector<std::string>& names, const std::vector<ResultColumn>& columns, size_t begin, size_t end,
                  std::string* out);
void WriteNdjsonRows(const std::vector<std::string>& names, const std::vector<ResultColumn>& columns, size_t begin, size_t end,
                     std::string* out);
// Aligned columns with a header and a row-count line, for people.
std::string FormatTable(const QueryResult& result);
// {"error":"...","line":L,"column":C} (line and column 0 when the error has no position).
std::string ErrorJson(const SqlError& error);

// One value as text, as CSV and the table show it (NULL as "").
std::string FormatValue(const Value& v);

}  // namespace mare::query
