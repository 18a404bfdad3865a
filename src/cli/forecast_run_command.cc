// `mare forecast run`: the forecast processor alone, against the log of --config (the embedded
// log in <data-dir>/log, or Kafka with log.kind = "kafka"): reads rollups, appends forecasts
// (docs/formats/forecasts.md), checkpoints to <data-dir>/forecast/checkpoint, and answers
// GET /api/v1/forecast beside /metrics. On Kafka it waits for the rollups topic if it does not
// exist yet. `mare run` includes the same processor; on the embedded log the two cannot run on
// one data dir at once (the log takes a lock).
#include <signal.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <iostream>

#include "cli/commands.h"
#include "cli/forecast_wiring.h"
#include "cli/open_log.h"
#include "cli/process.h"
#include "common/metrics.h"
#include "common/time.h"
#include "config/config.h"
#include "dashboard/role_status_publisher.h"
#include "processors/forecast/forecast_metrics.h"
#include "processors/forecast/forecast_processor.h"
#include "server/http_server.h"

namespace mare::cli {
namespace {

struct ForecastRunFlags {
  std::string config_path;
  std::vector<std::string> overrides;
  std::string data_dir;
  std::string listen = "127.0.0.1:8083";
};

int RunForecast(const ForecastRunFlags& flags) {
  auto config = LoadCommandConfig(flags.config_path, flags.overrides, flags.data_dir);
  if (!config.ok()) {
    std::cerr << "mare forecast run: " << config.status().message() << "\n";
    return 2;
  }
  sigset_t signals = BlockStopSignals();
  metrics::Registry& registry = metrics::Registry::Global();
  auto opened = OpenLog(*config, {.client_id = "mare-forecast", .wait_for_brokers = true, .metrics = &registry});
  if (!opened.ok()) {
    spdlog::error("log: {}{}", opened.status().ToString(),
                  config->log.kind == "kafka" ? "" : " (mare forecast run opens the log as its writer: stop `mare run`, which includes the forecasts)");
    return 1;
  }
  std::unique_ptr<log::Log> log = std::move(*opened);
  // Health, metrics and the forecast routes answer from the start, also while it waits below:
  // until the processor runs, the checks say "waiting" (not ready) and the routes 503.
  std::atomic<forecast::ForecastProcessor*> running{nullptr};
  HealthChecks health;  // outlives the server whose routes use it
  health.Add([&running, waiting = "waiting for the " + config->forecast.input_topic + " topic"] {
    forecast::ForecastProcessor* p = running.load();
    if (p == nullptr) return StageCheck{.component = "forecast", .state = StageCheck::State::kRetrying, .reason = waiting};
    return ConsumerCheck("forecast", p->health(), p->lag());
  });
  HttpServer http(2);
  ServeMetrics(http, registry);
  AddHealthRoutes(&http, &health, config->http.server.ready_max_lag);
  AddForecastRoute(&http, [&running]() -> const forecast::ForecastProcessor* { return running.load(); }, config->forecast.fields);
  if (Status listening = http.Start(flags.listen); !listening.ok()) {
    spdlog::error("{}", listening.ToString());
    return 1;
  }
  // On Kafka the rollups topic may come later (`mare stream` started beside this one): wait for
  // it, as the sinks do, instead of exiting. The embedded log is this command's alone (it holds
  // the writer's lock), so there nothing could create the topic meanwhile: Start says so at once.
  if (config->log.kind == "kafka" && log->Partitions(config->forecast.input_topic) <= 0) {
    spdlog::info("forecast: waiting for the {} topic in {} (not created yet)", config->forecast.input_topic,
                 DescribeLog(*config));
    while (log->Partitions(config->forecast.input_topic) <= 0) {  // asks the brokers each time
      timespec tick{1, 0};
      int sig = ::sigtimedwait(&signals, nullptr, &tick);
      if (sig == SIGINT || sig == SIGTERM) {
        http.Stop();
        spdlog::info("mare forecast run: stopped while waiting for the {} topic", config->forecast.input_topic);
        return 0;
      }
    }
  }
  auto started = forecast::ForecastProcessor::Start(config->forecast, log.get(), &registry);
  if (!started.ok()) {
    spdlog::error("{}", started.status().ToString());
    http.Stop();
    return 1;
  }
  std::unique_ptr<forecast::ForecastProcessor> processor = std::move(*started);
  running.store(processor.get());
  // On Kafka, its status for the dashboard of `mare store` (docs/formats/role-status.md).
  std::unique_ptr<dashboard::RoleStatusPublisher> status;
  if (config->log.kind == "kafka") {
    auto publishing = dashboard::RoleStatusPublisher::Start(log.get(), &registry, "forecast", DefaultMemberName(), {});
    if (!publishing.ok()) {
      spdlog::error("status: {}", publishing.status().ToString());
      http.Stop();
      (void)processor->Stop();
      return 1;
    }
    status = std::move(*publishing);
  }
  std::string fields;
  for (const auto& f : config->forecast.fields) fields += (fields.empty() ? "" : ",") + f;
  spdlog::info("mare forecast run: rollups -> forecasts in {}, fields {}, {} h ahead, {} d of history; GET "
               "http://{}/api/v1/forecast?sensor_id=; Ctrl-C to stop",
               DescribeLog(*config), fields, config->forecast.horizon_hours, config->forecast.history_days, flags.listen);

  auto& issued = registry.GetCounter(forecast_metrics::kIssued);
  auto& day_ahead = registry.GetCounter(forecast_metrics::kDayAheadIssued);
  auto& series = registry.GetGauge(forecast_metrics::kSeries);
  bool signalled = WaitForStop(
      signals, "mare forecast run", [&] { return !processor->healthy() && processor->health().stopped; },
      [&](double) {
        spdlog::info("forecast: {} series, {} forecasts issued ({} day-ahead), lag {} records", series.value(),
                     issued.value(), day_ahead.value(), processor->lag());
      });
  int exit_code = signalled ? 0 : 1;
  if (status && signalled) status->Stop();  // stopped on purpose: the dashboard forgets it
  status.reset();
  Status s = processor->Stop();
  http.Stop();  // before the processor goes: its routes and checks read it
  if (!s.ok()) {
    spdlog::error("forecast: {}", s.ToString());
    return 1;
  }
  if (s = log->Sync(); !s.ok()) {
    spdlog::error("log: final sync failed: {}", s.ToString());
    return 1;
  }
  spdlog::info("mare forecast run: stopped; {} forecasts issued in this run, checkpoint {}", issued.value(),
               processor->checkpoint_path());
  return exit_code;
}

}  // namespace

void AddForecastRunCommand(CLI::App& forecast, int* exit_code) {
  auto flags = std::make_shared<ForecastRunFlags>();
  auto* cmd = forecast.add_subcommand(
      "run",
      "Run the forecast processor alone: rollups -> forecasts topic, each series' next hours every time one of its "
      "hours closes, the day-ahead at 00:00 UTC (mare run includes it)");
  cmd->add_option("-c,--config", flags->config_path, "TOML config file: [log] and [forecast] (see config/mare.toml)")
      ->check(CLI::ExistingFile);
  cmd->add_option("--set", flags->overrides, "Override a config key: --set forecast.horizon_hours=48");
  cmd->add_option("--data-dir", flags->data_dir,
                  "Data directory for the checkpoint, and the embedded log in <data-dir>/log (config key data_dir)");
  cmd->add_option("--listen", flags->listen, "Where to serve /metrics and GET /api/v1/forecast")->capture_default_str();
  cmd->callback([flags, exit_code] { *exit_code = RunForecast(*flags); });
}

}  // namespace mare::cli
