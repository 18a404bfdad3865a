// Bulk import of archives straight into the store (`mare import`), bypassing the log: for
// archives and benchmarks. CSV has its own parallel path (ImportCsv); other formats come
// through an archive reader (ImportArchive). The header names the columns: `ts` (or timestamp, time, datetime)
// and `sensor_id` are required; `lat`/`latitude` and `lon`/`lng`/`longitude` make the
// location; every other column is a field, numeric where a cell is a number, text otherwise.
// Empty cells, NA, NaN and null are absent values. Rows that cannot be read are skipped and
// counted, with the first few reasons kept.
//
//   ImportReport report;
//   Status s = ImportCsv("readings.csv", store, {}, &report, [](int64_t done, int64_t total, int64_t readings) {...});
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "archive/archive.h"
#include "common/status.h"
#include "store/store.h"

namespace mare::store {

struct ImportReport {
  int64_t rows = 0;      // data lines read
  int64_t imported = 0;  // readings added
  int64_t skipped = 0;
  std::vector<std::string> errors;  // the first few skipped rows: "line N: why"
};

struct ImportOptions {
  size_t flush_rows = 4'000'000;  // memtable rows before the completed hours are written out
  // ImportArchive: called once each flush made everything read so far durable (a resumable
  // source records where it got to); an error ends the import.
  std::function<Status()> after_flush;
};

Status ImportCsv(const std::string& path, Store* store, const ImportOptions& options, ImportReport* report,
                 const std::function<void(int64_t bytes_done, int64_t bytes_total, int64_t readings)>& progress);

// Imports every reading an archive reader yields (NDBC, NDJSON, a database table: the readers
// `mare replay` uses), row by row; skipped rows are counted with their line and reason.
// progress gets the readings so far (bytes unknown: -1).
Status ImportArchive(archive::ArchiveReader* reader, Store* store, const ImportOptions& options, ImportReport* report,
                     const std::function<void(int64_t bytes_done, int64_t bytes_total, int64_t readings)>& progress);

}  // namespace mare::store
