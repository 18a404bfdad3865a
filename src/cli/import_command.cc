// mare import FILE.csv: bulk-loads a CSV archive straight into the columnar store.
#include <fmt/format.h>

#include <cstdio>
#include <memory>
#include <string>

#include "cli/commands.h"
#include "cli/process.h"
#include "common/time.h"
#include "store/import.h"

namespace mare::cli {
namespace {

struct ImportFlags {
  std::string file;
  std::string config;
  std::vector<std::string> overrides;
  std::string data_dir;
  bool quiet = false;
};

int RunImport(const ImportFlags& flags) {
  auto config = LoadCommandConfig(flags.config, flags.overrides, flags.data_dir);
  if (!config) {
    fmt::print(stderr, "import: {}\n", config.status().ToString());
    return 2;
  }
  metrics::Registry registry;
  store::StoreOptions options = config->store;
  options.compaction_thread = false;
  auto store = store::Store::Open(options, &registry);
  if (!store) {
    fmt::print(stderr, "import: {}\n", store.status().ToString());
    return 1;
  }
  int64_t start = MonotonicMicros();
  store::ImportReport report;
  int last_percent = -1;
  auto progress = [&](int64_t done, int64_t total, int64_t readings) {
    int percent = total > 0 ? static_cast<int>(done * 100 / total) : 100;
    if (flags.quiet || percent / 5 == last_percent / 5) return;
    last_percent = percent;
    double seconds = static_cast<double>(MonotonicMicros() - start) / 1e6;
    fmt::print(stderr, "import: {:3d}%  {:.1f} of {:.1f} MB, {} readings, {:.2f}M readings/s\n", percent, done / 1e6, total / 1e6,
               readings, seconds > 0 ? static_cast<double>(readings) / seconds / 1e6 : 0.0);
  };
  Status s = store::ImportCsv(flags.file, store->get(), {}, &report, progress);
  double seconds = static_cast<double>(MonotonicMicros() - start) / 1e6;
  for (const auto& e : report.errors) fmt::print(stderr, "import: skipped {}: {}\n", flags.file, e);
  if (!s.ok()) {
    fmt::print(stderr, "import: {} (after {} readings)\n", s.ToString(), report.imported);
    return 1;
  }
  store::Store::Stats stats = (*store)->GetStats();
  fmt::print(stderr,
             "import: {} readings from {} in {:.2f} s ({:.0f} readings/s), {} rows skipped; the store holds {} readings in {} "
             "segments, {:.2f} bytes per reading\n",
             report.imported, flags.file, seconds, seconds > 0 ? static_cast<double>(report.imported) / seconds : 0.0,
             report.skipped, stats.rows, stats.segments,
             stats.rows > 0 ? static_cast<double>(stats.bytes) / static_cast<double>(stats.rows) : 0.0);
  return report.skipped > 0 ? 1 : 0;
}

}  // namespace

void AddImportCommand(CLI::App& app, int* exit_code) {
  auto* cmd = app.add_subcommand("import", "Bulk-load a CSV file straight into the columnar store (stop mare run first)");
  auto flags = std::make_shared<ImportFlags>();
  cmd->add_option("file", flags->file,
                  "CSV with a header: ts (or timestamp/time/datetime), sensor_id, optional lat/lon, then any fields")
      ->required()
      ->check(CLI::ExistingFile);
  cmd->add_option("--config", flags->config, "mare.toml to read data_dir and [store] from");
  cmd->add_option("--set", flags->overrides, "Override a config key, e.g. --set store.retention=30d (repeatable)");
  cmd->add_option("--data-dir", flags->data_dir, "Data directory (the store is DATA_DIR/store)");
  cmd->add_flag("--quiet", flags->quiet, "No progress lines");
  cmd->callback([flags, exit_code] { *exit_code = RunImport(*flags); });
}

}  // namespace mare::cli
