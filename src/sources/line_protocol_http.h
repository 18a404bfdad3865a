// LineProtocolHttp: InfluxDB's write endpoints on mare's HTTP port, so that Telegraf's
// influxdb and influxdb_v2 outputs and the InfluxDB client libraries write to mare unchanged:
//   POST /write?db=...&precision=n|ns|u|us|ms|s|m|h       (InfluxDB 1.x)
//   POST /api/v2/write?org=...&bucket=...&precision=ns|us|ms|s  (InfluxDB 2.x)
//   GET|HEAD /ping                                          (1.x clients' liveness check)
// db, org, bucket and any token are accepted and not used: every reading goes to the raw topic.
// A gzip body (Content-Encoding: gzip) is decompressed by the server as it arrives.
//
// Answers, as InfluxDB's: 204 when every line is written (a resent reading mare already holds
// counts as written); 400 when some lines are not, the valid ones being written all the same,
// with {"code":"invalid","message":"partial write: ... line 3: <reason>: <detail>; ..."} (1.x:
// {"error": ...}) and, beyond InfluxDB, "accepted", "rejected" and "errors" [{line, reason,
// detail}]; 413 when the body, decompressed, is over sources.line_protocol.max_body_bytes;
// 503 with Retry-After when the log refuses readings, listing the lines to send again.
#pragma once

#include <condition_variable>
#include <memory>
#include <mutex>
#include <vector>

#include "server/http_server.h"
#include "sources/line_protocol_ingest.h"

namespace mare {

class LineProtocolHttp {
 public:
  LineProtocolHttp(Ingest* ingest, HttpServer* server, const LineProtocolOptions& options, int workers = 4);
  ~LineProtocolHttp();

 private:
  // `workers` requests are converted and appended at once; more wait for a free worker.
  LineProtocolWorker* Take();
  void Give(LineProtocolWorker* worker);

  std::mutex mu_;
  std::condition_variable worker_free_;
  std::vector<std::unique_ptr<LineProtocolWorker>> workers_;
  std::vector<LineProtocolWorker*> free_;
};

}  // namespace mare
