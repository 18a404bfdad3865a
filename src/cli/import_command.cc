// mare import FILE...: bulk-loads archives (CSV, NDBC, NDJSON readings) straight into the store.
#include <fmt/format.h>

#include <cstdio>
#include <memory>
#include <optional>
#include <string>

#include "archive/open_archive.h"
#include "cli/commands.h"
#include "cli/process.h"
#include "common/time.h"
#include "feeds/replay.h"
#include "store/import.h"

namespace mare::cli {
namespace {

struct ImportFlags {
  std::vector<std::string> files;
  std::string config;
  std::vector<std::string> overrides;
  std::string data_dir;
  std::string format;
  std::optional<uint64_t> sensor_id;
  std::string location;
  std::string missing;
  std::string utc_offset;
  bool quiet = false;
};

// The archive reader `mare replay` uses, with the same options.
Result<std::unique_ptr<archive::ArchiveReader>> OpenForImport(const std::string& path, const ImportFlags& flags) {
  archive::ArchiveOptions options;
  options.format = flags.format;
  options.sensor_id = flags.sensor_id ? *flags.sensor_id : archive::StationFromFileName(path).value_or(1);
  if (options.sensor_id > archive::kMaxSensorId) return Status::InvalidArgument("--sensor-id: above 4294967295");
  if (!flags.location.empty()) {
    Result<feeds::Location> location = feeds::ParseLocation(flags.location);
    if (!location) return Status::InvalidArgument("--location: " + location.status().message());
    options.location = *location;
  }
  if (!flags.missing.empty()) {
    Result<std::vector<double>> codes = feeds::ParseMissingCodes(flags.missing);
    if (!codes) return Status::InvalidArgument("--missing: " + codes.status().message());
    options.missing_codes = *codes;
  }
  if (!flags.utc_offset.empty()) {
    Result<int64_t> offset = archive::ParseUtcOffset(flags.utc_offset);
    if (!offset) return Status::InvalidArgument("--utc-offset: " + offset.status().message());
    options.utc_offset_micros = *offset;
  }
  return archive::OpenArchive(path, options);
}

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
  int exit_code = 0;
  for (const std::string& file : flags.files) {
    int64_t start = MonotonicMicros();
    store::ImportReport report;
    int last_percent = -1;
    int64_t last_print = 0;
    auto progress = [&](int64_t done, int64_t total, int64_t readings) {
      if (flags.quiet) return;
      double seconds = static_cast<double>(MonotonicMicros() - start) / 1e6;
      double rate = seconds > 0 ? static_cast<double>(readings) / seconds / 1e6 : 0.0;
      if (total < 0) {  // a reader that does not know its size: a line a second
        if (MonotonicMicros() - last_print < 1'000'000) return;
        last_print = MonotonicMicros();
        fmt::print(stderr, "import: {}: {} readings, {:.2f}M readings/s\n", file, readings, rate);
        return;
      }
      int percent = total > 0 ? static_cast<int>(done * 100 / total) : 100;
      if (percent / 5 == last_percent / 5) return;
      last_percent = percent;
      fmt::print(stderr, "import: {:3d}%  {:.1f} of {:.1f} MB, {} readings, {:.2f}M readings/s\n", percent, done / 1e6, total / 1e6,
                 readings, rate);
    };
    // CSV with its own sensor_id and time columns and no option to apply takes the parallel
    // path; every other file goes through the archive reader `mare replay` uses.
    Result<std::string> format = flags.format.empty() ? archive::DetectArchiveFormat(file) : Result<std::string>(flags.format);
    if (!format) {
      fmt::print(stderr, "import: {}\n", format.status().ToString());
      return 1;
    }
    bool fast_csv = *format == "csv" && !flags.sensor_id && flags.location.empty() && flags.missing.empty() && flags.utc_offset.empty();
    Status s;
    if (fast_csv) {
      s = store::ImportCsv(file, store->get(), {}, &report, progress);
    } else {
      auto reader = OpenForImport(file, flags);
      s = reader ? store::ImportArchive(reader->get(), store->get(), {}, &report, progress) : reader.status();
    }
    double seconds = static_cast<double>(MonotonicMicros() - start) / 1e6;
    for (const auto& e : report.errors) fmt::print(stderr, "import: skipped {}: {}\n", file, e);
    if (report.skipped > static_cast<int64_t>(report.errors.size())) {
      fmt::print(stderr, "import: ... and {} more skipped rows in {}\n", report.skipped - static_cast<int64_t>(report.errors.size()), file);
    }
    if (!s.ok()) {
      fmt::print(stderr, "import: {} (after {} readings)\n", s.ToString(), report.imported);
      return 1;
    }
    store::Store::Stats stats = (*store)->GetStats();
    fmt::print(stderr,
               "import: {} readings from {} ({}) in {:.2f} s ({:.0f} readings/s), {} rows skipped; the store holds {} readings in {} "
               "segments, {:.2f} bytes per reading\n",
               report.imported, file, *format, seconds, seconds > 0 ? static_cast<double>(report.imported) / seconds : 0.0,
               report.skipped, stats.rows, stats.segments,
               stats.rows > 0 ? static_cast<double>(stats.bytes) / static_cast<double>(stats.rows) : 0.0);
    if (report.skipped > 0) exit_code = 1;
  }
  return exit_code;
}

}  // namespace

void AddImportCommand(CLI::App& app, int* exit_code) {
  auto* cmd = app.add_subcommand(
      "import", "Bulk-load archives (CSV, NDBC, NDJSON readings) straight into the columnar store (stop mare run first)");
  auto flags = std::make_shared<ImportFlags>();
  cmd->add_option("files", flags->files,
                  "Archives: CSV with a header (ts or timestamp/time/datetime, sensor_id, optional lat/lon, then any "
                  "fields), NDBC standard meteorological, or NDJSON readings")
      ->required()
      ->check(CLI::ExistingFile);
  cmd->add_option("--format", flags->format, "Archive format: csv, ndbc or ndjson (default: detected from the first line)")
      ->check(CLI::IsMember({"csv", "ndbc", "ndjson"}));
  cmd->add_option("--sensor-id", flags->sensor_id,
                  "sensor_id of rows without one (default: the station number in a name like ndbc_44005_2012.txt, else 1)");
  cmd->add_option("--location", flags->location, "Position of rows without one, as lat,lon, e.g. 43.20,-69.13");
  cmd->add_option("--missing", flags->missing, "CSV: extra numeric codes meaning 'no value', comma-separated, e.g. 99.0,999");
  cmd->add_option("--utc-offset", flags->utc_offset, "CSV: times without a zone are this far east of UTC, e.g. +08:00");
  cmd->add_option("--config", flags->config, "mare.toml to read data_dir and [store] from");
  cmd->add_option("--set", flags->overrides, "Override a config key, e.g. --set store.retention=30d (repeatable)");
  cmd->add_option("--data-dir", flags->data_dir, "Data directory (the store is DATA_DIR/store)");
  cmd->add_flag("--quiet", flags->quiet, "No progress lines");
  cmd->callback([flags, exit_code] { *exit_code = RunImport(*flags); });
}
}  // namespace mare::cli
