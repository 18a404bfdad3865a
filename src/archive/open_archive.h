// OpenArchive: the reader for an archive file in any format mare reads (NDBC, CSV, NDJSON
// readings), named or found from the file's first line.
//
//   Result<std::unique_ptr<ArchiveReader>> r = OpenArchive("ndbc_44005_2012.txt", {});
#pragma once

#include <memory>
#include <string>

#include "archive/archive.h"
#include "common/status.h"

namespace mare::archive {

Result<std::unique_ptr<ArchiveReader>> OpenArchive(const std::string& path, const ArchiveOptions& options);

// "ndbc", "ndjson" or "csv" from the file's first line (NDBC headers start "YY", "#YY" or
// "YYYY"; a JSON reading starts with '{' or '[').
Result<std::string> DetectArchiveFormat(const std::string& path);

}  // namespace mare::archive
