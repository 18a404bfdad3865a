// UdpSource: receives readings as UDP datagrams (the buoys' transport; default port 20001).
// Several receiver threads, each with its own SO_REUSEPORT socket, so the kernel spreads
// senders across them; each takes up to `batch` datagrams per recvmmsg call and appends them
// to the log in one flush. The kernel's count of datagrams dropped for a full receive buffer
// (SO_RXQ_OVFL) is exported as mare_source_udp_datagrams_dropped_total. The same source takes
// InfluxDB line protocol (sources.line_protocol.udp), its lines converted by LineProtocolWorkers.
#pragma once

#include <sys/socket.h>

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "common/metrics.h"
#include "common/status.h"
#include "sources/ingest.h"
#include "sources/line_protocol_ingest.h"

namespace mare {

struct UdpSourceOptions {
  bool enabled = true;
  std::string listen = "127.0.0.1:20001";
  int threads = 2;
  int64_t receive_buffer_bytes = 32 << 20;
  int batch = 64;                    // datagrams per recvmmsg
  size_t max_datagram_bytes = 65507;  // larger ones are rejected as oversized
  std::string name = "udp";          // the source label of its readings' metrics (not a config key)
};

class UdpSource {
 public:
  // Binds every receiver's socket; fails if the address is taken or invalid.
  // With `line_protocol`, datagrams hold InfluxDB line protocol (at its precision), not NDJSON.
  static Result<std::unique_ptr<UdpSource>> Start(const UdpSourceOptions& options, Ingest* ingest,
                                                  metrics::Registry* registry,
                                                  const LineProtocolOptions* line_protocol = nullptr);
  ~UdpSource();
  // Stops the receivers after they flush what they hold.
  void Stop();
  // The port actually bound (useful with port 0).
  int port() const { return port_; }

 private:
  UdpSource(UdpSourceOptions options, metrics::Registry* registry);
  void Receive(int fd, size_t receiver);

  UdpSourceOptions options_;
  std::atomic<bool> stop_{false};
  std::vector<int> fds_;
  std::vector<std::unique_ptr<Ingest::Worker>> workers_;
  std::vector<std::unique_ptr<LineProtocolWorker>> line_workers_;  // instead, for line protocol
  Precision precision_ = Precision::kNanoseconds;
  std::vector<std::thread> threads_;
  int port_ = 0;
  metrics::Counter& kernel_drops_;
  metrics::Counter& datagrams_;
  metrics::Gauge& buffer_bytes_;
};

// Parses "host:port" (host may be empty, "0.0.0.0", "localhost", an IPv4 address or a
// bracketed IPv6 address) into a sockaddr for bind/connect.
Status ResolveAddress(const std::string& host_port, sockaddr_storage* out, unsigned* out_len);

}  // namespace mare
