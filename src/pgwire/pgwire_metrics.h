// The metrics of the PostgreSQL wire protocol server: declared once here, read back by the
// tests through these names.
#pragma once

#include "common/metrics.h"

namespace mare::pgwire_metrics {

inline constexpr metrics::Metric kOpenConnections{"mare_pgwire_open_connections", "PostgreSQL wire protocol connections open"};
inline constexpr metrics::Metric kQueries{"mare_pgwire_queries_total", "Statements run over the PostgreSQL wire protocol"};
inline constexpr metrics::Metric kErrors{"mare_pgwire_errors_total", "ErrorResponses sent over the PostgreSQL wire protocol"};

}  // namespace mare::pgwire_metrics
