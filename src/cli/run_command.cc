// `mare run`: the whole pipeline in one process: sources -> log -> rollups -> MariaDB sink, and
// the columnar store with the query API and the dashboard on the HTTP server. `mare ingest` and
// `mare store` run one role each of the same pipeline, for a log (Kafka) that several machines
// share; `mare stream` and `mare sink` are the other roles (stream_command.cc, sink_command.cc).
#include <httplib.h>
#include <signal.h>
#include <fmt/ranges.h>
#include <spdlog/spdlog.h>

#include <filesystem>
#include <iostream>
#include <string_view>
#include <vector>

#include "cli/commands.h"
#include "cli/forecast_wiring.h"
#include "cli/process.h"
#include "common/metrics.h"
#include "common/time.h"
#include "config/config.h"
#include "dashboard/dashboard.h"
#include "dashboard/role_status_publisher.h"
#include "dashboard/role_status_reader.h"
#include "cli/open_log.h"
#include "processors/rollup/rollup_processor.h"
#include "processors/rollup/window.h"
#include "pgwire/pgwire_server.h"
#include "query/query_api.h"
#include "store/feeder.h"
#include "store/forecast_feeder.h"
#include "server/access.h"
#include "server/http_server.h"
#include "sources/http_source.h"
#include "sources/ingest.h"
#include "sources/mqtt_source.h"
#include "sources/line_protocol_http.h"
#include "sources/source_metrics.h"
#include "sources/stream_source.h"
#include "sources/udp_source.h"

