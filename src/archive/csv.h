// CSV archives as `mare replay` reads them: a header line, then one observation per line, in
// the dialect of csv_format.h (docs/formats/csv.md), streamed row by row.
//
// Columns: the time (required), sensor_id (optional; rows without one get --sensor-id), lat and
// lon (optional; a row with both, valid, gets a location, otherwise --location when given),
// and fields: a field column is numeric if every present value in it is a number, text
// otherwise (the file is read twice). Missing values (csv_format.h, and numbers equal to one of
// the --missing codes) become absent fields. Rows with an unparseable time, a bad sensor_id or
// the wrong number of cells are skipped and reported.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "archive/archive.h"
#include "archive/csv_format.h"

namespace mare::archive {

Result<std::unique_ptr<ArchiveReader>> OpenCsvArchive(const std::string& path, const ArchiveOptions& options);

}  // namespace mare::archive
