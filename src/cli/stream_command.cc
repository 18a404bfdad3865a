// `mare stream`: the rollup stream processor alone, against the log of --config (the embedded
// log in <data-dir>/log by default, or Kafka with log.kind = "kafka"): reads raw, appends rollups
// (docs/formats/rollups.md), checkpoints to <data-dir>/rollup/checkpoint, or on Kafka joins
// consumer group rollup, shares raw's partitions with the other `mare stream` processes and
// commits its state in Kafka transactions (docs/formats/kafka.md).
// `mare run` includes the same processor; on the embedded log the two cannot run on one data dir
// at once, since both open the log as its writer and the log takes a lock.
#include <signal.h>
#include <spdlog/spdlog.h>

#include <iostream>

#include "cli/commands.h"
#include "cli/process.h"
#include "common/metrics.h"
#include "common/time.h"
#include "cli/open_log.h"
#include "config/config.h"
#include "processors/rollup/rollup_metrics.h"
#include "processors/rollup/rollup_processor.h"
#include "dashboard/role_status_publisher.h"
#include "server/http_server.h"
#include "reading/dead_letter.h"

namespace mare::cli {
namespace {

struct StreamFlags {
  std::string config_path;
  std::vector<std::string> overrides;      // --set
  std::vector<std::string> key_overrides;  // the rollup flags below, as config keys (applied after --set)
  std::string data_dir;
  std::string metrics_listen = "127.0.0.1:8082";
  std::string member;
};

// A flag that stands for a config key: given, it is one more override of that key, so that the
// config file's [rollup] applies and the flag only wins over it.
void AddKeyFlag(CLI::App* cmd, StreamFlags* flags, const std::string& flag, const std::string& key, const std::string& help,
                bool list = false) {
  cmd->add_option_function<std::string>(
         flag,
         [flags, key, list](const std::string& value) {
           std::string toml;
           if (list) {  // "1m,1h,1d" -> ["1m","1h","1d"]
             toml = "[";
             size_t start = 0;
             for (;;) {
               size_t comma = value.find(',', start);
               toml += (start ? "," : "") + std::string("\"") + value.substr(start, comma - start) + "\"";
               if (comma == std::string::npos) break;
               start = comma + 1;
             }
             toml += "]";
           } else {
             toml = value;  // a bare word is taken as a string by LoadConfig
           }
           flags->key_overrides.push_back(key + "=" + toml);
         },
         help + " (config " + key + "; default " + FormatConfigValue(Config{}, key) + ")");
}

int Fail(const std::string& what) {
  std::cerr << "mare stream: " << what << "\n";
  return 2;
}

int Stream(const StreamFlags& flags) {
  // The config file gives the log, data_dir and [rollup]; the flags override its keys.
  std::vector<std::string> overrides = flags.overrides;
  overrides.insert(overrides.end(), flags.key_overrides.begin(), flags.key_overrides.end());
  auto config = LoadCommandConfig(flags.config_path, overrides, flags.data_dir);
  if (!config.ok()) return Fail(config.status().message());
  const std::string data_dir = config->data_dir;
  rollup::RollupOptions o = config->rollup;
  o.group_mode = config->log.kind == "kafka";
  o.member = flags.member.empty() ? DefaultMemberName() : flags.member;
  o.output_retention_us = config->log.retention_us;

  sigset_t signals = BlockStopSignals();

  metrics::Registry& registry = metrics::Registry::Global();
  auto opened = OpenLog(*config, {.client_id = "mare-stream", .wait_for_brokers = true, .metrics = &registry});
  if (!opened.ok()) {
    spdlog::error("log: {}{}", opened.status().ToString(),
                  config->log.kind == "kafka" ? "" : " (mare stream opens the log as its writer: stop `mare run`, which includes the rollups)");
    return 1;
  }
  std::unique_ptr<log::Log> log = std::move(*opened);
  auto dead_letter = DeadLetter::Open(config->dead_letter, &registry);
  if (!dead_letter.ok()) {
    spdlog::error("dead-letter: {}", dead_letter.status().ToString());
    return 1;
  }
  HealthChecks health;  // outlives the server whose routes use it
  HttpServer http(2);
  ServeMetrics(http, registry);
  AddHealthRoutes(&http, &health, config->http.server.ready_max_lag);
  Status listening = http.Start(flags.metrics_listen);
  if (!listening.ok()) {
    spdlog::error("{}", listening.ToString());
    return 1;
  }
  auto started = rollup::RollupProcessor::Start(o, log.get(), dead_letter->get(), &registry);
  if (!started.ok()) {
    spdlog::error("{}", started.status().ToString());
    return 1;
  }
  std::unique_ptr<rollup::RollupProcessor> processor = std::move(*started);
  health.Add([p = processor.get()] { return ConsumerCheck("rollup", p->health(), p->lag()); });
  // On Kafka, its status for the dashboard of `mare store` (docs/formats/role-status.md).
  std::unique_ptr<dashboard::RoleStatusPublisher> status;
  if (o.group_mode) {
    auto publishing = dashboard::RoleStatusPublisher::Start(log.get(), &registry, "stream", o.member, {});
    if (!publishing.ok()) {
      spdlog::error("status: {}", publishing.status().ToString());
      return 1;
    }
    status = std::move(*publishing);
  }
  std::string names;
  for (const auto& r : o.resolutions) names += (names.empty() ? "" : ",") + r.name;
  spdlog::info("mare stream: raw -> rollups in {}, windows {}, lateness {}, emit every {}, checkpoint every {}; Ctrl-C to stop",
               DescribeLog(*config), names, FormatDuration(o.lateness_us), FormatDuration(o.emit_interval_us),
               FormatDuration(o.checkpoint_interval_us));

  auto& readings = registry.GetCounter(rollup_metrics::kReadingsCounted);
  auto& emitted = registry.GetCounter(rollup_metrics::kMessagesEmitted);
  auto& dropped = registry.GetCounter(rollup_metrics::kLateReadingsDropped);
  auto& watermark = registry.GetGauge(rollup_metrics::kWatermarkSeconds);
  auto& open_windows = registry.GetGauge(rollup_metrics::kOpenWindows);
  uint64_t last_readings = 0;
  bool signalled = WaitForStop(
      signals, "mare stream", [&] { return !processor->healthy() && processor->health().stopped; }, [&](double secs) {
    uint64_t n = readings.value();
    spdlog::info("rollup: {} readings ({:.0f}/s), {} messages emitted, {} dropped late, lag {} records, {} open windows, watermark {}",
                 n, static_cast<double>(n - last_readings) / secs, emitted.value(), dropped.value(), processor->lag(),
                 open_windows.value(),
                 watermark.value() > 0 ? FormatTimestamp(static_cast<int64_t>(watermark.value() * 1e6)) : "none");
    last_readings = n;
  });
  int exit_code = signalled ? 0 : 1;
  if (status && signalled) status->Stop();  // a failed processor stays listed, as stale
  Status s = processor->Stop();
  http.Stop();
  if (!s.ok()) {
    spdlog::error("rollup: {}", s.ToString());
    return 1;
  }
  s = log->Sync();
  if (!s.ok()) {
    spdlog::error("log: final sync failed: {}", s.ToString());
    return 1;
  }
  spdlog::info("mare stream: stopped; {} readings rolled up in this run, checkpoint {}", readings.value(),
               o.group_mode ? "in topic " + o.state_topic : processor->checkpoint_path());
  return exit_code;
}

}  // namespace

void AddStreamCommand(CLI::App& app, int* exit_code) {
  auto flags = std::make_shared<StreamFlags>();
  auto* cmd = app.add_subcommand(
      "stream",
      "Run the rollup stream processor alone: raw -> rollups topic (mare run includes it). On Kafka any number "
      "share the partitions as consumer group rollup; on the embedded log, not beside mare run on the same data dir");
  cmd->add_option("-c,--config", flags->config_path, "TOML config file: its [log] section says which log (see config/mare.toml)")
      ->check(CLI::ExistingFile);
  cmd->add_option("--set", flags->overrides, "Override a config key: --set log.kind=kafka --set log.kafka.brokers=k1:9092");
  cmd->add_option("--data-dir", flags->data_dir,
                  "Data directory for the checkpoint and dead-letter file, and the embedded log in <data-dir>/log "
                  "(config key data_dir; default data)");
  AddKeyFlag(cmd, flags.get(), "--resolutions", "rollup.resolutions", "Window lengths, comma-separated", /*list=*/true);
  AddKeyFlag(cmd, flags.get(), "--lateness", "rollup.lateness", "Allowed lateness behind the newest event time");
  cmd->add_option("--metrics-listen", flags->metrics_listen, "Where to serve /metrics")->capture_default_str();
  AddKeyFlag(cmd, flags.get(), "--emit-interval", "rollup.emit_interval", "How often changed windows are emitted");
  AddKeyFlag(cmd, flags.get(), "--checkpoint-interval", "rollup.checkpoint_interval",
             "How often state and input offsets are checkpointed");
  cmd->add_option("--member", flags->member,
                  "On Kafka: this processor's name in consumer group rollup, unique among its members; part of its "
                  "transactional.id, so a restarted member with the same name fences its previous incarnation at "
                  "once (default <host>-<pid>)");
  AddKeyFlag(cmd, flags.get(), "--dead-letter-max", "ingest.dead_letter_max", "Late readings kept in <data-dir>/dead-letter.log");
  cmd->callback([flags, exit_code] { *exit_code = Stream(*flags); });
}

}  // namespace mare::cli
