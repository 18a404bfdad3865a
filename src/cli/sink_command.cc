// `mare sink mariadb` and `mare sink elasticsearch`: a sink on its own, beside a `mare run` (or
// on another machine sharing its data dir's log or its Kafka): it opens the log read-only and
// follows its topics. MariaDB: the rollups (and, with --readings or sink.mariadb.readings, the
// raw topic). Elasticsearch: the raw topic (and, with --rollups or sink.elasticsearch.rollups,
// the rollups).
#include <httplib.h>
#include <signal.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdlib>
#include <iostream>
#include <thread>

#include "cli/commands.h"
#include "cli/process.h"
#include "common/metrics.h"
#include "config/config.h"
#include "cli/open_log.h"
#include "server/http_server.h"
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
};

int RunMariaDbSink(const SinkFlags& flags) {
  auto config = LoadCommandConfig(flags.config_path, flags.overrides, flags.data_dir);
  if (!config.ok()) {
    std::cerr << "mare sink mariadb: " << config.status().message() << "\n";
    return 2;
  }
  if (flags.readings) config->sink_mariadb.readings = true;
  const bool readings = config->sink_mariadb.readings;
  sigset_t signals = BlockStopSignals();

  metrics::Registry& registry = metrics::Registry::Global();
  HttpServer http(2);
  ServeMetrics(http, registry);
  Status s = http.Start(flags.metrics_listen);
  if (!s.ok()) {
    spdlog::error("{}", s.ToString());
    return 1;
  }
  // The log read-only, reopened until the rollups topic exists (mare run creates it, after raw).
  std::unique_ptr<log::Log> log;
  std::unique_ptr<sinks::MariaDbSink> sink;
  bool said_waiting = false;
  for (;;) {
    timespec tick{0, 0};
    if (!sink) {
      auto opened = OpenLog(*config, {.read_only = true, .client_id = "mare-sink", .metrics = &registry});
      if (opened.ok() && (*opened)->Partitions("rollups") > 0 && (!readings || (*opened)->Partitions("raw") > 0)) {
        log = std::move(*opened);
        auto started = sinks::MariaDbSink::Start(config->sink_mariadb, log.get(), &registry);
        if (!started.ok()) {
          spdlog::error("mariadb sink: {}", started.status().ToString());
          return 1;
        }
        sink = std::move(*started);
        spdlog::info("mariadb sink: following {} topic rollups{} into {}:{} database {}; metrics on {}", DescribeLog(*config),
                     readings ? " and raw (table readings)" : "", config->sink_mariadb.host, config->sink_mariadb.port,
                     config->sink_mariadb.database, flags.metrics_listen);
      } else if (!said_waiting) {
        spdlog::info("mariadb sink: waiting for the rollups{} topic in {} ({})", readings ? " and raw" : "", DescribeLog(*config),
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
  if (sink) sink->Stop();
  http.Stop();
  spdlog::info("mariadb sink: stopped");
  return 0;
}

int RunElasticsearchSink(const SinkFlags& flags) {
  auto config = LoadCommandConfig(flags.config_path, flags.overrides, flags.data_dir);
  if (!config.ok()) {
    std::cerr << "mare sink elasticsearch: " << config.status().message() << "\n";
    return 2;
  }
  sinks::ElasticsearchSinkOptions& options = config->sink_elasticsearch;
  if (flags.rollups) options.rollups = true;
  sigset_t signals = BlockStopSignals();

  metrics::Registry& registry = metrics::Registry::Global();
  // A file of its own: dead-letter.log belongs to the `mare run` beside it, which counts and
  // rotates it.
  DeadLetterOptions dl = config->dead_letter;
  dl.path = config->data_dir + "/dead-letter-elasticsearch.log";
  auto dead_letter = DeadLetter::Open(dl, &registry);
  if (!dead_letter.ok()) {
    spdlog::error("dead-letter: {}", dead_letter.status().ToString());
    return 1;
  }
  HttpServer http(2);
  ServeMetrics(http, registry);
  Status s = http.Start(flags.metrics_listen);
  if (!s.ok()) {
    spdlog::error("{}", s.ToString());
    return 1;
  }
  std::string topics = options.readings && options.rollups ? "raw and rollups" : options.readings ? "raw" : "rollups";
  // The log read-only, reopened until the topics exist (mare run creates them).
  std::unique_ptr<log::Log> log;
  std::unique_ptr<sinks::ElasticsearchSink> sink;
  bool said_waiting = false;
  for (;;) {
    timespec tick{0, 0};
    if (!sink) {
      auto opened = OpenLog(*config, {.read_only = true, .client_id = "mare-sink", .metrics = &registry});
      if (opened.ok() && (!options.readings || (*opened)->Partitions("raw") > 0) &&
          (!options.rollups || (*opened)->Partitions("rollups") > 0)) {
        log = std::move(*opened);
        auto started = sinks::ElasticsearchSink::Start(options, log.get(), dead_letter->get(), &registry);
        if (!started.ok()) {
          spdlog::error("elasticsearch sink: {}", started.status().ToString());
          return 1;
        }
        sink = std::move(*started);
        spdlog::info("elasticsearch sink: following {} topic {} into {} (indices {}-*); rejected documents to {}; metrics on {}",
                     DescribeLog(*config), topics, options.url, options.index_prefix, dl.path, flags.metrics_listen);
      } else if (!said_waiting) {
        spdlog::info("elasticsearch sink: waiting for topic {} in {} ({})", topics, DescribeLog(*config),
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
  if (sink) sink->Stop();
  http.Stop();
  spdlog::info("elasticsearch sink: stopped");
  return 0;
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
  maria->add_option("-c,--config", flags->config_path, "TOML config file (see config/mare.toml)")->check(CLI::ExistingFile);
  maria->add_option("--set", flags->overrides, "Override a config key: --set sink.mariadb.host=db.example.org");
  maria->add_option("--data-dir", flags->data_dir, "Data directory whose log to follow (config key data_dir)");
  maria->add_option("--metrics-listen", flags->metrics_listen, "Where to serve /metrics")->capture_default_str();
  maria->add_flag("--readings", flags->readings,
                  "Also copy the raw readings into table readings (config key sink.mariadb.readings; off by default, "
                  "see docs/formats/mariadb-tables.md)");
  maria->callback([flags, exit_code] { *exit_code = RunMariaDbSink(*flags); });

  auto* es = cmd->add_subcommand(
      "elasticsearch",
      "Copy the raw readings (and with --rollups the rollups) into Elasticsearch or OpenSearch daily indices "
      "mare-readings-*, mare-rollups-*, for Kibana (config section [sink.elasticsearch])");
  es->add_option("-c,--config", flags->config_path, "TOML config file (see config/mare.toml)")->check(CLI::ExistingFile);
  es->add_option("--set", flags->overrides, "Override a config key: --set sink.elasticsearch.url=http://es.example.org:9200");
  es->add_option("--data-dir", flags->data_dir, "Data directory whose log to follow (config key data_dir)");
  es->add_option("--metrics-listen", flags->metrics_listen, "Where to serve /metrics")->capture_default_str();
  es->add_flag("--rollups", flags->rollups, "Also copy the rollups into mare-rollups-* (config key sink.elasticsearch.rollups)");
  es->callback([flags, exit_code] { *exit_code = RunElasticsearchSink(*flags); });
}

}  // namespace mare::cli
