// The metrics of the query API: declared once here, read back by the dashboard and the tests
// through these names.
#pragma once

#include "common/metrics.h"

namespace mare::query_metrics {

inline constexpr metrics::Metric kRequests{"mare_query_requests_total", "Query API requests"};
inline constexpr metrics::Metric kExecutionSeconds{"mare_query_execution_seconds", "Query execution time (statement to rows, before formatting)"};

}  // namespace mare::query_metrics
