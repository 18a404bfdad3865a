// The live dashboard, served by `mare run` on its HTTP address (docs/api/openapi.yaml):
//   GET /, /assets/...       the web app (web/, embedded in the binary: assets.h)
//   GET /api/v1/live         Server-Sent Events: a `snapshot` of every sensor's latest values
//                            and health and of the pipeline's health about once a second, and
//                            with ?sensor=ID the new readings of that sensor as `readings`
//   GET /api/v1/live/snapshot the same snapshot once, as JSON
//   GET /api/v1/pipeline     the pipeline's health with ten minutes of ingest-rate history
// The charts, stats and SQL console query the store through /api/v1/query.
//
// One thread samples the metrics every second and, while someone watches, builds the snapshot
// once for every open page. Each live stream holds an HTTP connection (and its thread) while
// its page is open; the server gives every connection its own thread, so open dashboards never
// take threads that ingest and queries need. Streams past max_live_streams are refused (503)
// and the page retries.
//
//   auto dashboard = dashboard::Dashboard::Start(http.get(), store.get(), &registry, options);
#pragma once

#include <memory>

#include "common/metrics.h"
#include "dashboard/pipeline.h"
#include "server/http_server.h"
#include "store/store.h"

namespace mare::dashboard {

struct DashboardOptions {
  int max_live_streams = 16;
  int64_t tick_us = 1'000'000;  // how often snapshots are pushed
  std::string dead_letter_path;  // rejects the sensors view attributes to sensors ("": none)
  PipelineSettings pipeline;
};

class Dashboard {
 public:
  // Adds the routes to `server`, which must not be started yet. `store` may be null (then the
  // sensors are empty and the SQL views fail with the query API's answer).
  static std::unique_ptr<Dashboard> Start(HttpServer* server, store::Store* store, metrics::Registry* registry,
                                          const DashboardOptions& options);
  // Stops the sampling thread. The routes stay safe to call: they share the state they use.
  ~Dashboard();

  struct State;

 private:
  explicit Dashboard(std::shared_ptr<State> state);
  std::shared_ptr<State> state_;
};

}  // namespace mare::dashboard