namespace mare::cli {
namespace {

// The parts of the pipeline a command runs (each still subject to its config section).
struct Roles {
  const char* command;   // "mare run", "mare ingest", "mare store"
  bool sources = false;  // UDP, TCP, unix, HTTP ingest and MQTT into the raw topic
  bool rollup = false;   // the rollup processor, the forecast processor and the MariaDB sink
  bool store = false;    // the columnar store, the query API and the dashboard
};

struct RunFlags {
  std::string config_path;
  std::vector<std::string> overrides;
  std::string data_dir;
  bool print_config = false;
  bool repair_log = false;
};

// Sums a counter family over the running sources, for the periodic status line.
uint64_t Sum(metrics::Registry& r, const metrics::Metric& counter, const std::vector<std::string>& sources) {
  double total = 0;
  for (const auto& s : sources) total += r.Sum(counter, {{"source", s}});
  return static_cast<uint64_t>(total);
}

// A listener that other machines can reach without a credential is said at start, so that
// exposing it is a choice (README, "Security").
void WarnIfExposed(const std::string& what, const std::string& listen, const std::string& why) {
  size_t colon = listen.rfind(':');
  if (IsLoopbackHost(colon == std::string::npos ? listen : listen.substr(0, colon))) return;
  spdlog::warn("{}: listening on {}, not loopback: {}", what, listen, why);
}

// Keeps what started, or says why it did not (false: the command ends).
template <typename Started>
bool KeepStarted(const char* name, Result<std::unique_ptr<Started>> started, std::unique_ptr<Started>* out) {
  if (!started.ok()) {
    spdlog::error("{}: {}", name, started.status().ToString());
    return false;
  }
  *out = std::move(*started);
  return true;
}

constexpr const char* kNoToken =
    " ingest carries no token, so anyone who reaches it can send readings: keep it on a trusted network";

int Run(const RunFlags& flags, const Roles& roles) {
  auto config = LoadCommandConfig(flags.config_path, flags.overrides, flags.data_dir);
  if (!config.ok()) {
    std::cerr << roles.command << ": " << config.status().message() << "\n";
    return 2;
  }
  if (flags.print_config) {
    std::cout << FormatConfig(*config);
    return 0;
  }
  const Config& c = *config;
  std::error_code ec;
  std::filesystem::create_directories(c.data_dir, ec);
  if (ec) {
    std::cerr << roles.command << ": cannot create data_dir " << c.data_dir << ": " << ec.message() << "\n";
    return 1;
  }

  // Signals go to the main thread only: block them before any thread starts. SIGHUP reads the
  // TLS certificates again (TlsReloader).
  sigset_t signals = BlockStopSignals();
  sigaddset(&signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  metrics::Registry& registry = metrics::Registry::Global();
  auto opened = OpenLog(c, {.repair = flags.repair_log, .client_id = std::string(roles.command).replace(4, 1, "-"), .wait_for_brokers = true, .metrics = &registry});
  if (!opened.ok()) {
    spdlog::error("log: {}", opened.status().ToString());
    return 1;
  }
  std::unique_ptr<log::Log> log = std::move(*opened);
  Status s = log->CreateTopic({.name = "raw", .partitions = c.log.partitions, .retention_us = c.log.retention_us,
                               .retention_bytes = c.log.retention_bytes,
                               .compression = log::CompressionNamed(c.log.compression)});
  if (!s.ok()) {
    spdlog::error("log: {}", s.ToString());
    return 1;
  }
  if (log->Partitions("raw") != c.log.partitions) {
    spdlog::warn("log: topic raw keeps its {} partitions (log.partitions = {} applies only to a new topic)",
                 log->Partitions("raw"), c.log.partitions);
  }
  auto dead_letter = DeadLetter::Open(c.dead_letter, &registry);
  if (!dead_letter.ok()) {
    spdlog::error("dead-letter: {}", dead_letter.status().ToString());
    return 1;
  }

  Ingest ingest(log.get(), c.ingest, dead_letter->get(), &registry);

  // Processors, then sinks: the reading's path through the process.
  std::unique_ptr<rollup::RollupProcessor> rollups;
  if (roles.rollup && c.rollup.enabled) {
    rollup::RollupOptions ro = c.rollup;
    // On Kafka the rollups are a consumer group with its state in Kafka: `mare stream`
    // processes on other machines can share the work.
    ro.group_mode = c.log.kind == "kafka";
    ro.member = DefaultMemberName();
    ro.output_retention_us = c.log.retention_us;
    auto started = rollup::RollupProcessor::Start(ro, log.get(), dead_letter->get(), &registry);
    if (!KeepStarted("rollup", std::move(started), &rollups)) return 1;
    std::string list;
    for (const auto& r : c.rollup.resolutions) list += (list.empty() ? "" : ",") + r.name;
    spdlog::info("rollup: {} windows, lateness {}, emitted every {} to topic rollups", list,
                 FormatDuration(c.rollup.lateness_us), FormatDuration(c.rollup.emit_interval_us));
  }
  // The columnar store, fed from the raw topic, queried over HTTP.
  std::unique_ptr<store::Store> store;
  std::unique_ptr<store::StoreFeeder> feeder;
  std::unique_ptr<store::ForecastFeeder> store_forecasts;
  if (roles.store && c.store.enabled) {
    if (!KeepStarted("store", store::Store::Open(c.store, &registry), &store)) return 1;
    auto started = store::StoreFeeder::Start(store.get(), log.get(), c.ingest.parser, {}, &registry);
    if (!KeepStarted("store", std::move(started), &feeder)) return 1;
    // SQL's table forecasts, from the forecasts topic (made by the forecast processor, here or elsewhere).
    auto started_forecasts = store::ForecastFeeder::Start(&store->forecasts(), log.get(), {}, &registry);
    if (!KeepStarted("store: forecasts", std::move(started_forecasts), &store_forecasts)) return 1;
    store::Store::Stats stats = store->GetStats();
    spdlog::info("store: {} readings in {} segments ({:.1f} MB) and {} forecast rows in {}/store, retention {}", stats.rows,
                 stats.segments, static_cast<double>(stats.bytes) / 1e6, store->forecasts().rows(), c.data_dir,
                 c.store.retention_us > 0 ? FormatDuration(c.store.retention_us) : "none");
  }

  // Forecasts from the rollups; a new one starts with the store's hourly means as history.
  std::unique_ptr<forecast::ForecastProcessor> forecasts;
  if (roles.rollup && c.forecast.enabled && (c.rollup.enabled || log->Partitions("rollups") > 0)) {
    forecast::ForecastOptions fo = c.forecast;
    if (store) fo.history = StoreHistory(store.get(), fo.fields);
    if (!KeepStarted("forecast", forecast::ForecastProcessor::Start(fo, log.get(), &registry), &forecasts)) return 1;
    std::string list;
    for (const auto& f : c.forecast.fields) list += (list.empty() ? "" : ",") + f;
    spdlog::info("forecast: {} per sensor, {} h ahead at every closed hour, to topic forecasts", list,
                 c.forecast.horizon_hours);
  }

  // The sinks that copy topics to a remote server (after the forecast processor, which makes the
  // forecasts topic the Elasticsearch sink may follow): the rollups topic made first when they follow it.
  auto start_copy_sink = [&](auto& options, const char* name, auto start) -> decltype(start()) {
    Status made = options.rollups ? log->CreateTopic({.name = "rollups", .partitions = c.log.partitions,
                                                      .compact = true, .retention_us = c.log.retention_us})
                                  : Status::OK();
    if (!made.ok()) return made;
    auto started = start();
    if (started.ok()) {
      std::vector<std::string_view> topics;
      if (options.readings) topics.push_back("readings");
      if (options.rollups) topics.push_back("rollups");
      if constexpr (requires { options.forecasts; }) {
        if (options.forecasts) topics.push_back("forecasts");
      }
      spdlog::info("{} sink: {} into {}", name, fmt::join(topics, ", "), options.url);
    }
    return started;
  };
  std::unique_ptr<sinks::ElasticsearchSink> elasticsearch;
  if (roles.rollup && c.sink_elasticsearch.enabled) {
    auto started = start_copy_sink(c.sink_elasticsearch, "elasticsearch", [&] {
      return sinks::ElasticsearchSink::Start(c.sink_elasticsearch, log.get(), dead_letter->get(), &registry);
    });
    if (!KeepStarted("elasticsearch sink", std::move(started), &elasticsearch)) return 1;
  }
  std::unique_ptr<sinks::ClickHouseSink> clickhouse;
  if (roles.rollup && c.sink_clickhouse.enabled) {
    auto started = start_copy_sink(c.sink_clickhouse, "clickhouse", [&] {
      return sinks::ClickHouseSink::Start(c.sink_clickhouse, log.get(), dead_letter->get(), &registry);
    });
    if (!KeepStarted("clickhouse sink", std::move(started), &clickhouse)) return 1;
  }

  // Sinks, once the topics they follow exist.
  std::unique_ptr<sinks::MariaDbSink> mariadb;
  if (roles.rollup && c.sink_mariadb.enabled) {
    s = log->CreateTopic(
        {.name = "rollups", .partitions = c.log.partitions, .compact = true, .retention_us = c.log.retention_us});
    auto started = s.ok() ? sinks::MariaDbSink::Start(c.sink_mariadb, log.get(), &registry)
                          : Result<std::unique_ptr<sinks::MariaDbSink>>(s);
    if (!KeepStarted("mariadb sink", std::move(started), &mariadb)) return 1;
    spdlog::info("mariadb sink: rollups{}{} into {}:{} database {}",
                 c.sink_mariadb.forecasts && log->Partitions(c.sink_mariadb.forecasts_topic) > 0 ? ", forecasts" : "",
                 c.sink_mariadb.readings ? " and readings" : "", c.sink_mariadb.host, c.sink_mariadb.port,
                 c.sink_mariadb.database);
  }

  // On Kafka the roles may run apart: each says its status on the status topic, and the one
  // serving the dashboard reads the others' (docs/formats/role-status.md).
  const std::string role = std::string(roles.command).substr(5);
  const std::string instance = DefaultMemberName();
  std::unique_ptr<dashboard::RoleStatusPublisher> status_publisher;
  std::unique_ptr<dashboard::RoleStatusReader> status_reader;
  if (c.log.kind == "kafka") {
    const dashboard::RoleStatusOptions status_options;
    auto started = dashboard::RoleStatusPublisher::Start(log.get(), &registry, role, instance, status_options);
    if (!KeepStarted("status", std::move(started), &status_publisher)) return 1;
    if (roles.store && c.http.enabled) {
      auto reading = dashboard::RoleStatusReader::Start(log.get(), status_publisher->key(), status_options);
      if (!KeepStarted("status", std::move(reading), &status_reader)) return 1;
    }
  }

  std::vector<std::string> running;
  std::unique_ptr<dashboard::Dashboard> dashboard;  // outlives the server whose routes use it
  HealthChecks health;                                // so do the stages' checks
  std::unique_ptr<HttpServer> http;
  std::unique_ptr<HttpSource> http_source;
  std::unique_ptr<LineProtocolHttp> line_http;
  if (c.http.enabled) {
    http = std::make_unique<HttpServer>(c.http.server, &registry);
    ServeMetrics(*http, registry);
    if (feeder) health.Add([f = feeder.get()] { return ConsumerCheck("store", f->health(), f->lag()); });
    if (store_forecasts) {
      health.Add([f = store_forecasts.get()] { return ConsumerCheck("store/forecasts", f->health(), f->lag()); });
    }
    if (rollups) health.Add([r = rollups.get()] { return ConsumerCheck("rollup", r->health(), r->lag()); });
    if (forecasts) health.Add([f = forecasts.get()] { return ConsumerCheck("forecast", f->health(), f->lag()); });
    if (mariadb) AddSinkChecks(&health, "mariadb", mariadb.get());
    if (elasticsearch) AddSinkChecks(&health, "elasticsearch", elasticsearch.get());
    if (clickhouse) AddSinkChecks(&health, "clickhouse", clickhouse.get());
    AddHealthRoutes(http.get(), &health, c.http.server.ready_max_lag);
    std::string routes;
    if (roles.sources) {
      http_source = std::make_unique<HttpSource>(&ingest, http.get(), c.http.server.threads);
      routes += "POST /api/v1/ingest, ";
      if (c.line_protocol.http) {
        line_http = std::make_unique<LineProtocolHttp>(&ingest, http.get(), c.line_protocol.parse, c.http.server.threads);
        routes += "POST /write and /api/v2/write (line protocol), ";
      }
    }
    if (store) {
      query::AddQueryRoutes(http.get(), store.get(), c.query, &registry);
      routes += "GET /api/v1/query, GET /api/v1/sensors, ";
    }
    if (forecasts) {
      AddForecastRoute(http.get(), [p = forecasts.get()] { return p; }, c.forecast.fields);
      routes += "GET /api/v1/forecast, ";
    }
    if (roles.store) {
      dashboard::DashboardOptions options;
      options.dead_letter_path = c.dead_letter.path;
      options.pipeline = {.log_fsync = log::FsyncPolicyName(c.log.embedded.fsync),
                          .log_retention_us = c.log.retention_us,
                          .log_retention_bytes = c.log.retention_bytes,
                          .rollup_enabled = c.rollup.enabled,
                          .rollup_lateness_us = c.rollup.lateness_us,
                          .store_enabled = c.store.enabled,
                          .store_retention_us = c.store.retention_us,
                          .role = role,
                          .instance = instance};
      if (status_reader) options.pipeline.other_roles = [r = status_reader.get()] { return r->Others(); };
      dashboard = dashboard::Dashboard::Start(http.get(), store.get(), &registry, options);
    }
    s = http->Start(c.http.listen);
    if (!s.ok()) {
      spdlog::error("{}", s.ToString());
      return 1;
    }
    spdlog::info("http: listening on {} ({}GET /metrics){}", c.http.listen, routes,
                 c.http.server.tokens.empty() ? "" : fmt::format(", {} API tokens", c.http.server.tokens.size()));
    const bool https = !c.http.server.tls_cert.empty();
    if (c.http.server.tokens.empty()) {
      WarnIfExposed("http", c.http.listen, "no http.tokens are configured, so anyone who reaches it can ingest, query and read "
                                           "/metrics; add [[http.tokens]]");
    } else if (!https) {
      WarnIfExposed("http", c.http.listen, "API tokens travel in clear text without TLS; set http.tls_cert and http.tls_key");
    }
    if (dashboard) spdlog::info("dashboard: {}://{}/", https ? "https" : "http", c.http.listen);
    if (roles.sources) running.push_back("http");
    if (line_http) running.push_back("line_http");
  }
  // The PostgreSQL wire protocol: mare's SQL for psql, drivers and BI tools, on its own port.
  std::unique_ptr<pgwire::PgwireServer> pgwire_server;
  if (store && c.pgwire.enabled) {
    pgwire::PgwireOptions pg = c.pgwire;
    if (!c.http.server.tokens.empty()) {
      auto access = Access::Make(c.http.server.tokens, {}, "");
      if (!access.ok()) {
        spdlog::error("pgwire: {}", access.status().ToString());
        return 1;
      }
      for (const Access::Token& t : access->tokens()) {
        if (t.scopes & (kScopeQuery | kScopeAdmin)) pg.token_digests.push_back(t.digest);
      }
    }
    if (!KeepStarted("pgwire", pgwire::PgwireServer::Start(pg, c.query.limits, store.get(), &registry), &pgwire_server)) return 1;
    spdlog::info("pgwire: listening on {} (PostgreSQL protocol v3, auth {})", c.pgwire.listen, c.pgwire.auth);
    if (c.pgwire.auth == "trust") {
      WarnIfExposed("pgwire", c.pgwire.listen, "pgwire.auth = \"trust\" lets anyone who reaches it query; set auth = \"password\"");
    } else if (c.pgwire.tls_cert.empty()) {
      WarnIfExposed("pgwire", c.pgwire.listen, "passwords travel in clear text without TLS; set pgwire.tls_cert and pgwire.tls_key");
    }
  }
  auto said_line_protocol = [&](const char* name, const std::string& listen) {
    spdlog::info("{}: listening on {} (InfluxDB line protocol, precision {})", name, listen, c.line_protocol.parse.precision);
  };
  std::unique_ptr<UdpSource> udp;
  if (roles.sources && c.udp.enabled) {
    if (!KeepStarted("udp", UdpSource::Start(c.udp, &ingest, &registry), &udp)) return 1;
    running.push_back("udp");
    spdlog::info("udp: listening on {} (port {}, {} receiver threads)", c.udp.listen, udp->port(), c.udp.threads);
    WarnIfExposed("udp", c.udp.listen, std::string("UDP") + kNoToken);
  }
  std::unique_ptr<StreamSource> tcp, unix_source;
  if (roles.sources && c.tcp.enabled) {
    if (!KeepStarted("tcp", StreamSource::Start(c.tcp, &ingest, &registry), &tcp)) return 1;
    running.push_back("tcp");
    spdlog::info("tcp: listening on {} (NDJSON lines)", c.tcp.listen);
    WarnIfExposed("tcp", c.tcp.listen, std::string("TCP") + kNoToken);
  }
  if (roles.sources && c.unix_socket.enabled) {
    StreamSourceOptions options = c.unix_socket;
    options.max_connections = c.tcp.max_connections;  // one limit for both stream sources
    if (!KeepStarted("unix", StreamSource::Start(options, &ingest, &registry), &unix_source)) return 1;
    running.push_back("unix");
    spdlog::info("unix: listening on {} (NDJSON lines)", c.UnixPath());
  }
  std::unique_ptr<StreamSource> line_tcp;
  if (roles.sources && c.line_protocol.tcp) {
    StreamSourceOptions options{.name = "line_tcp", .listen = c.line_protocol.tcp_listen, .max_connections = c.tcp.max_connections};
    auto started = StreamSource::Start(options, &ingest, &registry, &c.line_protocol.parse);
    if (!KeepStarted("line_tcp", std::move(started), &line_tcp)) return 1;
    running.push_back("line_tcp");
    said_line_protocol("line_tcp", c.line_protocol.tcp_listen);
  }
  std::unique_ptr<UdpSource> line_udp;
  if (roles.sources && c.line_protocol.udp) {
    UdpSourceOptions options = c.udp;
    options.name = "line_udp";
    options.listen = c.line_protocol.udp_listen;
    auto started = UdpSource::Start(options, &ingest, &registry, &c.line_protocol.parse);
    if (!KeepStarted("line_udp", std::move(started), &line_udp)) return 1;
    running.push_back("line_udp");
    said_line_protocol("line_udp", c.line_protocol.udp_listen);
  }
  std::unique_ptr<MqttSource> mqtt;
  if (roles.sources && c.mqtt.enabled) {
    if (!KeepStarted("mqtt", MqttSource::Start(c.mqtt, &ingest, &registry), &mqtt)) return 1;
    running.push_back("mqtt");
    std::string topics;
    for (const auto& t : c.mqtt.topics) topics += (topics.empty() ? "" : ", ") + t;
    spdlog::info("mqtt: subscribing to {} on {}:{} at QoS {} as {}", topics, c.mqtt.host, c.mqtt.port, c.mqtt.qos,
                 c.mqtt.client_id);
  }
  if (c.log.kind == "kafka") {
    spdlog::info("{}: data in {}, log on {}, retention {}; Ctrl-C to stop", roles.command, c.data_dir, DescribeLog(c),
                 FormatDuration(c.log.retention_us));
  } else {
    spdlog::info("{}: data in {}, log fsync {} ({}), retention {}; Ctrl-C to stop", roles.command, c.data_dir,
                 log::FsyncPolicyName(c.log.embedded.fsync), FormatDuration(c.log.embedded.fsync_interval_us),
                 FormatDuration(c.log.retention_us));
  }

  // Wait for SIGINT/SIGTERM, saying every 10 s what came in; SIGHUP reads the certificates again.
  uint64_t last_accepted = 0, last_rejected = 0;
  auto report = [&](double secs) {
    uint64_t accepted = Sum(registry, source_metrics::kReadingsAccepted, running);
    uint64_t received = Sum(registry, source_metrics::kReadingsReceived, running);
    uint64_t rejected = received - std::min(received, accepted);
    // The counters are read one after the other, so `rejected` can lag a little: never negative rates.
    rejected = std::max(rejected, last_rejected);
    if (!running.empty()) {
      spdlog::info("ingest: {} readings accepted ({:.0f}/s), {} rejected ({:.0f}/s)", accepted,
                   static_cast<double>(accepted - last_accepted) / secs, rejected,
                   static_cast<double>(rejected - last_rejected) / secs);
    }
    if (feeder && running.empty()) {
      store::Store::Stats st = store->GetStats();
      spdlog::info("store: {} readings ({} in memory), {} raw records behind", st.rows + st.memtable_rows,
                   st.memtable_rows, feeder->lag());
    }
    last_accepted = accepted;
    last_rejected = rejected;
    if (feeder && !feeder->healthy()) {
      log::ConsumerHealth h = feeder->health();
      if (h.stopped) {
        spdlog::error("store: stopped: {}; readings are still ingested and kept in the log, and a restart resumes "
                      "the store from its last flush", h.reason);
      } else {
        spdlog::error("store: retrying ({} failures so far): {}; readings are kept in the log meanwhile", h.retries, h.reason);
      }
    }
    if (rollups && !rollups->healthy()) {
      log::ConsumerHealth h = rollups->health();
      if (h.stopped) {
        spdlog::error("rollup: stopped: {}; readings are still ingested, and a restart resumes the rollups from "
                      "their checkpoint", h.reason);
      } else {
        spdlog::error("rollup: retrying from its last checkpoint ({} failures so far): {}", h.retries, h.reason);
      }
    }
    if (forecasts && !forecasts->healthy()) {
      log::ConsumerHealth h = forecasts->health();
      spdlog::error("forecast: {} ({} failures so far): {}", h.stopped ? "stopped" : "retrying from its last checkpoint",
                    h.retries, h.reason);
    }
  };
  WaitForStop(signals, roles.command, nullptr, report, [&] {
    if (http) http->ReloadTls();
    if (pgwire_server) pgwire_server->ReloadTls();
  });
  if (status_publisher) status_publisher->Stop();  // says this role stopped on purpose
  // Stop the sources first (each flushes what it holds), then make the log durable.
  if (mqtt) mqtt->Stop();  // appends and acknowledges what it read, then disconnects
  if (udp) udp->Stop();
  if (tcp) tcp->Stop();
  if (line_tcp) line_tcp->Stop();
  if (line_udp) line_udp->Stop();
  if (unix_source) unix_source->Stop();
  if (http) http->Stop();
  if (pgwire_server) pgwire_server->Stop();
  if (rollups) {
    Status stopped = rollups->Stop();  // emits what is pending and writes a final checkpoint
    if (!stopped.ok()) spdlog::error("rollup: {}", stopped.ToString());
  }
  if (forecasts) {
    Status stopped = forecasts->Stop();  // appends what is pending and writes a final checkpoint
    if (!stopped.ok()) spdlog::error("forecast: {}", stopped.ToString());
  }
  if (mariadb) mariadb->Stop();
  if (elasticsearch) elasticsearch->Stop();
  if (clickhouse) clickhouse->Stop();
  if (store_forecasts) {
    Status stopped = store_forecasts->Stop();  // syncs the journal
    if (!stopped.ok()) spdlog::error("store: forecasts: {}", stopped.ToString());
  }
  if (feeder) {
    Status stopped = feeder->Stop();  // flushes the memtable, so a restart has nothing to read again
    if (!stopped.ok()) spdlog::error("store: {}", stopped.ToString());
  }
  s = log->Sync();
  if (!s.ok()) {
    spdlog::error("log: final sync failed: {}", s.ToString());
    return 1;
  }
  spdlog::info("{}: stopped; {} readings accepted in this run", roles.command,
               Sum(registry, source_metrics::kReadingsAccepted, running));
  return 0;
}

void AddRoleCommand(CLI::App& app, int* exit_code, const Roles& roles, const std::string& help) {
  auto flags = std::make_shared<RunFlags>();
  auto* cmd = app.add_subcommand(std::string(roles.command).substr(5), help);
  cmd->add_option("-c,--config", flags->config_path, "TOML config file (see config/mare.toml); defaults apply without one")
      ->check(CLI::ExistingFile);
  cmd->add_option("--set", flags->overrides, "Override a config key: --set log.kind=kafka --set log.kafka.brokers=h:9092");
  cmd->add_option("--data-dir", flags->data_dir, "Directory for the embedded log, the store, the dead-letter file (config key data_dir)");
  cmd->add_flag("--print-config", flags->print_config, "Print the effective configuration as TOML and exit");
  cmd->add_flag("--repair-log", flags->repair_log,
                "If a log segment is corrupt, truncate it at the damaged batch (losing what follows in that segment) "
                "instead of refusing to start; see `mare log verify`");
  cmd->callback([flags, exit_code, roles] { *exit_code = Run(*flags, roles); });
}

}  // namespace

void AddRunCommand(CLI::App& app, int* exit_code) {
  AddRoleCommand(app, exit_code, {.command = "mare run", .sources = true, .rollup = true, .store = true},
                 "Run the whole pipeline in one process: sources into the log, rollups, the MariaDB sink, the store, "
                 "the query API and the dashboard");
  AddRoleCommand(app, exit_code, {.command = "mare ingest", .sources = true},
                 "Run the sources alone (UDP, TCP, unix socket, HTTP ingest, MQTT) into the log's raw topic: the ingest role "
                 "of a pipeline on Kafka");
  AddRoleCommand(app, exit_code, {.command = "mare store", .store = true},
                 "Run the columnar store alone, fed from the log's raw topic (consumer group store), with the query "
                 "API and the dashboard: the store role of a pipeline on Kafka");
}

}  // namespace mare::cli
