// Bulk import of archives straight into the store (`mare import`), bypassing the log: for
// archives and benchmarks. CSV has its own parallel path (ImportCsv); other formats come
// through an archive reader (ImportArchive). The CSV dialect is docs/formats/csv.md: a time
// column is required; `sensor_id` is optional (without one, the station number in the file's
// name, else 1; a row whose cell is missing is skipped); `lat`/`latitude` and
// `lon`/`lng`/`long`/`longitude` make the location (one without the other skips the rows with a
// value); every other column is a field, numbers unless a cell of it is text (then text, its
// numbers included: the archive reader's rule, archive/csv_column_types.h).
// Empty cells, NA, NaN and null are absent values. Rows that cannot be read are skipped and
// counted, with the first few reasons kept.
//
//   ImportReport report;
//   Status s = ImportCsv("readings.csv", store, {}, &report, [](const ImportProgress& p) {...});
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "archive/archive.h"
#include "common/status.h"
#include "store/store.h"

namespace mare::store {

// A field the file gives as text (archive::TextColumn), and whether the store held numbers of
// that name when the import began: SQL then shows those, none of this file's values of the name
// (docs/formats/csv.md, "Text").
struct ImportedTextColumn : archive::TextColumn {
  bool store_has_numbers = false;
};

// Where an import is, for its progress lines: the first pass over a CSV file (its columns'
// types; bytes only), then the rows (bytes, or -1 when the reader does not know them, and the
// readings added so far).
struct ImportProgress {
  enum class Pass { kTypes, kRows } pass = Pass::kRows;
  int64_t bytes_done = -1, bytes_total = -1;
  int64_t readings = 0;
};
using ImportProgressFn = std::function<void(const ImportProgress&)>;

struct ImportReport {
  int64_t rows = 0;      // data lines read
  int64_t imported = 0;  // readings added
  int64_t skipped = 0;
  std::vector<std::string> errors;  // the first few skipped rows: "line N: why"
  std::vector<ImportedTextColumn> text_columns;  // in the header's order
  // What the import held in memory at most, which must not grow with the input (issue 15):
  // readings in the memtable and in hours taken out to be written, and (ImportCsv) bytes of
  // the file mapped and read but not yet given back.
  int64_t peak_held_rows = 0;
  int64_t peak_mapped_bytes = 0;
};

struct ImportOptions {
  // Memtable rows before the completed hours are written out. ImportCsv holds at most about
  // twice this many readings (the memtable and the hours being written), however big the file.
  size_t flush_rows = 4'000'000;
  // ImportCsv: the file's pages already read are given back once this many bytes are done, so
  // the mapped file counts in the resident memory only by this window, not by its size.
  size_t release_bytes = 64u << 20;
  // ImportCsv: plain lines are read in one pass (archive/csv_plain_row.h), the rest by the
  // general rules; false reads every line by the general rules (tests compare the two).
  bool plain_rows = true;
  // ImportArchive: called once each flush made everything read so far durable (a resumable
  // source records where it got to); an error ends the import.
  std::function<Status()> after_flush;
};

// OK if path is a regular file; else (a named pipe, a device, a directory) an error that says a
// CSV is read twice, the columns' types then the rows, so it must be a file. Neither opens it
// (opening a named pipe waits for a writer, and reading it would take its data).
Status RequireRegularCsvFile(const std::string& path);

// progress: may be called from several threads, never two calls at once. path: a regular file
// (RequireRegularCsvFile).
Status ImportCsv(const std::string& path, Store* store, const ImportOptions& options, ImportReport* report,
                 const ImportProgressFn& progress);

// Imports every reading an archive reader yields (NDBC, NDJSON, a database table: the readers
// `mare replay` uses), row by row; skipped rows are counted with their line and reason.
// progress gets the readings so far (bytes unknown: -1).
Status ImportArchive(archive::ArchiveReader* reader, Store* store, const ImportOptions& options, ImportReport* report,
                     const ImportProgressFn& progress);

}  // namespace mare::store
