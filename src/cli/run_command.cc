// `mare run`: the whole pipeline in one process. Today: sources -> ingest -> the embedded log,
// with /metrics and /api/v1/ingest on the HTTP server. Later stages add themselves here.
#include <httplib.h>
#include <signal.h>
#include <spdlog/spdlog.h>

#include <filesystem>
#include <iostream>

#include "cli/commands.h"
#include "cli/process.h"
#include "cli/sink_options.h"
#include "common/metrics.h"
#include "common/time.h"
#include "config/config.h"
#include "dashboard/dashboard.h"
#include "log/open_log.h"
#include "processors/rollup/rollup_processor.h"
#include "processors/rollup/window.h"
#include "query/query_api.h"
#include "store/feeder.h"
#include "cli/store_options.h"
#include "server/http_server.h"
#include "sources/http_source.h"
#include "sources/ingest.h"
#include "sources/stream_source.h"
#include "sources/udp_source.h"

namespace mare::cli {
namespace {

struct RunFlags {
  std::string config_path;
  std::vector<std::string> overrides;
  std::string data_dir;
  bool print_config = false;
  bool repair_log = false;
};

// Sums a counter family over the running sources, for the periodic status line.
uint64_t Sum(metrics::Registry& r, const char* name, const std::vector<std::string>& sources) {
  uint64_t total = 0;
  for (const auto& s : sources) total += r.GetCounter(name, "", {{"source", s}}).value();
  return total;
}

int Run(const RunFlags& flags) {
  auto config = LoadCommandConfig(flags.config_path, flags.overrides, flags.data_dir);
  if (!config.ok()) {
    std::cerr << "mare run: " << config.status().message() << "\n";
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
    std::cerr << "mare run: cannot create data_dir " << c.data_dir << ": " << ec.message() << "\n";
    return 1;
  }

  // Signals go to the main thread only: block them before any thread starts.
  sigset_t signals = BlockStopSignals();

  metrics::Registry& registry = metrics::Registry::Global();
  auto opened = log::OpenLog(c, {.repair = flags.repair_log, .client_id = "mare-run", .metrics = &registry});
  if (!opened.ok()) {
    spdlog::error("log: {}", opened.status().ToString());
    return 1;
  }
  std::unique_ptr<log::Log> log = std::move(*opened);
  Status s = log->CreateTopic({.name = "raw", .partitions = c.log.partitions, .retention_us = c.log.retention_us,
                               .retention_bytes = c.log.retention_bytes});
  if (!s.ok()) {
    spdlog::error("log: {}", s.ToString());
    return 1;
  }
  if (log->Partitions("raw") != c.log.partitions) {
    spdlog::warn("log: topic raw keeps its {} partitions (log.partitions = {} applies only to a new topic)",
                 log->Partitions("raw"), c.log.partitions);
  }
  auto dead_letter = DeadLetter::Open(c.data_dir + "/dead-letter.log", static_cast<uint64_t>(c.ingest.dead_letter_max), &registry);
  if (!dead_letter.ok()) {
    spdlog::error("dead-letter: {}", dead_letter.status().ToString());
    return 1;
  }

  IngestOptions io;
  io.parser.max_reading_bytes = static_cast<size_t>(c.ingest.max_reading_bytes);
  io.parser.max_fields = static_cast<size_t>(c.ingest.max_fields);
  io.parser.max_text_bytes = static_cast<size_t>(c.ingest.max_text_bytes);
  io.parser.max_future_skew_us = c.ingest.max_future_skew_us;
  io.parser.numeric_fields = c.ingest.numeric_fields;
  Ingest ingest(log.get(), io, dead_letter->get(), &registry);

  // Processors, then sinks: the reading's path through the process.
  std::unique_ptr<rollup::RollupProcessor> rollups;
  if (c.rollup.enabled) {
    std::string list;
    for (const auto& r : c.rollup.resolutions) list += (list.empty() ? "" : ",") + r;
    auto resolutions = rollup::ParseResolutions(list);
    if (!resolutions.ok()) {
      spdlog::error("rollup: {}", resolutions.status().ToString());
      return 2;
    }
    rollup::RollupOptions ro;
    ro.resolutions = *resolutions;
    ro.lateness_us = c.rollup.lateness_us;
    ro.emit_interval_us = c.rollup.emit_interval_us;
    ro.checkpoint_interval_us = c.rollup.checkpoint_interval_us;
    ro.checkpoint_dir = c.data_dir + "/rollup";
    auto started = rollup::RollupProcessor::Start(ro, log.get(), dead_letter->get(), &registry);
    if (!started.ok()) {
      spdlog::error("rollup: {}", started.status().ToString());
      return 1;
    }
    rollups = std::move(*started);
    spdlog::info("rollup: {} windows, lateness {}, emitted every {} to topic rollups", list,
                 FormatDuration(c.rollup.lateness_us), FormatDuration(c.rollup.emit_interval_us));
  }
  std::unique_ptr<sinks::MariaDbSink> mariadb;
  if (c.sink_mariadb.enabled) {
    s = log->CreateTopic({.name = "rollups", .partitions = c.log.partitions, .retention_us = c.log.retention_us});
    auto started = s.ok() ? sinks::MariaDbSink::Start(MariaDbOptions(c), log.get(), &registry)
                          : Result<std::unique_ptr<sinks::MariaDbSink>>(s);
    if (!started.ok()) {
      spdlog::error("mariadb sink: {}", started.status().ToString());
      return 1;
    }
    mariadb = std::move(*started);
    spdlog::info("mariadb sink: rollups{} into {}:{} database {}", c.sink_mariadb.readings ? " and readings" : "",
                 c.sink_mariadb.host, c.sink_mariadb.port, c.sink_mariadb.database);
  }

  // The columnar store, fed from the raw topic, queried over HTTP.
  std::unique_ptr<store::Store> store;
  std::unique_ptr<store::StoreFeeder> feeder;
  if (c.store.enabled) {
    auto opened_store = store::Store::Open(StoreOptionsFrom(c), &registry);
    if (!opened_store.ok()) {
      spdlog::error("store: {}", opened_store.status().ToString());
      return 1;
    }
    store = std::move(*opened_store);
    auto started = store::StoreFeeder::Start(store.get(), log.get(), io.parser, {}, &registry);
    if (!started.ok()) {
      spdlog::error("store: {}", started.status().ToString());
      return 1;
    }
    feeder = std::move(*started);
    store::Store::Stats stats = store->GetStats();
    spdlog::info("store: {} readings in {} segments ({:.1f} MB) in {}/store, retention {}", stats.rows, stats.segments,
                 static_cast<double>(stats.bytes) / 1e6, c.data_dir, c.store.retention_us > 0 ? FormatDuration(c.store.retention_us) : "none");
  }

  std::vector<std::string> running;
  std::unique_ptr<dashboard::Dashboard> dashboard;  // outlives the server whose routes use it
  std::unique_ptr<HttpServer> http;
  std::unique_ptr<HttpSource> http_source;
  if (c.http.enabled) {
    http = std::make_unique<HttpServer>(static_cast<int>(c.http.threads), static_cast<size_t>(c.http.max_body_bytes));
    ServeMetrics(*http, registry);
    http->routes().Get("/healthz", [](const httplib::Request&, httplib::Response& res) { res.set_content("ok\n", "text/plain"); });
    http_source = std::make_unique<HttpSource>(&ingest, http.get(), static_cast<int>(c.http.threads));
    if (store) query::AddQueryRoutes(http.get(), store.get(), {.max_rows = static_cast<size_t>(c.query.max_rows)}, &registry);
    dashboard = dashboard::Dashboard::Start(http.get(), store.get(), c, &registry);
    s = http->Start(c.http.listen);
    if (!s.ok()) {
      spdlog::error("{}", s.ToString());
      return 1;
    }
    spdlog::info("http: listening on {} (POST /api/v1/ingest, GET /api/v1/query, GET /api/v1/sensors, GET /metrics)", c.http.listen);
    spdlog::info("dashboard: http://{}/", c.http.listen);
    running.push_back("http");
  }
  std::unique_ptr<UdpSource> udp;
  if (c.udp.enabled) {
    UdpSourceOptions uo{c.udp.listen, static_cast<int>(c.udp.threads), c.udp.receive_buffer_bytes, static_cast<int>(c.udp.batch),
                        static_cast<size_t>(c.udp.max_datagram_bytes)};
    auto u = UdpSource::Start(uo, &ingest, &registry);
    if (!u.ok()) {
      spdlog::error("udp: {}", u.status().ToString());
      return 1;
    }
    udp = std::move(*u);
    spdlog::info("udp: listening on {} (port {}, {} receiver threads)", c.udp.listen, udp->port(), c.udp.threads);
    running.push_back("udp");
  }
  std::unique_ptr<StreamSource> tcp, unix_source;
  if (c.tcp.enabled) {
    auto t = StreamSource::Start({"tcp", c.tcp.listen, static_cast<int>(c.tcp.max_connections)}, &ingest, &registry);
    if (!t.ok()) {
      spdlog::error("tcp: {}", t.status().ToString());
      return 1;
    }
    tcp = std::move(*t);
    spdlog::info("tcp: listening on {} (NDJSON lines)", c.tcp.listen);
    running.push_back("tcp");
  }
  if (c.unix_socket.enabled) {
    auto u = StreamSource::Start({"unix", c.UnixPath(), static_cast<int>(c.tcp.max_connections)}, &ingest, &registry);
    if (!u.ok()) {
      spdlog::error("unix: {}", u.status().ToString());
      return 1;
    }
    unix_source = std::move(*u);
    spdlog::info("unix: listening on {} (NDJSON lines)", c.UnixPath());
    running.push_back("unix");
  }
  if (c.log.kind == "kafka") {
    spdlog::info("mare run: data in {}, log on {}, retention {}; Ctrl-C to stop", c.data_dir, log::DescribeLog(c),
                 FormatDuration(c.log.retention_us));
  } else {
    spdlog::info("mare run: data in {}, log fsync {} ({}), retention {}; Ctrl-C to stop", c.data_dir, c.log.fsync,
                 FormatDuration(c.log.fsync_interval_us), FormatDuration(c.log.retention_us));
  }

  // Wait for SIGINT/SIGTERM, saying every 10 s what came in.
  uint64_t last_accepted = 0, last_rejected = 0;
  int64_t last_report = MonotonicMicros();
  for (;;) {
    timespec timeout{1, 0};
    int sig = ::sigtimedwait(&signals, nullptr, &timeout);
    if (sig == SIGINT || sig == SIGTERM) {
      spdlog::info("mare run: {} received, stopping", sig == SIGINT ? "SIGINT" : "SIGTERM");
      break;
    }
    int64_t now = MonotonicMicros();
    if (now - last_report >= 10'000'000) {
      uint64_t accepted = Sum(registry, "mare_source_readings_accepted_total", running);
      uint64_t received = Sum(registry, "mare_source_readings_received_total", running);
      uint64_t rejected = received - std::min(received, accepted);
      double secs = static_cast<double>(now - last_report) / 1e6;
      spdlog::info("ingest: {} readings accepted ({:.0f}/s), {} rejected ({:.0f}/s)", accepted,
                   static_cast<double>(accepted - last_accepted) / secs, rejected,
                   static_cast<double>(rejected - last_rejected) / secs);
      last_accepted = accepted;
      last_rejected = rejected;
      last_report = now;
      if (feeder && !feeder->healthy()) {
        spdlog::error("store: stopped on an error (see above); readings are still ingested and kept in the log, and a "
                      "restart resumes the store from its last flush");
      }
      if (rollups && !rollups->healthy()) {
        spdlog::error("rollup: stopped on an error (see above); readings are still ingested, and a restart resumes "
                      "the rollups from their checkpoint");
      }
    }
  }
  // Stop the sources first (each flushes what it holds), then make the log durable.
  if (udp) udp->Stop();
  if (tcp) tcp->Stop();
  if (unix_source) unix_source->Stop();
  if (http) http->Stop();
  if (rollups) {
    Status stopped = rollups->Stop();  // emits what is pending and writes a final checkpoint
    if (!stopped.ok()) spdlog::error("rollup: {}", stopped.ToString());
  }
  if (mariadb) mariadb->Stop();
  if (feeder) {
    Status stopped = feeder->Stop();  // flushes the memtable, so a restart has nothing to read again
    if (!stopped.ok()) spdlog::error("store: {}", stopped.ToString());
  }
  s = log->Sync();
  if (!s.ok()) {
    spdlog::error("log: final sync failed: {}", s.ToString());
    return 1;
  }
  spdlog::info("mare run: stopped; {} readings accepted in this run",
               Sum(registry, "mare_source_readings_accepted_total", running));
  return 0;
}

}  // namespace

void AddRunCommand(CLI::App& app, int* exit_code) {
  auto flags = std::make_shared<RunFlags>();
  auto* cmd = app.add_subcommand("run", "Run the pipeline: UDP/TCP/unix/HTTP sources into the durable log, metrics on /metrics");
  cmd->add_option("-c,--config", flags->config_path, "TOML config file (see config/mare.toml); defaults apply without one")
      ->check(CLI::ExistingFile);
  cmd->add_option("--set", flags->overrides, "Override a config key: --set log.fsync=batch --set sources.udp.threads=4");
  cmd->add_option("--data-dir", flags->data_dir, "Directory for the log and dead-letter file (config key data_dir)");
  cmd->add_flag("--print-config", flags->print_config, "Print the effective configuration as TOML and exit");
  cmd->add_flag("--repair-log", flags->repair_log,
                "If a log segment is corrupt, truncate it at the damaged batch (losing what follows in that segment) "
                "instead of refusing to start; see `mare log verify`");
  cmd->callback([flags, exit_code] { *exit_code = Run(*flags); });
}

}  // namespace mare::cli
