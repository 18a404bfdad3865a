// mare batch rollups | reconcile: the batch layer. Rollups recomputed from the store with the
// stream's definitions and written through the stream's paths (rollup messages on stdout, or
// MariaDB's rollup tables through the sink's upsert, where they replace the stream's rows), and
// the stream's rollups reconciled with them window by window.
#include <fmt/format.h>

#include <cstdio>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "batch/batch_metrics.h"
#include "batch/batch_rollup.h"
#include "batch/late_readings.h"
#include "batch/mariadb_rollups.h"
#include "batch/recompute.h"
#include "batch/reconcile.h"
#include "batch/topic_rollups.h"
#include "cli/commands.h"
#include "cli/open_log.h"
#include "cli/process.h"
#include "common/time.h"
#include "reading/timestamp.h"
#include "store/store.h"

namespace mare::cli {
namespace {

struct BatchFlags {
  std::string from, to;
  std::vector<uint32_t> sensors;
  std::string config;
  std::vector<std::string> overrides;
  std::string data_dir;
  std::string sink;  // rollups: "" (stdout) or "mariadb"; reconcile: "mariadb" or "log" ("" : mariadb when enabled)
  bool repair = false;
  bool quiet = false;
};

// Exit codes: 0 done (reconcile: no difference left), 1 differences left, 2 usage, 3 failure.
constexpr int kDiffer = 1, kUsage = 2, kFailed = 3;

// A time as readings carry it (docs/formats/reading.md), or a bare date (its 00:00 UTC).
bool ParseTime(const std::string& text, int64_t* us, std::string* why) {
  std::string t = text.size() == 10 ? text + " 00:00:00" : text;
  return ParseTimestampText(t, us, why);
}

struct Setup {
  Config config;
  std::unique_ptr<store::Store> store;
  batch::RecomputeOptions recompute;
};

// The configuration, the store (read-only: mare run may be writing it) and the period; prints
// why not and returns the exit code otherwise.
int Prepare(const char* name, const BatchFlags& flags, Setup* setup, metrics::Registry* registry) {
  auto config = LoadCommandConfig(flags.config, flags.overrides, flags.data_dir);
  if (!config) {
    fmt::print(stderr, "batch {}: {}\n", name, config.status().ToString());
    return kUsage;
  }
  setup->config = std::move(*config);
  std::string why;
  int64_t from = 0, to = 0;
  if (!ParseTime(flags.from, &from, &why) || !ParseTime(flags.to, &to, &why)) {
    fmt::print(stderr, "batch {}: --from/--to: {}\n", name, why);
    return kUsage;
  }
  if (to <= from) {
    fmt::print(stderr, "batch {}: --to must be after --from\n", name);
    return kUsage;
  }
  store::StoreOptions options = setup->config.store;
  options.read_only = true;
  auto store = store::Store::Open(options, registry);
  if (!store) {
    fmt::print(stderr, "batch {}: {}\n", name, store.status().ToString());
    return kFailed;
  }
  setup->store = std::move(*store);
  setup->recompute = {.resolutions = setup->config.rollup.resolutions, .from_us = from, .to_us = to, .sensors = flags.sensors};
  if (!flags.quiet) {
    auto start = MonotonicMicros();
    auto last = std::make_shared<int64_t>(0);
    std::string what = name;
    setup->recompute.progress = [start, last, what](const batch::RecomputeProgress& p) {
      int64_t now = MonotonicMicros();
      if (now - *last < 1'000'000 && p.sensors_done < p.sensors) return;
      *last = now;
      double seconds = static_cast<double>(now - start) / 1e6;
      fmt::print(stderr, "batch {}: {} of {} sensors, {} readings, {} rollups, {:.2f}M readings/s\n", what, p.sensors_done,
                 p.sensors, p.readings, p.rollups, seconds > 0 ? static_cast<double>(p.readings) / seconds / 1e6 : 0.0);
    };
  }
  return 0;
}

std::vector<std::string> ResolutionNames(const Config& config) {
  std::vector<std::string> out;
  for (const auto& r : config.rollup.resolutions) out.push_back(r.name);
  return out;
}

int RunRollups(const BatchFlags& flags) {
  metrics::Registry registry;
  Setup setup;
  if (int rc = Prepare("rollups", flags, &setup, &registry); rc != 0) return rc;
  if (!flags.sink.empty() && flags.sink != "mariadb") {
    fmt::print(stderr, "batch rollups: --sink: mariadb, or none for rollup messages on stdout\n");
    return kUsage;
  }
  std::unique_ptr<batch::MariaDbRollups> db;
  if (flags.sink == "mariadb") {
    auto connected = batch::MariaDbRollups::Connect(setup.config.sink_mariadb);
    if (!connected) {
      fmt::print(stderr, "batch rollups: {}\n", connected.status().ToString());
      return kFailed;
    }
    db = std::move(*connected);
  }
  const auto& resolutions = setup.recompute.resolutions;
  size_t batch_rows = std::max<size_t>(setup.config.sink_mariadb.batch, 1);
  std::vector<sinks::RollupMessage> pending;
  std::string text;
  int64_t start = MonotonicMicros();
  auto summary = batch::Recompute(*setup.store, setup.recompute, [&](std::span<const batch::BatchRollup> rollups) {
    if (!db) {
      text.clear();
      for (const auto& r : rollups) {
        batch::AppendRollupJson(r, resolutions[r.resolution], &text);
        text += '\n';
      }
      if (std::fwrite(text.data(), 1, text.size(), stdout) != text.size()) return Status::IOError("stdout: write failed");
      return Status::OK();
    }
    for (const auto& r : rollups) pending.push_back(batch::ToSinkMessage(r, resolutions[r.resolution]));
    if (pending.size() < batch_rows) return Status::OK();
    Status s = db->Write(pending);
    pending.clear();
    return s;
  });
  Status s = summary.ok() ? Status::OK() : summary.status();
  if (s.ok() && db) s = db->Write(pending);
  if (s.ok() && std::fflush(stdout) != 0) s = Status::IOError("stdout: flush failed");
  if (!s.ok()) {
    fmt::print(stderr, "batch rollups: {}\n", s.ToString());
    return kFailed;
  }
  double seconds = static_cast<double>(MonotonicMicros() - start) / 1e6;
  fmt::print(stderr, "batch rollups: {} readings of {} sensors in [{}, {}) -> {} rollups {} in {:.2f} s\n", summary->readings,
             summary->sensors, FormatTimestamp(summary->from_us), FormatTimestamp(summary->to_us), summary->rollups,
             db ? fmt::format("upserted into MariaDB database {} (source batch)", setup.config.sink_mariadb.database)
                : std::string("on stdout"),
             seconds);
  return 0;
}

int RunReconcile(const BatchFlags& flags) {
  metrics::Registry registry;
  Setup setup;
  if (int rc = Prepare("reconcile", flags, &setup, &registry); rc != 0) return rc;
  std::string source = flags.sink.empty() ? (setup.config.sink_mariadb.enabled ? "mariadb" : "log") : flags.sink;
  if (source != "mariadb" && source != "log") {
    fmt::print(stderr, "batch reconcile: --sink: mariadb or log\n");
    return kUsage;
  }
  if (flags.repair && source != "mariadb") {
    fmt::print(stderr, "batch reconcile: --repair writes MariaDB's rollup tables: use --sink mariadb ([sink.mariadb])\n");
    return kUsage;
  }
  auto [from, to] = batch::WidenedPeriod(setup.recompute.resolutions, setup.recompute.from_us, setup.recompute.to_us);
  std::vector<std::string> resolutions = ResolutionNames(setup.config);

  // The evidence for causes: the dead-letter files, the log (read-only, beside a running mare).
  batch::LateReadings late;
  const std::string& dead_letter = setup.config.dead_letter.path;
  if (Status s = late.Load({dead_letter + ".1", dead_letter}); !s.ok()) {
    fmt::print(stderr, "batch reconcile: {} (late readings not considered)\n", s.ToString());
  }
  batch::Evidence evidence{.late = &late};
  std::set<std::string> topic_keys;
  batch::RollupsByKey stream;
  auto log = OpenLog(setup.config, {.read_only = true, .client_id = "mare-batch", .metrics = &registry});
  if (log.ok()) {
    auto since = batch::RetainedSince(**log, setup.config.rollup.input_topic);
    if (since.ok()) evidence.raw_retained_since_us = *since;
    Status s = batch::ReadTopicRollups(**log, setup.config.rollup.output_topic, from, to, flags.sensors, resolutions,
                                       source == "log" ? &stream : nullptr, source == "mariadb" ? &topic_keys : nullptr);
    if (!s.ok() && source == "log") {
      fmt::print(stderr, "batch reconcile: rollups topic: {}\n", s.ToString());
      return kFailed;
    }
    if (s.ok() && source == "mariadb") evidence.topic_keys = &topic_keys;
  } else if (source == "log") {
    fmt::print(stderr, "batch reconcile: {}\n", log.status().ToString());
    return kFailed;
  }

  std::unique_ptr<batch::MariaDbRollups> db;
  if (source == "mariadb") {
    auto connected = batch::MariaDbRollups::Connect(setup.config.sink_mariadb);
    if (!connected) {
      fmt::print(stderr, "batch reconcile: {}\n", connected.status().ToString());
      return kFailed;
    }
    db = std::move(*connected);
    if (Status s = db->Read(resolutions, from, to, flags.sensors, &stream); !s.ok()) {
      fmt::print(stderr, "batch reconcile: {}\n", s.ToString());
      return kFailed;
    }
  }

  auto report = batch::Reconcile(*setup.store, {.recompute = setup.recompute}, stream, evidence, &registry);
  if (!report) {
    fmt::print(stderr, "batch reconcile: {}\n", report.status().ToString());
    return kFailed;
  }
  std::map<std::string, int> kinds;
  std::vector<sinks::RollupMessage> repairs;
  for (const auto& d : report->differences) {
    ++kinds[batch::KindName(d.kind)];
    fmt::print("{} {}: {}; likely cause: {}\n", d.key, batch::KindName(d.kind), d.what, d.cause);
    if (d.batch) repairs.push_back(*d.batch);
  }
  size_t left = report->differences.size();
  std::string repaired;
  if (flags.repair && !repairs.empty()) {
    if (Status s = db->Write(repairs); !s.ok()) {
      fmt::print(stderr, "batch reconcile: repair: {}\n", s.ToString());
      return kFailed;
    }
    registry.GetCounter(batch_metrics::kRepairedWindows).Add(repairs.size());
    left -= repairs.size();
    repaired = fmt::format(", {} repaired with the batch values", repairs.size());
  }
  std::string by_kind;
  for (const auto& [k, n] : kinds) by_kind += fmt::format("{}{} {}", by_kind.empty() ? " (" : ", ", n, k);
  if (!by_kind.empty()) by_kind += ")";
  fmt::print("reconcile: {} windows in [{}, {}) of the stream ({}) and the batch: {} equal, {} differ{}{}\n", report->compared,
             FormatTimestamp(from), FormatTimestamp(to), source == "mariadb" ? "MariaDB tables" : "rollups topic", report->equal,
             report->differences.size(), by_kind, repaired);
  std::fflush(stdout);
  return left == 0 ? 0 : kDiffer;
}

void AddCommonOptions(CLI::App* cmd, const std::shared_ptr<BatchFlags>& flags) {
  cmd->add_option("--from", flags->from, "Start of the period (UTC; a date, or a time as readings carry it)")->required();
  cmd->add_option("--to", flags->to, "End of the period, exclusive (widened to whole windows of the longest resolution)")
      ->required();
  cmd->add_option("--sensors", flags->sensors, "Only these sensors (comma-separated)")->delimiter(',');
  cmd->add_option("--config", flags->config, "mare.toml to read data_dir, [store], [rollup] and [sink.mariadb] from");
  cmd->add_option("--set", flags->overrides, "Override a config key, e.g. --set sink.mariadb.port=3307 (repeatable)");
  cmd->add_option("--data-dir", flags->data_dir, "Data directory (the store is DATA_DIR/store)");
  cmd->add_flag("--quiet", flags->quiet, "No progress lines");
}

}  // namespace

void AddBatchCommand(CLI::App& app, int* exit_code) {
  auto* batch = app.add_subcommand("batch", "The batch layer: rollups recomputed from the store, and reconciled with the stream's");
  batch->require_subcommand(1);

  auto* rollups = batch->add_subcommand(
      "rollups", "Recompute the configured resolutions' windows of a period from the store (rollup messages on stdout, or "
                 "--sink mariadb: into the rollup tables, replacing the stream's rows)");
  auto rollup_flags = std::make_shared<BatchFlags>();
  AddCommonOptions(rollups, rollup_flags);
  rollups->add_option("--sink", rollup_flags->sink, "mariadb: upsert into [sink.mariadb]'s rollup tables (source batch)");
  rollups->callback([rollup_flags, exit_code] { *exit_code = RunRollups(*rollup_flags); });

  auto* reconcile = batch->add_subcommand(
      "reconcile", "Compare the stream's rollups with a batch recompute, window by window, with each difference's likely "
                   "cause (exit 0: none, 1: differences, 3: failure)");
  auto reconcile_flags = std::make_shared<BatchFlags>();
  AddCommonOptions(reconcile, reconcile_flags);
  reconcile->add_option("--sink", reconcile_flags->sink,
                        "The stream's rollups: mariadb (the tables; the default when [sink.mariadb] is enabled) or log "
                        "(the rollups topic)");
  reconcile->add_flag("--repair", reconcile_flags->repair, "Write the batch values of every differing window (MariaDB)");
  reconcile->callback([reconcile_flags, exit_code] { *exit_code = RunReconcile(*reconcile_flags); });
}

}  // namespace mare::cli
