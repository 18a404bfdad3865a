// NDJSON archives: one JSON reading per line (or an array of them), exactly what the ingest API
// accepts (docs/formats/reading.md), as `mare log dump`, a client's own files or an export hold.
// Each reading is validated by the ingest parser; a rejected one is a skipped row with its reason.
#pragma once

#include <memory>
#include <string>

#include "archive/archive.h"

namespace mare::archive {

Result<std::unique_ptr<ArchiveReader>> OpenNdjsonArchive(const std::string& path, const ArchiveOptions& options);

}  // namespace mare::archive
