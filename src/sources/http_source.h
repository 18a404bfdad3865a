// HttpSource: POST /api/v1/ingest with an NDJSON body (one reading per line, or arrays of
// readings). The answer says what happened to each reading:
//   200 {"accepted": 98, "rejected": 2, "reasons": {"not_json": 1, "invalid_number": 1},
//        "errors": [{"line": 3, "reason": "not_json", "detail": "..."}, ...]}
// 200 means every accepted reading is acknowledged by the log; 503 means the log could not
// take them (nothing acknowledged: send again). Bodies over the server's limit get 413.
#pragma once

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
  Slot* Take();
  void Give(Slot* slot);

  std::mutex mu_;
  std::vector<std::unique_ptr<Slot>> slots_;
  std::vector<Slot*> free_;
  Ingest* ingest_;
};

}  // namespace mare
