// HttpSource: POST /api/v1/ingest with an NDJSON body (one reading per line, or arrays of
// readings). The answer says what happened to each reading:
//   200 {"accepted": 98, "rejected": 2, "reasons": {"not_json": 1, "invalid_number": 1},
//        "errors": [{"line": 3, "reason": "not_json", "detail": "..."}, ...]}
// 200 means every accepted reading is acknowledged by the log. 503 means the log failed to
// take some: a batch is appended as one log batch per partition, and the log (like Kafka
// outside transactions) cannot make appends to several partitions one atomic step, so the
// answer says exactly which readings are not acknowledged ("unacknowledged_lines", and
// "unacknowledged_items" within a line holding an array); "accepted" counts those that are.
// Sending again exactly those stores each reading once (docs/api/openapi.yaml).
//
// With a form content type, rejects and no newline in the body, the answer adds a "hint"
// (curl --data drops the newlines of a file: --data-binary keeps them).
//
// The body is NDJSON whatever its content type says (curl --data sends a form type): only
// multipart/form-data is refused (415), since its framing is not NDJSON. The server bounds
// the body (HttpServerOptions): over max_body_bytes 413, over the in-flight budget 503 with
// Retry-After, too slow 408, each with a message.
//
// `workers` requests are parsed and appended at once; more wait for a free worker, so that
// parsing memory and CPU stay bounded however many clients send.
#pragma once

#include <condition_variable>
#include <memory>
#include <mutex>
#include <vector>

#include "server/http_server.h"
#include "sources/ingest.h"

namespace mare {

class HttpSource {
 public:
  HttpSource(Ingest* ingest, HttpServer* server, int workers = 4);
  ~HttpSource();

 private:
  struct Slot;
  Slot* Take();  // waits for a free worker
  void Give(Slot* slot);

  std::mutex mu_;
  std::condition_variable slot_free_;
  std::vector<std::unique_ptr<Slot>> slots_;
  std::vector<Slot*> free_;
};

}  // namespace mare
