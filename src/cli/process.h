// What every long-running subcommand (run, stream, sink) does alike.
#pragma once

#include <signal.h>

#include "common/metrics.h"
#include "server/http_server.h"

namespace mare::cli {

// Blocks SIGINT and SIGTERM in this thread and every thread started after it, so that only the
// main thread takes them (with sigtimedwait on the returned set). Ignores SIGPIPE.
sigset_t BlockStopSignals();

// GET /metrics: the registry in Prometheus text format.
void ServeMetrics(HttpServer& server, metrics::Registry& registry);

}  // namespace mare::cli
