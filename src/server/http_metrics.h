// The metrics of the HTTP server (connections, deadlines, request bodies): declared once here,
// read back by the tests through these names.
#pragma once

#include "common/metrics.h"

namespace mare::http_metrics {

inline constexpr metrics::Metric kOpenConnections{"mare_http_open_connections", "HTTP connections open"};
inline constexpr metrics::Metric kConnectionsRefused{"mare_http_connections_refused_total", "HTTP connections refused (503) over http.max_connections"};
inline constexpr metrics::Metric kRequestsTimedOut{"mare_http_requests_timed_out_total", "HTTP requests ended by a deadline"};
inline constexpr metrics::Metric kBodiesRefused{"mare_http_bodies_refused_total", "HTTP request bodies refused"};
inline constexpr metrics::Metric kRequestsRefused{"mare_http_requests_refused_total", "HTTP requests refused by access checks (token, scope, Host, Origin, content type)"};
inline constexpr metrics::Metric kIdempotentReplays{"mare_http_idempotent_replays_total", "HTTP ingest retries answered from their Idempotency-Key without appending again"};
inline constexpr metrics::Metric kTlsHandshakesFailed{"mare_http_tls_handshakes_failed_total", "HTTPS connections closed before their TLS handshake completed (plaintext, timeout, client_certificate, error)"};
inline constexpr metrics::Metric kTlsReloads{"mare_http_tls_reloads_total", "Reloads of http.tls_cert, tls_key and tls_client_ca after a change or SIGHUP (ok, failed: the old certificate stays)"};
inline constexpr metrics::Metric kTlsCertificateNotAfter{"mare_http_tls_certificate_not_after_seconds", "End of validity of the HTTPS certificate in use (Unix time)"};
inline constexpr metrics::Metric kInFlightBodyBytes{"mare_http_in_flight_body_bytes", "Bytes of HTTP request bodies being received or handled"};

}  // namespace mare::http_metrics
