// mare import FILE...: bulk-loads archives (CSV, NDBC, NDJSON readings) straight into the store.
#include <fmt/format.h>
#include <malloc.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <optional>
#include <string>

#include "archive/mysql_table.h"
#include "archive/open_archive.h"
#include "cli/commands.h"
#include "cli/process.h"
#include "common/time.h"
#include "feeds/replay.h"
#include "log/file.h"
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
  // mysql:// sources
  std::string ts_column, sensor_column, lat_column, lon_column, json_column;
  bool from_start = false;
  size_t flush_rows = 4'000'000;
  bool quiet = false;
};

// --utc-offset in microseconds (0 when not given), for the CSV reader and a table alike.
Result<int64_t> UtcOffsetMicros(const ImportFlags& flags) {
  if (flags.utc_offset.empty()) return int64_t{0};
  Result<int64_t> offset = archive::ParseUtcOffset(flags.utc_offset);
  if (!offset) return Status::InvalidArgument("--utc-offset: " + offset.status().message());
  return offset;
}

// The first skipped rows with their reasons, then how many more.
void PrintSkipped(std::string_view source, const store::ImportReport& report) {
  for (const auto& e : report.errors) fmt::print(stderr, "import: skipped {}: {}\n", source, e);
  int64_t more = report.skipped - static_cast<int64_t>(report.errors.size());
  if (more > 0) fmt::print(stderr, "import: ... and {} more skipped rows in {}\n", more, source);
}

// The file's text columns (docs/formats/csv.md, "Text"): a note for each (loud: false), and a
// warning, printed last, for each whose name the store held as numbers before (loud: true).
void PrintTextColumns(std::string_view source, const store::ImportReport& report, bool loud) {
  for (const store::ImportedTextColumn& c : report.text_columns) {
    if (!loud && !c.store_has_numbers) {
      fmt::print(stderr, "import: {}: field {} is text (a column with a text cell is text, its numbers included): \"{}\" on line {}\n",
                 source, c.name, c.first_cell, c.line);
    } else if (loud && c.store_has_numbers) {
      fmt::print(stderr,
                 "import: WARNING: {}: field {} is text in this file (\"{}\" on line {}) but the store holds {} as numbers: SQL shows "
                 "those and none of this file's {} values (docs/formats/csv.md, \"Text\"); empty such cells or write them NA, and "
                 "import the file again\n",
                 source, c.name, c.first_cell, c.line, c.name, c.name);
    }
  }
}

// Where a table's import got to: <data_dir>/import/<host>_<port>_<db>_<table>.position, the time
// column's value up to which every row is stored (text, below). A later run resumes from it.
std::string PositionPath(const std::string& data_dir, const archive::MysqlUrl& url) {
  std::string name = fmt::format("{}_{}_{}_{}", url.host, url.port, url.database, url.table);
  for (char& c : name) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '-' && c != '.') c = '_';
  }
  return data_dir + "/import/" + name + ".position";
}

// The position file: "# comment" lines, then "ts_column = NAME" and "stored_through = VALUE".
Result<std::string> ReadPosition(const std::string& path, const std::string& ts_column) {
  auto text = log::file::ReadAll(path);
  if (!text) return text.status();
  std::string column, value;
  size_t start = 0;
  while (start < text->size()) {
    size_t end = text->find('\n', start);
    if (end == std::string::npos) end = text->size();
    std::string_view line(text->data() + start, end - start);
    start = end + 1;
    if (line.starts_with("ts_column = ")) column = std::string(line.substr(12));
    if (line.starts_with("stored_through = ")) value = std::string(line.substr(17));
  }
  if (value.empty()) return Status::Corruption(path + ": no stored_through line");
  if (!ts_column.empty() && column != ts_column) {
    return Status::InvalidArgument(fmt::format("{} records a position in column {}, not {}: use --from-start", path, column, ts_column));
  }
  return value;
}

