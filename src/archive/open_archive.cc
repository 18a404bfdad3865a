#include "archive/open_archive.h"

#include <fmt/format.h>

#include "archive/csv.h"
#include "archive/ndbc.h"
#include "archive/ndjson.h"

namespace mare::archive {

Result<std::string> DetectArchiveFormat(const std::string& path) {
  LineReader lines;
  MARE_RETURN_IF_ERROR(lines.Open(path));
  std::string line;
  while (lines.Next(&line)) {
    std::string_view l = line;
    while (!l.empty() && (l.front() == ' ' || l.front() == '\t')) l.remove_prefix(1);
    if (l.empty()) continue;
    if (l.substr(0, 3) == "#YY" || l.substr(0, 3) == "YY " || l.substr(0, 4) == "YYYY") return std::string("ndbc");
    if (l.front() == '{' || l.front() == '[') return std::string("ndjson");
    return std::string("csv");
  }
  MARE_RETURN_IF_ERROR(lines.status());
  return Status::InvalidArgument(path + ": empty file, nothing to replay");
}

Result<std::unique_ptr<ArchiveReader>> OpenArchive(const std::string& path, const ArchiveOptions& options) {
  std::string format = options.format;
  if (format.empty()) {
    Result<std::string> detected = DetectArchiveFormat(path);
    if (!detected) return detected.status();
    format = *detected;
  }
  if (format == "ndbc") return OpenNdbcArchive(path, options);
  if (format == "csv") return OpenCsvArchive(path, options);
  if (format == "ndjson") return OpenNdjsonArchive(path, options);
  return Status::InvalidArgument(fmt::format("unknown archive format '{}': use ndbc, csv or ndjson", format));
}

}  // namespace mare::archive
