// What every long-running subcommand (run, stream, sink) does alike.
#pragma once

#include <signal.h>

#include <functional>
#include <string>
#include <vector>

#include "common/metrics.h"
#include "config/config.h"
#include "log/consumer_thread.h"
#include "server/health.h"
#include "server/http_server.h"
#include "sinks/sink_health.h"

namespace mare::cli {

// Blocks SIGINT and SIGTERM in this thread and every thread started after it, so that only the
// main thread takes them (with sigtimedwait on the returned set). Ignores SIGPIPE.
sigset_t BlockStopSignals();

// The main thread's wait, once a command has started its work: returns true on SIGINT or
// SIGTERM (saying so, as "<command>: SIGTERM received, stopping"), false once `ended()` says the
// work stopped by itself (asked every second). Meanwhile calls `report(seconds since the last)`
// every 10 s, and `on_hup()` on SIGHUP when `signals` holds it.
bool WaitForStop(const sigset_t& signals, const std::string& command, const std::function<bool()>& ended,
                 const std::function<void(double seconds)>& report, const std::function<void()>& on_hup = nullptr);

// The command's configuration: the file (if any), then the --set overrides, then --data-dir
// (if given) over data_dir.
Result<Config> LoadCommandConfig(const std::string& path, const std::vector<std::string>& overrides,
                                 const std::string& data_dir);

// This process's name in a consumer group: "<host>-<pid>" (unique among live processes).
std::string DefaultMemberName();

// GET /metrics: the registry in Prometheus text format.
void ServeMetrics(HttpServer& server, metrics::Registry& registry);

// A log consumer's health (the store's feeder, the rollup or forecast processor) for
// /healthz and /readyz.
StageCheck ConsumerCheck(std::string component, const log::ConsumerHealth& health, int64_t lag);

// One check per topic a started sink follows ("sink.mariadb/rollups"): its server reachable and
// taking the records, and its lag. `sink` outlives the checks' server.
template <typename Sink>
void AddSinkChecks(HealthChecks* checks, const std::string& kind, const Sink* sink) {
  size_t topics = sink->health().size();
  for (size_t i = 0; i < topics; ++i) {
    checks->Add([kind, sink, i] {
      sinks::SinkHealth h = sink->health()[i];
      return ConsumerCheck("sink." + kind + "/" + h.topic, h.health, h.lag);
    });
  }
}

}  // namespace mare::cli