int ImportTable(const std::string& url_text, const ImportFlags& flags, const std::string& data_dir, store::Store* store) {
  auto url = archive::ParseMysqlUrl(url_text);
  if (!url) {
    fmt::print(stderr, "import: {}\n", url.status().message());
    return 2;
  }
  archive::MysqlTableOptions options;
  options.url = url_text;
  if (const char* password = std::getenv("MARE_MYSQL_PASSWORD")) options.password = password;
  options.ts_column = flags.ts_column;
  options.sensor_column = flags.sensor_column;
  if (flags.sensor_id) options.sensor_id = *flags.sensor_id;
  options.lat_column = flags.lat_column;
  options.lon_column = flags.lon_column;
  options.json_column = flags.json_column;
  Result<int64_t> offset = UtcOffsetMicros(flags);
  if (!offset) {
    fmt::print(stderr, "import: {}\n", offset.status().message());
    return 2;
  }
  options.utc_offset_micros = *offset;
  std::string position = PositionPath(data_dir, *url);
  if (!flags.from_start) {
    auto resume = ReadPosition(position, flags.ts_column);
    if (resume) {
      options.resume_from = *resume;
      fmt::print(stderr, "import: resuming {} from {} (its rows up to then are stored; --from-start reads it all)\n", url_text, *resume);
    } else if (!resume.status().IsNotFound()) {
      fmt::print(stderr, "import: {}\n", resume.status().ToString());
      return 1;
    }
  }
  auto reader = archive::OpenMysqlTable(options);
  if (!reader) {
    fmt::print(stderr, "import: {}\n", reader.status().ToString());
    return 1;
  }
  Status dir = log::file::CreateDirs(data_dir + "/import");
  if (!dir.ok()) {
    fmt::print(stderr, "import: {}\n", dir.ToString());
    return 1;
  }
  archive::MysqlTableReader& table = **reader;
  store::ImportOptions import_options;
  import_options.flush_rows = flags.flush_rows;
  import_options.after_flush = [&]() -> Status {
    if (table.last_time_text().empty()) return Status::OK();
    return log::file::WriteAtomically(position, fmt::format("# mare import: every row of {} up to this value of its time column is stored\n"
                                                            "ts_column = {}\nstored_through = {}\n",
                                                            url_text, table.ts_column(), table.last_time_text()));
  };
  int64_t start = MonotonicMicros();
  int64_t last_print = 0;
  store::ImportReport report;
  auto progress = [&](const store::ImportProgress& p) {
    const int64_t readings = p.readings;
    if (flags.quiet || MonotonicMicros() - last_print < 1'000'000) return;
    last_print = MonotonicMicros();
    double seconds = static_cast<double>(MonotonicMicros() - start) / 1e6;
    int64_t total = table.total_rows();
    fmt::print(stderr, "import: {:3d}%  {} of {} rows, {:.2f}M readings/s\n", total > 0 ? static_cast<int>(report.rows * 100 / total) : 100,
               report.rows, total, seconds > 0 ? static_cast<double>(readings) / seconds / 1e6 : 0.0);
  };
  Status s = store::ImportArchive(&table, store, import_options, &report, progress);
  double seconds = static_cast<double>(MonotonicMicros() - start) / 1e6;
  PrintSkipped(url_text, report);
  if (!s.ok()) {
    fmt::print(stderr, "import: {} (after {} readings; run again to resume)\n", s.ToString(), report.imported);
    return 1;
  }
  store::Store::Stats stats = store->GetStats();
  fmt::print(stderr, "import: {} readings from {} (table) in {:.2f} s, {} rows skipped; stored through {} = {}; the store holds {} readings\n",
             report.imported, url_text, seconds, report.skipped, table.ts_column(), table.last_time_text(), stats.rows);
  return report.skipped > 0 ? 1 : 0;
}

