// HttpServerOptions: the limits of mare's HTTP server ([http] in mare.toml), with their
// defaults. They bound what any client, slow or hostile, can hold: a connection (and its
// thread), time, and memory for request bodies.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "server/access.h"
#include "server/tls_reloader.h"

namespace mare {

struct HttpServerOptions {
  // Connection threads kept ready while idle; more start on demand, up to max_connections.
  int threads = 4;
  // Connections served at once, each by its own thread. One more is answered 503 and closed.
  int max_connections = 512;
  // A request's line and headers must have arrived this long after its first byte (408 if not).
  int64_t header_timeout_us = 10'000'000;
  // Its body must have arrived this long after its headers (408 if not).
  int64_t body_timeout_us = 60'000'000;
  // A kept-alive connection with no new request for this long is closed.
  int64_t idle_timeout_us = 5'000'000;
  // A response write that makes no progress for this long ends the connection.
  int64_t write_timeout_us = 10'000'000;
  // Requests served on one connection before it is closed.
  int keep_alive_max_requests = 1000;
  // Larger request bodies are refused with 413, whatever their content type.
  size_t max_body_bytes = 64 << 20;
  // Request bodies being received or handled, all connections together. A body that does not
  // fit is refused with 503 and Retry-After. Never less than max_body_bytes.
  size_t max_in_flight_body_bytes = 256 << 20;
  // Pending connections the kernel queues before they are accepted.
  int listen_backlog = 1024;
  // TLS: a PEM certificate chain and its unencrypted PEM key; both set, the server speaks
  // HTTPS only (a plaintext request is answered 400). Empty: plain HTTP.
  std::string tls_cert;
  std::string tls_key;
  // http.tls_client_ca and http.tls_reload_interval: TlsFiles (tls_reloader.h) says what they do.
  std::string tls_client_ca;
  int64_t tls_reload_interval_us = TlsFiles{}.reload_interval_us;
  // GET /readyz answers 503 while a stage reading the log is more records behind than this
  // (0: never for lag alone). /healthz does not look at lags.
  int64_t ready_max_lag = 1'000'000;

  // API tokens ([[http.tokens]]); none: every route is open (keep the server on loopback then).
  std::vector<ApiToken> tokens;
  // Host names served besides IP literals, localhost and the listen host ("*": any).
  std::vector<std::string> allowed_hosts;
  // An ingest request's answer is replayed to a retry with the same Idempotency-Key for this
  // long (0: the header is ignored) ...
  int64_t idempotency_horizon_us = 600'000'000;
  // ... for this many keys at most, the oldest forgotten first.
  int64_t idempotency_max_keys = 100'000;
};

}  // namespace mare
