// The query API on mare's HTTP server (docs/api/openapi.yaml):
//   GET|POST /api/v1/query   SQL in `q` (or the POST body), answered as JSON (default), CSV,
//                            NDJSON or an Arrow IPC stream, chosen by `format` or the Accept header.
//   GET /api/v1/sensors      every sensor with its fields, first and last seen, last position.
// CSV, NDJSON and Arrow answers stream (answer_stream.h): any size, chunked once larger than
// the queue, and a client that goes away stops its statement.
// Errors are 400 with {"error","message","line","column"} for a bad statement or one past a
// limit (QueryLimits, each message naming its setting), 503 with Retry-After when
// query.max_concurrent statements are running already, 500 for a failure of the store.
#pragma once

#include "common/metrics.h"
#include "query/executor.h"
#include "query/limits.h"
#include "server/http_server.h"
#include "store/store.h"

namespace mare::query {

struct QueryApiOptions {
  // query.max_rows: rows a JSON answer may hold; a larger one is refused with a message. CSV,
  // NDJSON and Arrow answers are streamed (answer_stream.h), without a cap.
  size_t max_rows = 1'000'000;
  // query.max_statement_bytes ... query.max_concurrent (limits.h).
  QueryLimits limits;
};

void AddQueryRoutes(HttpServer* server, store::Store* store, const QueryApiOptions& options, metrics::Registry* registry);

}  // namespace mare::query
