// Health: what /healthz (alive: no stage stopped for good) and /readyz (ready: every stage
// running, its lag bounded, every sink connected) answer, from checks each process registers.
//
// Why two: an orchestrator restarts a process whose liveness fails, and stops sending it work
// while its readiness fails. A stage retrying a full disk recovers by itself (not ready, still
// alive); a stage stopped by corruption needs a restart (not alive).
//
//   HealthChecks checks;
//   checks.Add([&] { return StageCheck{.component = "store", .state = ...}; });
//   AddHealthRoutes(&http, &checks, /*max_lag=*/100'000);
#pragma once

#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <vector>

namespace mare {

class HttpServer;

// One stage's state, as its check reports it.
struct StageCheck {
  enum class State {
    kRunning,   // doing its work
    kRetrying,  // failing on a transient error (a full disk, a server away), retrying by itself
    kStopped,   // stopped for good (a permanent error): only a restart brings it back
  };
  std::string component;  // "store", "rollup", "sink.mariadb", ...
  State state = State::kRunning;
  std::string reason;    // the last error, unless running
  int64_t failures = 0;  // failed attempts since it last ran
  int64_t lag = -1;      // records behind the log's end, where the stage reads a log; -1 if not
};

const char* StageStateName(StageCheck::State state);

// The checks of one process. Add may be called while the routes serve (a sink started late).
class HealthChecks {
 public:
  using Check = std::function<StageCheck()>;
  void Add(Check check);
  std::vector<StageCheck> Run() const;

 private:
  mutable std::mutex mu_;
  std::vector<Check> checks_;
};

// The answers, as {"status":..., "failing":[...]} (docs/api/openapi.yaml): alive unless some
// stage stopped; ready when every stage runs with a lag of at most max_lag records (0: any).
struct HealthAnswer {
  int status = 200;
  std::string body;
};
HealthAnswer Liveness(const std::vector<StageCheck>& stages);
HealthAnswer Readiness(const std::vector<StageCheck>& stages, int64_t max_lag);

// GET /healthz and GET /readyz on the server, before it starts. `checks` outlives the server.
void AddHealthRoutes(HttpServer* server, const HealthChecks* checks, int64_t max_lag);

}  // namespace mare
