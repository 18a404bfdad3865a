// QueryLimits: how much one SQL statement may ask of the server (docs/sql.md, "Limits"), so that
// no request, hostile or careless, can take the process down. Every limit's error names its setting.
//
//   QueryOptions options;
//   options.limits.timeout_us = 5'000'000;   // query.timeout = "5s"
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace mare::query {

struct QueryLimits {
  // query.max_statement_bytes. 1 MiB: far above any hand-written or generated statement seen
  // (the dashboard's longest is under 1 KB) while bounding what the lexer holds (~80 bytes of
  // tokens per byte in the worst case, a statement of single-character tokens).
  size_t max_statement_bytes = 1 << 20;
  // query.max_expression_depth: the deepest nesting of one expression tree (parentheses, NOT,
  // minus signs, function arguments, and also operator chains: a+b+c is a tree of depth 3).
  // The parser, planner and evaluator recurse once per level with frames of a few hundred
  // bytes; 200 levels stay below 1 MB of stack even under ASan, a fraction of a thread's 8 MB.
  int max_expression_depth = 200;
  // query.max_expression_nodes: the nodes of every expression of the statement together
  // (operands, operators, IN list items, function arguments, CASE branches). 10,000 is ~100x
  // the largest real statement; each node costs a few hundred bytes to plan and one vector of
  // a block's rows to evaluate, so the planning and evaluation memory stays below a few MB.
  int max_expression_nodes = 10'000;
  // query.timeout (microseconds; 0: none). Checked between blocks and between groups of rows,
  // so a query stops within about one block's work after its time is up. 30 s: an interactive
  // answer or none; a year of one sensor's readings aggregates in well under a second.
  int64_t timeout_us = 30'000'000;
  // query.max_memory (bytes; 0: none): what a query's aggregation table, its result and sort
  // buffers hold at once. 1 GiB: the largest legitimate answer (max_rows = 1,000,000 rows of a
  // dozen columns) needs ~100 MB; a hash table of 10 million groups about 1 GB.
  size_t max_memory = size_t{1} << 30;
  // query.max_concurrent: statements running at once through one QueryGate (the HTTP API);
  // one more is refused ("too many concurrent queries", HTTP 503) instead of queueing. 8: four
  // per core of the 2-core target machine; queries are CPU-bound and use up to 2 threads each.
  int max_concurrent = 8;
};

// "30s", "1.5s", "250ms": a timeout for messages, as the TOML writes it.
std::string FormatTimeout(int64_t us);
// "1 GiB", "512 MiB", "1000 bytes".
std::string FormatBytes(size_t bytes);

}  // namespace mare::query
