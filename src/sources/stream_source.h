// StreamSource: receives NDJSON lines over stream sockets, from many clients at once: TCP
// (default port 20002) or a unix stream socket (the station feed path). One epoll thread per
// source; each connection has its own buffer; complete lines are validated and, after each
// round of ready connections, appended to the log in one flush. A line longer than
// max_reading_bytes is rejected as oversized and skipped up to its newline. A connection
// closed mid-line still delivers its last line. The same source takes InfluxDB line protocol
// (sources.line_protocol.tcp): its lines are converted on the epoll thread and ingested and
// appended on a second one (LineProtocolPipeline), each round's flush handed over, not awaited.
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <thread>

#include "common/metrics.h"
#include "common/status.h"
#include "sources/ingest.h"
#include "sources/line_protocol_ingest.h"
#include "sources/line_protocol_pipeline.h"

namespace mare {

struct StreamSourceOptions {
  bool enabled = true;
  std::string name;    // "tcp" or "unix": the source label in metrics
  std::string listen;  // "host:port" for tcp, a path for unix
  int max_connections = 4096;
  // unix only (sources.unix.mode): the socket file's permission bits, in octal. Whoever may
  // write to it may send readings: owner and group by default.
  std::string mode = "0660";
};

class StreamSource {
 public:
  // With `line_protocol`, the lines are InfluxDB line protocol (at its precision), not NDJSON.
  static Result<std::unique_ptr<StreamSource>> Start(const StreamSourceOptions& options, Ingest* ingest,
                                                     metrics::Registry* registry,
                                                     const LineProtocolOptions* line_protocol = nullptr);
  ~StreamSource();
  void Stop();
  int port() const { return port_; }  // tcp only

 private:
  struct Connection;
  StreamSource(StreamSourceOptions options, metrics::Registry* registry);
  void Loop();

  StreamSourceOptions options_;
  int listen_fd_ = -1;
  int epoll_fd_ = -1;
  int port_ = 0;
  std::unique_ptr<Ingest::Worker> worker_;
  std::unique_ptr<LineProtocolPipeline> lines_;  // instead of worker_ for line protocol
  Precision precision_ = Precision::kNanoseconds;
  size_t max_line_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  metrics::Gauge& connections_;
  metrics::Counter& accepted_connections_;
};

}  // namespace mare
