// Transports that carry NDJSON readings into mare, one Sender per --target URL:
//
//   udp://host:port        datagrams of up to N lines each, sent with sendmmsg (no acks)
//   tcp://host:port        lines on one persistent connection; reconnects after a failure
//   unix:///path/to.sock   the same over a Unix stream socket
//   http://host:port/path  one POST per batch (application/x-ndjson); the reply must be 200
//                          with a JSON "accepted" count (path defaults to /api/v1/ingest)
//   https://host:port/path the same over TLS, the server's certificate checked against the
//                          system's CAs or SenderOptions::ca_file
//   file:///path or -      lines appended to a file (truncated at open) or written to stdout
//
// Every line handed to a sender ends in '\n'; a UDP datagram holds whole lines, each with its
// '\n'. Senders are not thread-safe: one thread feeds them.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace mare::feeds {

enum class Transport { kUdp, kTcp, kUnix, kHttp, kFile };

struct TargetSpec {
  Transport transport = Transport::kUdp;
  std::string url;   // as given, for messages
  std::string host;  // udp, tcp, http
  uint16_t port = 0;
  std::string path;  // unix socket path, file path ("-" for stdout), http request path
  bool tls = false;  // https
};

// What http(s) targets send besides the readings.
struct SenderOptions {
  std::string token;    // sent as Authorization: Bearer (a token with the ingest scope); empty: none
  std::string ca_file;  // PEM CA certificates that sign the server's certificate; empty: the system's
};

Result<TargetSpec> ParseTarget(std::string_view url);

// NDJSON lines back to back, each ending in '\n'; ends[i] is the offset just past line i.
struct LineBatch {
  std::string bytes;
  std::vector<size_t> ends;
  std::vector<uint32_t> sensors;  // the sensor of each line

  void Append(std::string_view line, uint32_t sensor = 0) {
    bytes.append(line);
    ends.push_back(bytes.size());
    sensors.push_back(sensor);
  }
  size_t size() const { return ends.size(); }
  bool empty() const { return ends.empty(); }
  void Clear() {
    bytes.clear();
    ends.clear();
    sensors.clear();
  }
};

class Sender {
 public:
  virtual ~Sender() = default;

  // Resolves, connects or opens. An error here means the target cannot be reached at all.
  virtual Status Open() = 0;

  // Sends every line of the batch. *delivered is how many readings the target took (for
  // http, the server's "accepted" count); the rest failed, and the Status says why.
  virtual Status Send(const LineBatch& batch, size_t* delivered) = 0;

  const TargetSpec& spec() const { return spec_; }
  // Whether the target refused the sender itself, for good: a missing or wrong token (401,
  // 403), a certificate that does not verify. Sending more would only fail the same way.
  bool refused() const { return refused_; }

 protected:
  explicit Sender(TargetSpec spec) : spec_(std::move(spec)) {}
  TargetSpec spec_;
  bool refused_ = false;
};

// lines_per_datagram applies to udp only (at least 1); options to http(s) only.
std::unique_ptr<Sender> MakeSender(const TargetSpec& spec, size_t lines_per_datagram, const SenderOptions& options = {});

}  // namespace mare::feeds
