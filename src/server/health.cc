#include "server/health.h"

#include <httplib.h>

#include "common/json_out.h"
#include "server/http_server.h"

namespace mare {

const char* StageStateName(StageCheck::State state) {
  switch (state) {
    case StageCheck::State::kRunning:
      return "running";
    case StageCheck::State::kRetrying:
      return "retrying";
    case StageCheck::State::kStopped:
      return "stopped";
  }
  return "unknown";
}

void HealthChecks::Add(Check check) {
  std::lock_guard lock(mu_);
  checks_.push_back(std::move(check));
}

std::vector<StageCheck> HealthChecks::Run() const {
  std::vector<Check> checks;
  {
    std::lock_guard lock(mu_);
    checks = checks_;
  }
  std::vector<StageCheck> stages;
  stages.reserve(checks.size());
  for (const Check& check : checks) stages.push_back(check());
  return stages;
}

namespace {

// Each stage failing the test, with its state and why; `status` names the whole.
HealthAnswer Answer(const std::vector<StageCheck>& stages, const std::function<std::string(const StageCheck&)>& why_not,
                    const char* bad_status) {
  JsonOut failing;
  failing.Open('[');
  bool any = false;
  for (const StageCheck& s : stages) {
    std::string reason = why_not(s);
    if (reason.empty()) continue;
    any = true;
    failing.Open('{').Key("component").Str(s.component).Key("state").Str(StageStateName(s.state));
    failing.Key("reason").Str(reason).Key("failures").Int(s.failures);
    if (s.lag >= 0) failing.Key("lag").Int(s.lag);
    failing.Close('}');
  }
  failing.Close(']');
  JsonOut out;
  out.Open('{').Key("status").Str(any ? bad_status : "ok").Key("failing").Raw(failing.str()).Close('}');
  return {any ? 503 : 200, out.Take() + "\n"};
}

}  // namespace

HealthAnswer Liveness(const std::vector<StageCheck>& stages) {
  return Answer(
      stages, [](const StageCheck& s) { return s.state == StageCheck::State::kStopped ? s.reason : std::string(); },
      "unhealthy");
}

HealthAnswer Readiness(const std::vector<StageCheck>& stages, int64_t max_lag) {
  return Answer(
      stages,
      [max_lag](const StageCheck& s) {
        if (s.state != StageCheck::State::kRunning) return s.reason.empty() ? std::string("not running") : s.reason;
        if (max_lag > 0 && s.lag > max_lag) {
          return "lag of " + std::to_string(s.lag) + " records, above " + std::to_string(max_lag);
        }
        return std::string();
      },
      "not ready");
}

void AddHealthRoutes(HttpServer* server, const HealthChecks* checks, int64_t max_lag) {
  server->routes().Get("/healthz", [checks](const httplib::Request&, httplib::Response& res) {
    HealthAnswer a = Liveness(checks->Run());
    res.status = a.status;
    res.set_content(a.body, "application/json");
  });
  server->routes().Get("/readyz", [checks, max_lag](const httplib::Request&, httplib::Response& res) {
    HealthAnswer a = Readiness(checks->Run(), max_lag);
    res.status = a.status;
    res.set_content(a.body, "application/json");
  });
}

}  // namespace mare
