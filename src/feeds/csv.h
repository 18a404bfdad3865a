// CSV archives: a header line, then one observation per line (RFC 4180 quoting within a
// line; the delimiter is ',', or ';' or a tab when the header uses that instead).
//
// Columns, matched by name without regard to case:
//   timestamp / datetime / ts / time / date   the time, first of these present, in any form
//                        ParseTimestampLoose accepts; a "date" plus a "time" column are joined;
//   sensor_id            optional; rows without one get --sensor-id;
//   lat / latitude, lon / lng / longitude    optional; a row with both gets a location,
//                        otherwise --location when given;
//   anything else        a field named after the header (lower case, [a-z0-9_]): numeric if
//                        every value in the column is a number, text otherwise.
// Missing values become absent fields: empty cells, NA, NaN, null (any case), and numbers
// equal to one of the --missing codes. Rows with an unparseable time or the wrong number of
// cells are skipped and reported.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "feeds/archive.h"

namespace mare::feeds {

Result<std::unique_ptr<ArchiveReader>> OpenCsvArchive(const std::string& path, const ArchiveOptions& options);

// Splits one CSV line into cells, unquoting "a ""b""" to a "b". False on an unterminated quote.
bool SplitCsvLine(std::string_view line, char delimiter, std::vector<std::string>* cells);

}  // namespace mare::feeds
