// The metrics of the PostgreSQL wire protocol server: declared once here, read back by the
// tests through these names.
#pragma once

#include "common/metrics.h"

namespace mare::pgwire_metrics {

inline constexpr metrics::Metric kOpenConnections{"mare_pgwire_open_connections", "PostgreSQL wire protocol connections open"};
inline constexpr metrics::Metric kQueries{"mare_pgwire_queries_total", "Statements run over the PostgreSQL wire protocol"};
inline constexpr metrics::Metric kConnectionsRefused{"mare_pgwire_connections_refused_total", "PostgreSQL wire protocol connections refused at startup (tls_required, tls_handshake, max_connections)"};
inline constexpr metrics::Metric kTlsReloads{"mare_pgwire_tls_reloads_total", "Reloads of pgwire.tls_cert, tls_key and tls_client_ca after a change or SIGHUP (ok, failed: the old certificate stays)"};
inline constexpr metrics::Metric kTlsCertificateNotAfter{"mare_pgwire_tls_certificate_not_after_seconds", "End of validity of the PostgreSQL wire protocol's TLS certificate in use (Unix time)"};
inline constexpr metrics::Metric kErrors{"mare_pgwire_errors_total", "ErrorResponses sent over the PostgreSQL wire protocol"};

}  // namespace mare::pgwire_metrics
