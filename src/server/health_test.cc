#include "server/health.h"

#include <gtest/gtest.h>
#include <httplib.h>

#include <atomic>

#include "server/http_server.h"

namespace mare {
namespace {

StageCheck Stage(std::string name, StageCheck::State state, int64_t lag = -1) {
  return {.component = std::move(name),
          .state = state,
          .reason = state == StageCheck::State::kRunning ? "" : "No space left on device",
          .failures = state == StageCheck::State::kRunning ? 0 : 3,
          .lag = lag};
}

TEST(Health, AliveUnlessAStageStoppedForGood) {
  using S = StageCheck::State;
  EXPECT_EQ(Liveness({Stage("store", S::kRunning), Stage("rollup", S::kRetrying)}).status, 200);
  HealthAnswer a = Liveness({Stage("store", S::kStopped), Stage("rollup", S::kRetrying)});
  EXPECT_EQ(a.status, 503);
  EXPECT_EQ(a.body,
            "{\"status\":\"unhealthy\",\"failing\":[{\"component\":\"store\",\"state\":\"stopped\","
            "\"reason\":\"No space left on device\",\"failures\":3}]}\n");
}

TEST(Health, ReadyWhenEveryStageRunsWithABoundedLag) {
  using S = StageCheck::State;
  EXPECT_EQ(Readiness({}, 100).body, "{\"status\":\"ok\",\"failing\":[]}\n");
  EXPECT_EQ(Readiness({Stage("store", S::kRunning, 100)}, 100).status, 200);
  HealthAnswer a = Readiness({Stage("store", S::kRunning, 101), Stage("rollup", S::kRetrying, 5)}, 100);
  EXPECT_EQ(a.status, 503);
  EXPECT_EQ(a.body,
            "{\"status\":\"not ready\",\"failing\":[{\"component\":\"store\",\"state\":\"running\","
            "\"reason\":\"lag of 101 records, above 100\",\"failures\":0,\"lag\":101},{\"component\":\"rollup\","
            "\"state\":\"retrying\",\"reason\":\"No space left on device\",\"failures\":3,\"lag\":5}]}\n");
  // 0: lag alone never makes a stage unready.
  EXPECT_EQ(Readiness({Stage("store", S::kRunning, 1'000'000'000)}, 0).status, 200);
}

TEST(Health, RoutesRunTheChecksOnEveryRequest) {
  HealthChecks checks;
  std::atomic<StageCheck::State> state{StageCheck::State::kRunning};  // read on the server's threads
  checks.Add([&] { return Stage("sink.mariadb", state.load()); });
  HttpServer http(2);
  AddHealthRoutes(&http, &checks, 0);
  ASSERT_TRUE(http.Start("127.0.0.1:0").ok());
  httplib::Client client("127.0.0.1", http.port());
  EXPECT_EQ(client.Get("/healthz")->status, 200);
  EXPECT_EQ(client.Get("/readyz")->status, 200);
  state = StageCheck::State::kRetrying;
  EXPECT_EQ(client.Get("/healthz")->status, 200);
  auto ready = client.Get("/readyz");
  EXPECT_EQ(ready->status, 503);
  EXPECT_NE(ready->body.find("\"component\":\"sink.mariadb\""), std::string::npos);
  state = StageCheck::State::kStopped;
  EXPECT_EQ(client.Get("/healthz")->status, 503);
  http.Stop();
}

}  // namespace
}  // namespace mare
