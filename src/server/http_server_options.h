// HttpServerOptions: the limits of mare's HTTP server ([http] in mare.toml), with their
// defaults. They bound what any client, slow or hostile, can hold: a connection (and its
// thread), time, and memory for request bodies.
#pragma once

#include <cstddef>
#include <cstdint>

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
  // GET /readyz answers 503 while a stage reading the log is more records behind than this
  // (0: never for lag alone). /healthz does not look at lags.
  int64_t ready_max_lag = 1'000'000;
};

}  // namespace mare
