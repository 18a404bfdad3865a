// The executor: runs a plan over a store snapshot. Blocks that WHERE rules out by their
// statistics are skipped; blocks an aggregation can take whole (WHERE holds for every row, the
// group keys are constant across the block) are answered from their statistics without
// decoding; the rest are decoded, only the columns the plan reads, and evaluated vector-wise.
// The answer comes column by column (ResultTable, what the HTTP API writes), or as rows of
// Values (QueryResult, for callers that look at single values).
//
//   QueryResult result;
//   SqlError error;
//   if (!RunQuery(store, "SELECT count(*) FROM readings", {}, &result, &error)) ...
#pragma once

#include <atomic>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "query/ast.h"
#include "query/limits.h"
#include "query/result.h"
#include "query/value.h"
#include "store/store.h"

namespace mare::query {

struct QueryOptions {
  size_t max_rows = 1'000'000;  // a larger result is an error (add LIMIT or narrow WHERE)
  int64_t now_us = 0;           // now() (0: the wall clock)
  int threads = 2;              // an aggregation over many blocks uses up to this many threads
  QueryLimits limits;           // statement size, timeout, memory (max_concurrent is the caller's: QueryGate)
  // Set by another thread to stop the statement (its client is gone); checked between blocks.
  const std::atomic<bool>* cancel = nullptr;
};

struct QueryStats {
  int64_t blocks_skipped = 0;     // ruled out by statistics
  int64_t blocks_from_stats = 0;  // aggregated from statistics alone
  int64_t blocks_decoded = 0;
  int64_t memtable_rows = 0;      // rows read from the memtable
  int64_t rows_scanned = 0;       // rows decoded or read
};

// The answer column by column.
struct ResultTable {
  std::vector<std::string> names;
  std::vector<ResultColumn> columns;  // one per name, each of `rows` rows
  size_t rows = 0;
  QueryStats stats;
};

// The answer as rows of values.
struct QueryResult {
  std::vector<std::string> names;
  std::vector<Type> types;
  std::vector<std::vector<Value>> rows;
  QueryStats stats;
};

// Takes an answer batch by batch as the executor produces it (the RunQuery with a sink).
class BatchSink {
 public:
  virtual ~BatchSink() = default;
  // The answer's columns, before any rows.
  virtual bool Begin(const std::vector<std::string>& names, const std::vector<Type>& types) = 0;
  // Rows [begin, end) of the first names.size() columns join the answer. False stops the
  // statement (its client is gone).
  virtual bool Rows(const std::vector<ResultColumn>& columns, size_t begin, size_t end) = 0;
};

// Rows of an answer handed to a sink at once: memory for a plain scan is bounded by this.
inline constexpr size_t kStreamBatchRows = 65'536;

// Parses, plans and runs one statement. On failure *error says what and where (a position of
// 0:0 for failures that are not the statement's, such as a corrupt block).
[[nodiscard]] bool RunQuery(store::Store& store, std::string_view sql, const QueryOptions& options, ResultTable* result, SqlError* error);
[[nodiscard]] bool RunQuery(store::Store& store, std::string_view sql, const QueryOptions& options, QueryResult* result, SqlError* error);
// The answer goes to `sink` as it comes: plain rows without ORDER BY in batches of
// kStreamBatchRows while the blocks are read, so that only a batch is held at once; answers
// that must be complete first (aggregations, ORDER BY, LATEST ON) in such batches at the end,
// bounded by query.max_memory. The time the sink takes does not count toward query.timeout.
// *summary gets the names, the total row count and the stats, no columns.
[[nodiscard]] bool RunQuery(store::Store& store, std::string_view sql, const QueryOptions& options, BatchSink* sink, ResultTable* summary,
              SqlError* error);

}  // namespace mare::query