// The archive reader `mare replay` uses, with the same options.
// progress: the CSV reader's first pass, over the columns' types.
Result<std::unique_ptr<archive::ArchiveReader>> OpenForImport(const std::string& path, const ImportFlags& flags,
                                                              const store::ImportProgressFn& progress) {
  archive::ArchiveOptions options;
  options.types_progress = [progress](int64_t done, int64_t total) {
    progress({.pass = store::ImportProgress::Pass::kTypes, .bytes_done = done, .bytes_total = total});
  };
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
  Result<int64_t> offset = UtcOffsetMicros(flags);
  if (!offset) return offset.status();
  options.utc_offset_micros = *offset;
  return archive::OpenArchive(path, options);
}

int RunImport(const ImportFlags& flags) {
  // A bulk load allocates and frees column buffers of the same sizes over and over, on several
  // threads: freed memory is kept for the next ones (not given back to the kernel and faulted
  // in again, zeroed, a page at a time), and buffers up to 32 MiB come from the heap, not from
  // an mmap each. The memory held stays bounded by --flush-rows all the same.
  ::mallopt(M_MMAP_THRESHOLD, 32 << 20);
  ::mallopt(M_TRIM_THRESHOLD, 1 << 30);
  ::mallopt(M_TOP_PAD, 64 << 20);
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
    if (file.starts_with("mysql://")) {
      int code = ImportTable(file, flags, config->data_dir, store->get());
      if (code > 1) return code;
      exit_code = std::max(exit_code, code);
      continue;
    }
    int64_t start = MonotonicMicros();
    store::ImportReport report;
    int last_percent = -1;
    int64_t last_print = 0;
    bool typing = false;
    auto progress = [&](const store::ImportProgress& p) {
      if (flags.quiet) return;
      const int64_t done = p.bytes_done, total = p.bytes_total, readings = p.readings;
      double seconds = static_cast<double>(MonotonicMicros() - start) / 1e6;
      double rate = seconds > 0 ? static_cast<double>(readings) / seconds / 1e6 : 0.0;
      if (p.pass == store::ImportProgress::Pass::kTypes && total <= 0) return;
      if (total < 0) {  // a reader that does not know its size: a line a second
        if (MonotonicMicros() - last_print < 1'000'000) return;
        last_print = MonotonicMicros();
        fmt::print(stderr, "import: {}: {} readings, {:.2f}M readings/s\n", file, readings, rate);
        return;
      }
      int percent = total > 0 ? static_cast<int>(done * 100 / total) : 100;
      // Each pass over the file counts from 0% (the first one, over the columns' types, stores nothing).
      if (const bool types = p.pass == store::ImportProgress::Pass::kTypes; types != typing) {
        typing = types;
        last_percent = -1;
      }
      if (percent / 5 == last_percent / 5) return;
      last_percent = percent;
      if (typing) {
        fmt::print(stderr, "import: {:3d}%  column types: {:.1f} of {:.1f} MB read, {:.1f} MB/s\n", percent, done / 1e6, total / 1e6,
                   seconds > 0 ? done / seconds / 1e6 : 0.0);
        return;
      }
      fmt::print(stderr, "import: {:3d}%  {:.1f} of {:.1f} MB, {} readings, {:.2f}M readings/s\n", percent, done / 1e6, total / 1e6,
                 readings, rate);
    };
    // A CSV is read twice (its columns' types, then its rows), and telling the format reads the
    // first lines: a named pipe would lose them, and then fail as a file without a header.
    if (flags.format.empty() || flags.format == "csv") {
      if (Status regular = store::RequireRegularCsvFile(file); !regular.ok()) {
        // Without --format, whatever the file holds: its format is told from its first lines.
        fmt::print(stderr, "import: {}{}\n", regular.ToString(),
                   flags.format.empty() ? " (and without --format, the format is told from the first lines, read before the rest)"
                                        : "");
        return 1;
      }
    }
    // CSV given none of the archive reader's options takes the parallel path (docs/formats/csv.md);
    // every other file goes through the archive reader `mare replay` uses.
    Result<std::string> format = flags.format.empty() ? archive::DetectArchiveFormat(file) : Result<std::string>(flags.format);
    if (!format) {
      fmt::print(stderr, "import: {}\n", format.status().ToString());
      return 1;
    }
    bool fast_csv = *format == "csv" && !flags.sensor_id && flags.location.empty() && flags.missing.empty() && flags.utc_offset.empty();
    Status s;
    if (fast_csv) {
      s = store::ImportCsv(file, store->get(), {.flush_rows = flags.flush_rows}, &report, progress);
    } else {
      auto reader = OpenForImport(file, flags, progress);
      s = reader ? store::ImportArchive(reader->get(), store->get(), {.flush_rows = flags.flush_rows}, &report, progress)
                 : reader.status();
    }
    double seconds = static_cast<double>(MonotonicMicros() - start) / 1e6;
    PrintTextColumns(file, report, false);
    PrintSkipped(file, report);
    if (!s.ok()) {
      PrintTextColumns(file, report, true);
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
    PrintTextColumns(file, report, true);
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
                  "Archives: CSV with a header (a time column: ts, timestamp, time, datetime or date, or year/month/day; "
                  "optional sensor_id and lat/lon; then any fields: docs/formats/csv.md), NDBC standard meteorological, "
                  "or NDJSON readings")
      ->required()
      ->check([](const std::string& f) { return f.starts_with("mysql://") ? std::string() : CLI::ExistingFile(f); });
  cmd->add_option("--format", flags->format, "Archive format: csv, ndbc or ndjson (default: detected from the first line)")
      ->check(CLI::IsMember({"csv", "ndbc", "ndjson"}));
  cmd->add_option("--sensor-id", flags->sensor_id,
                  "sensor_id of rows without one (default: the station number in a name like ndbc_44005_2012.txt, else 1)");
  cmd->add_option("--location", flags->location, "Position of rows without one, as lat,lon, e.g. 43.20,-69.13");
  cmd->add_option("--missing", flags->missing, "CSV: extra numeric codes meaning 'no value', comma-separated, e.g. 99.0,999");
  cmd->add_option("--utc-offset", flags->utc_offset, "CSV: times without a zone are this far east of UTC, e.g. +08:00");
  cmd->add_option("--ts-column", flags->ts_column, "mysql://: the time column (default: ts, timestamp, time or datetime)");
  cmd->add_option("--sensor-column", flags->sensor_column,
                  "mysql://: the integer sensor id column (default: sensor_id if present, else --sensor-id for every row)");
  cmd->add_option("--lat", flags->lat_column, "mysql://: the latitude column (default: lat or latitude)");
  cmd->add_option("--lon", flags->lon_column, "mysql://: the longitude column (default: lon, lng or longitude)");
  cmd->add_option("--json-column", flags->json_column, "mysql://: a column of JSON objects whose members are fields");
  cmd->add_flag("--from-start", flags->from_start, "mysql://: ignore the position of an earlier import of the table");
  cmd->add_option("--flush-rows", flags->flush_rows,
                  "Readings held in memory before they are written (and, for mysql://, before the position moves); a CSV "
                  "import holds at most about twice this many, whatever the file's size")
      ->capture_default_str();
  cmd->add_option("--config", flags->config, "mare.toml to read data_dir and [store] from");
  cmd->add_option("--set", flags->overrides, "Override a config key, e.g. --set store.retention=30d (repeatable)");
  cmd->add_option("--data-dir", flags->data_dir, "Data directory (the store is DATA_DIR/store)");
  cmd->add_flag("--quiet", flags->quiet, "No progress lines");
  cmd->callback([flags, exit_code] { *exit_code = RunImport(*flags); });
}
}  // namespace mare::cli
