// HttpServer: the one HTTP endpoint of `mare run` (default 127.0.0.1:8080). Components add
// their routes before Start: the HTTP source (/api/v1/ingest), /metrics, the query API and the
// dashboard. Built on cpp-httplib, with mare's own connection model (HttpServerOptions):
//
// - Every connection gets its own thread (ConnectionThreads), up to max_connections; one more
//   is answered 503 and closed at once. A slow client holds only its own thread, mostly asleep
//   in poll, so it cannot delay ingest, queries, /metrics or /healthz.
// - Each request has deadlines for its headers and its body, and each kept-alive connection an
//   idle timeout (Connection). A slow-loris client is cut off after header_timeout.
// - Request bodies are bounded one by one (max_body_bytes, 413, any content type) and all
//   together (max_in_flight_body_bytes, 503 + Retry-After): memory for bodies is bounded
//   whatever the concurrency.
// - Every request passes Access (access.h) before its route's handler runs: tokens and scopes,
//   the Host header, the Origin and content type of POSTs. A new route gets its scope from the
//   table in access.cc (AccessFor), where an unknown one needs `admin`.
// - An ingest request with an Idempotency-Key is answered once (IdempotencyCache): a retry of
//   a success gets the same answer without appending again.
//
// Why not an epoll front that reads whole requests before handing them to a few workers:
// cpp-httplib reads requests through a blocking Stream, so such a front would have to parse
// HTTP itself (chunked bodies, Expect: 100-continue, pipelining), and long answers (the
// dashboard's live streams, big query results to slow readers) would still hold a worker. A
// thread per connection, bounded and with deadlines, keeps all of cpp-httplib's request
// handling and costs a mostly idle thread (its stack is only reserved, not used) per client.
// The hooks it replaces are its documented ones: the task queue, and process_and_close_socket
// with its own Stream, as cpp-httplib's SSLServer does.
//
//   HttpServer http(HttpServerOptions{.max_connections = 1024}, &registry);
//   http.routes().Get("/healthz", ...);
//   Status s = http.Start("127.0.0.1:8080");
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <thread>

#include "common/metrics.h"
#include "common/status.h"
#include "server/http_server_options.h"

namespace httplib {
class Server;
struct Response;
}

namespace mare {

// An error answer as the HTTP API gives them: `status` and {"error":"message"} (JSON, one line).
void AnswerError(httplib::Response& res, int status, const std::string& message);

class HttpServer {
 public:
  // `registry` receives the server's mare_http_* metrics; without one they are kept apart.
  explicit HttpServer(const HttpServerOptions& options, metrics::Registry* registry = nullptr);
  // The default limits with this many idle threads and this body limit.
  explicit HttpServer(int threads = 4, size_t max_body_bytes = 64 << 20);
  ~HttpServer();

  // Add routes here before Start. Start installs the server's own task queue and its setup,
  // Expect, error, pre- and post-routing hooks: routes must not replace those.
  httplib::Server& routes();

  // Binds "host:port" and serves from a background thread. Fails on a token it cannot read.
  Status Start(const std::string& listen);
  // Stops accepting, wakes every connection waiting for a request, and waits for the
  // connections to end (answers being written are finished).
  void Stop();
  // Reads http.tls_cert, tls_key and tls_client_ca again now (SIGHUP), changed or not: true when
  // new connections get a new context. Without TLS, false. Changes are also seen by themselves
  // every http.tls_reload_interval.
  bool ReloadTls();
  int port() const { return port_; }
  const HttpServerOptions& options() const { return options_; }

 private:
  class Server;
  struct State;

  HttpServerOptions options_;
  std::unique_ptr<State> state_;
  std::unique_ptr<Server> server_;
  std::thread thread_;
  std::atomic<bool> listen_returned_{false};  // the listening thread is done (or never listened)
  int port_ = 0;
};

}  // namespace mare
