// Connection: one client connection of mare's HTTP server, as the stream cpp-httplib reads
// requests from and writes answers to, with the deadlines and budgets that keep one client
// from holding more than its share:
//   - the request line and headers must arrive within header_timeout of the first byte, the
//     body within body_timeout of the headers (408 otherwise), and a kept-alive connection
//     waits idle_timeout at most for its next request;
//   - a body larger than max_body_bytes is refused (413) before it is read, whatever its
//     content type; a body that does not fit in the server's BodyBudget is refused (503 with
//     Retry-After); a chunked body is counted as it arrives;
//   - a write that makes no progress for write_timeout ends the connection;
//   - the server's stop wakes every wait at once;
//   - over TLS (http.tls_cert), the handshake and the first request's first byte must arrive
//     within header_timeout of the accept; a plaintext request is answered 400 in plaintext.
// A refused or timed-out request closes the connection after its answer: the rest of its body
// is never read.
//
// Serve runs the keep-alive loop on the connection's own thread (ConnectionThreads); the
// server's setup, Expect, error and post-routing hooks find the connection with Current().
#pragma once

#include <httplib.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "common/log_throttle.h"
#include "common/metrics.h"
#include "server/body_budget.h"
#include "server/http_server_options.h"
#include "server/tls.h"

namespace mare {

// The server's counters about its connections (mare_http_*).
struct ConnectionMetrics {
  explicit ConnectionMetrics(metrics::Registry* registry);
  metrics::Gauge& open;
  metrics::Counter& refused;           // over max_connections
  metrics::Counter& header_timeouts;
  metrics::Counter& body_timeouts;
  metrics::Counter& too_large;         // bodies over max_body_bytes
  metrics::Counter& over_budget;       // bodies over max_in_flight_body_bytes
  metrics::Gauge& body_bytes_in_flight;
  metrics::Counter& tls_plaintext;     // plaintext sent to the TLS port
  metrics::Counter& tls_timeouts;      // handshakes not done within header_timeout
  metrics::Counter& tls_failures;      // handshakes failed (no common version, a certificate the client refused)
  metrics::Counter& tls_client_certs;  // handshakes failed on the client's certificate (http.tls_client_ca)
  LogThrottle refused_handshakes_log;  // one line a second at most, with the peer and the reason
};

class Connection final : public httplib::Stream {
 public:
  // What cpp-httplib's Server::process_request does with one request on this stream.
  using ProcessRequest = std::function<bool(httplib::Stream& stream, bool close_connection, bool& connection_closed,
                                            const std::function<void(httplib::Request&)>& setup)>;

  // `tls`: the server's certificate when it serves TLS, else null.
  Connection(int sock, int stop_fd, const HttpServerOptions& options, BodyBudget* budget, ConnectionMetrics* metrics,
             const TlsContext* tls = nullptr);
  ~Connection() override;
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Serves requests until the client closes, a limit or deadline ends the connection, or the
  // server stops. Closes the socket.
  void Serve(const ProcessRequest& process);

  // Answers a connection over max_connections with 503 and closes it, without blocking (a TLS
  // one is closed without an answer: that would need a handshake).
  static void Refuse(int sock, ConnectionMetrics* metrics, bool tls = false);

  // The connection served by this thread, for cpp-httplib's hooks; null elsewhere.
  static Connection* Current();

  // Hooks (called by the server through cpp-httplib).
  // Expect: 100-continue: a refused body is answered before the client sends it.
  int OnExpectContinue(httplib::Response& res);
  // An error answer: a refusal or a deadline says what happened and what to do.
  // Returns whether it wrote the answer's body.
  bool OnError(httplib::Response& res);
  // Every answer, just before it is written: whether the connection must close after it.
  void OnAnswer(httplib::Response& res);

  // Runs `f` once when the request being served ends, however it ends (answered or not).
  void AtRequestEnd(std::function<void()> f) { at_end_ = std::move(f); }

  // httplib::Stream
  bool is_readable() const override;
  bool is_writable() const override;
  ssize_t read(char* ptr, size_t size) override;
  ssize_t write(const char* ptr, size_t size) override;
  using httplib::Stream::write;
  void get_remote_ip_and_port(std::string& ip, int& port) const override;
  void get_local_ip_and_port(std::string& ip, int& port) const override;
  socket_t socket() const override { return sock_; }

 private:
  enum class Phase { kHead, kBody };
  enum class Refusal { kNone, kTooLarge, kOverBudget };

  enum class Wake { kReady, kDeadline, kStop, kError };
  Wake WaitFor(short events, int64_t deadline_us, bool stoppable) const;
  bool WaitReadable(int64_t deadline_us) const;  // false on deadline, stop or error
  bool WaitWritable(int64_t deadline_us) const;  // false on deadline or error
  bool WaitWritable() const;                     // false after write_timeout without room
  bool Buffered() const;                         // request bytes already read (or decrypted)
  bool Handshake(int64_t deadline_us);           // false: the connection is to be closed
  void LogRefusedHandshake(std::string_view why);
  void BeginRequest(int64_t now_us);
  void OnHeaders(httplib::Request& req);  // the setup hook: the body phase starts
  bool AdmitBody(size_t bytes);           // counts body bytes read; false refuses the request
  void EndRequest();
  void WriteRaw(std::string_view text);   // best effort, for answers cpp-httplib cannot give
  void CloseGracefully(bool drain);

  const int sock_;
  const int stop_fd_;
  const HttpServerOptions& options_;
  BodyBudget* budget_;
  ConnectionMetrics* metrics_;
  const TlsContext* tls_context_;
  std::unique_ptr<TlsSession> tls_;  // once the handshake started

  std::unique_ptr<char[]> buffer_;
  size_t begin_ = 0, end_ = 0;  // unread bytes in buffer_

  // The request being served.
  Phase phase_ = Phase::kHead;
  int64_t deadline_us_ = 0;       // reads fail after it (monotonic)
  mutable bool timed_out_ = false;
  mutable bool stopping_ = false;
  bool head_bytes_seen_ = false;  // some of the request arrived
  bool wrote_ = false;            // some of an answer was written
  Refusal refusal_ = Refusal::kNone;
  bool has_length_ = false;       // Content-Length given
  bool chunked_ = false;
  uint64_t content_length_ = 0;
  uint64_t body_read_ = 0;        // body bytes handed to cpp-httplib
  size_t reserved_ = 0;           // taken from the budget
  bool must_close_ = false;
  std::function<void()> at_end_;
};

}  // namespace mare
