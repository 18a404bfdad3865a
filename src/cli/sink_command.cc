// `mare sink mariadb`, `mare sink elasticsearch` and `mare sink clickhouse`: a sink on its own,
// beside a `mare run` (or on another machine sharing its data dir's log or its Kafka): it opens the
// log read-only and follows its topics. MariaDB: the rollups (and, with --readings or sink.mariadb.readings, the
// raw topic). Elasticsearch: the raw topic (and, with --rollups or sink.elasticsearch.rollups,
// the rollups; with --forecasts or sink.elasticsearch.forecasts, the forecasts). ClickHouse: the raw topic and the rollups (each can be turned off).
#include <fmt/format.h>
#include <httplib.h>
#include <signal.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <functional>
#include <cstdlib>
#include <iostream>
#include <thread>

#include "cli/commands.h"
#include "cli/process.h"
#include "common/metrics.h"
#include "config/config.h"
#include "dashboard/role_status_publisher.h"
#include "cli/open_log.h"
#include "server/http_server.h"
#include "sinks/clickhouse/clickhouse_sink.h"
#include "sinks/elasticsearch/elasticsearch_sink.h"
#include "sinks/mariadb/mariadb_sink.h"

namespace mare::cli {

namespace {

struct SinkFlags {
  std::string config_path;
  std::vector<std::string> overrides;
  std::string data_dir;
  std::string metrics_listen = "127.0.0.1:8081";
  bool readings = false;
  bool rollups = false;
  bool forecasts = false;  // Elasticsearch's alone
};

// What differs between sinks run alone: which topics they need, how they start, what they say.
struct Follower {
  std::string name;     // "mariadb sink"
  std::string waiting;  // "the rollups topic", for the line said while they do not exist yet
  std::function<bool(log::Log&)> ready;  // the topics it reads exist
  // Starts the sink on the log and adds its checks; returns its Stop.
  std::function<Result<std::function<void()>>(log::Log*, HealthChecks*)> start;
};

// Serves /metrics, opens the log read-only, reopening it each second until the follower's
// topics exist (mare run creates them), starts the sink, and runs until SIGINT or SIGTERM.
int FollowLog(const Config& config, const SinkFlags& flags, const Follower& f) {
  sigset_t signals = BlockStopSignals();
  HealthChecks health;  // outlives the server whose routes use it
  HttpServer http(2);
  ServeMetrics(http, metrics::Registry::Global());
  AddHealthRoutes(&http, &health, config.http.server.ready_max_lag);
  Status s = http.Start(flags.metrics_listen);
  if (!s.ok()) {
    spdlog::error("{}", s.ToString());
    return 1;
  }
  std::unique_ptr<log::Log> log;
  std::function<void()> stop;
  std::unique_ptr<dashboard::RoleStatusPublisher> status;
  bool said_waiting = false;
  for (;;) {
    timespec tick{0, 0};
    if (!stop) {
      auto opened = OpenLog(config, {.read_only = true, .client_id = "mare-sink", .wait_for_brokers = true, .metrics = &metrics::Registry::Global()});
      if (opened.ok() && f.ready(**opened)) {
        log = std::move(*opened);
        auto started = f.start(log.get(), &health);
        if (!started.ok()) {
          spdlog::error("{}: {}", f.name, started.status().ToString());
          return 1;
        }
        stop = std::move(*started);
        if (config.log.kind == "kafka") {  // its status for the dashboard of `mare store` (docs/formats/role-status.md)
          auto publishing = dashboard::RoleStatusPublisher::Start(log.get(), &metrics::Registry::Global(), f.name,
                                                                  DefaultMemberName(), {});
          if (!publishing.ok()) {
            spdlog::error("status: {}", publishing.status().ToString());
            stop();
            return 1;
          }
          status = std::move(*publishing);
        }
      } else if (!said_waiting) {
        spdlog::info("{}: waiting for {} in {} ({})", f.name, f.waiting, DescribeLog(config),
                     opened.ok() ? "not created yet" : opened.status().ToString());
        said_waiting = true;
      }
      tick.tv_sec = 1;
    } else {
      tick.tv_sec = 3600;
    }
    int sig = ::sigtimedwait(&signals, nullptr, &tick);
    if (sig == SIGINT || sig == SIGTERM) break;
  }
  if (status) status->Stop();
  if (stop) stop();
  http.Stop();
  spdlog::info("{}: stopped", f.name);
  return 0;
}

int RunMariaDbSink(const SinkFlags& flags) {
  auto config = LoadCommandConfig(flags.config_path, flags.overrides, flags.data_dir);
  if (!config.ok()) {
    std::cerr << "mare sink mariadb: " << config.status().message() << "\n";
    return 2;
  }
  if (flags.readings) config->sink_mariadb.readings = true;
  const bool readings = config->sink_mariadb.readings;
  std::unique_ptr<sinks::MariaDbSink> sink;
  Follower f;
  f.name = "mariadb sink";
  f.waiting = readings ? "the rollups and raw topics" : "the rollups topic";
  f.ready = [&](log::Log& log) { return log.Partitions("rollups") > 0 && (!readings || log.Partitions("raw") > 0); };
  f.start = [&](log::Log* log, HealthChecks* checks) -> Result<std::function<void()>> {
    auto started = sinks::MariaDbSink::Start(config->sink_mariadb, log, &metrics::Registry::Global());
    if (!started.ok()) return started.status();
    sink = std::move(*started);
    AddSinkChecks(checks, "mariadb", sink.get());
    spdlog::info("mariadb sink: following {} topic rollups{} into {}:{} database {}; metrics on {}", DescribeLog(*config),
                 readings ? " and raw (table readings)" : "", config->sink_mariadb.host, config->sink_mariadb.port,
                 config->sink_mariadb.database, flags.metrics_listen);
    return std::function<void()>([&] { sink->Stop(); });
  };
  return FollowLog(*config, flags, f);
}

// The sinks that copy the raw topic (and optionally the rollups) to a remote server, with a
// dead-letter file of their own: `kind` "elasticsearch" or "clickhouse", `into` says where.
template <typename Sink, typename Options>
int RunCopySink(const SinkFlags& flags, const std::string& kind, Options Config::*section,
                const std::function<std::string(const Options&)>& into) {
  auto config = LoadCommandConfig(flags.config_path, flags.overrides, flags.data_dir);
  if (!config.ok()) {
    std::cerr << "mare sink " << kind << ": " << config.status().message() << "\n";
    return 2;
  }
  Options& options = (*config).*section;
  if (flags.rollups) options.rollups = true;
  // Only the Elasticsearch sink follows the forecasts topic.
  bool forecasts = false;
  if constexpr (requires { options.forecasts; }) {
    if (flags.forecasts) options.forecasts = true;
    forecasts = options.forecasts;
  }
  // A file of its own: dead-letter.log belongs to the `mare run` beside it, which counts and
  // rotates it.
  DeadLetterOptions dl = config->dead_letter;
  dl.path = config->data_dir + "/dead-letter-" + kind + ".log";
  auto dead_letter = DeadLetter::Open(dl, &metrics::Registry::Global());
  if (!dead_letter.ok()) {
    spdlog::error("dead-letter: {}", dead_letter.status().ToString());
    return 1;
  }
  std::string topics;
  for (auto [on, name] : {std::pair{options.readings, "raw"}, {options.rollups, "rollups"}, {forecasts, "forecasts"}}) {
    if (on) topics += (topics.empty() ? "" : ", ") + std::string(name);
  }
  std::unique_ptr<Sink> sink;
  Follower f;
  f.name = kind + " sink";
  f.waiting = "topic " + topics;
  f.ready = [&](log::Log& log) {
    return (!options.readings || log.Partitions("raw") > 0) && (!options.rollups || log.Partitions("rollups") > 0) &&
           (!forecasts || log.Partitions("forecasts") > 0);
  };
  f.start = [&](log::Log* log, HealthChecks* checks) -> Result<std::function<void()>> {
    auto started = Sink::Start(options, log, dead_letter->get(), &metrics::Registry::Global());
    if (!started.ok()) return started.status();
    sink = std::move(*started);
    AddSinkChecks(checks, kind, sink.get());
    spdlog::info("{} sink: following {} topic {} into {}; rejected records to {}; metrics on {}", kind,
                 DescribeLog(*config), topics, into(options), dl.path, flags.metrics_listen);
    return std::function<void()>([&] { sink->Stop(); });
  };
  return FollowLog(*config, flags, f);
}

int RunElasticsearchSink(const SinkFlags& flags) {
  return RunCopySink<sinks::ElasticsearchSink, sinks::ElasticsearchSinkOptions>(
      flags, "elasticsearch", &Config::sink_elasticsearch, [](const sinks::ElasticsearchSinkOptions& o) {
        return fmt::format("{} (indices {}-*)", o.url, o.index_prefix);
      });
}

int RunClickHouseSink(const SinkFlags& flags) {
  return RunCopySink<sinks::ClickHouseSink, sinks::ClickHouseSinkOptions>(
      flags, "clickhouse", &Config::sink_clickhouse,
      [](const sinks::ClickHouseSinkOptions& o) { return fmt::format("{} (database {})", o.url, o.database); });
}

// The flags every sink takes; `set_example` shows an override of its own section.
void AddCommonSinkFlags(CLI::App* sink, SinkFlags* flags, const std::string& set_example) {
  sink->add_option("-c,--config", flags->config_path, "TOML config file (see config/mare.toml)")->check(CLI::ExistingFile);
  sink->add_option("--set", flags->overrides, "Override a config key: --set " + set_example);
  sink->add_option("--data-dir", flags->data_dir, "Data directory whose log to follow (config key data_dir)");
  sink->add_option("--metrics-listen", flags->metrics_listen, "Where to serve /metrics")->capture_default_str();
}

}  // namespace

void AddSinkCommand(CLI::App& app, int* exit_code) {
  auto* cmd = app.add_subcommand("sink", "Run a sink on its own, following the log of a data dir");
  cmd->require_subcommand(1);
  auto flags = std::make_shared<SinkFlags>();
  auto* maria = cmd->add_subcommand(
      "mariadb",
      "Upsert the rollups into MariaDB tables rollup_minute, rollup_hour, rollup_day, and with --readings the raw "
      "readings into table readings (config section [sink.mariadb])");
  AddCommonSinkFlags(maria, flags.get(), "sink.mariadb.host=db.example.org");
  maria->add_flag("--readings", flags->readings,
                  "Also copy the raw readings into table readings (config key sink.mariadb.readings; off by default, "
                  "see docs/formats/mariadb-tables.md)");
  maria->callback([flags, exit_code] { *exit_code = RunMariaDbSink(*flags); });

  auto* es = cmd->add_subcommand(
      "elasticsearch",
      "Copy the raw readings (and with --rollups the rollups, with --forecasts the forecasts) into Elasticsearch or "
      "OpenSearch daily indices mare-readings-* (or a data stream), mare-rollups-*, mare-forecasts-*, for Kibana "
      "(config section [sink.elasticsearch])");
  AddCommonSinkFlags(es, flags.get(), "sink.elasticsearch.url=http://es.example.org:9200");
  es->add_flag("--rollups", flags->rollups, "Also copy the rollups into mare-rollups-* (config key sink.elasticsearch.rollups)");
  es->add_flag("--forecasts", flags->forecasts,
               "Also copy the forecasts into mare-forecasts-* (config key sink.elasticsearch.forecasts)");
  es->callback([flags, exit_code] { *exit_code = RunElasticsearchSink(*flags); });

  auto* ch = cmd->add_subcommand(
      "clickhouse",
      "Copy the raw readings and the rollups into ClickHouse tables readings and rollups (config section "
      "[sink.clickhouse]; --set sink.clickhouse.rollups=false for the readings alone)");
  AddCommonSinkFlags(ch, flags.get(), "sink.clickhouse.url=http://ch.example.org:8123");
  ch->callback([flags, exit_code] { *exit_code = RunClickHouseSink(*flags); });
}

}  // namespace mare::cli
