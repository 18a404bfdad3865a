// Fuzz target: the archive readers `mare replay` and `mare import` use (NDBC and CSV, named or
// detected from the first line), row by row to the end of the file.
#include <sys/mman.h>
#include <unistd.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "archive/open_archive.h"
#include "fuzz_check.h"

namespace archive = mare::archive;

using mare::fuzz::Check;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  // Byte 0 picks the format as `--format` would (or detection) and the CSV options.
  constexpr const char* kFormats[] = {"", "ndbc", "csv"};
  archive::ArchiveOptions options;
  options.format = kFormats[data[0] % 3];
  if (data[0] & 0x4) options.location = archive::Location{42.48, 3.18};
  if (data[0] & 0x8) options.missing_codes = {-999, 99.0};
  if (data[0] & 0x10) options.utc_offset_micros = 8 * 3'600'000'000LL;
  int fd = ::memfd_create("archive", MFD_CLOEXEC);
  if (fd < 0) abort();
  if (::write(fd, data + 1, size - 1) != static_cast<ssize_t>(size - 1)) abort();
  auto reader = archive::OpenArchive("/proc/self/fd/" + std::to_string(fd), options);
  if (reader.ok()) {
    archive::Reading reading;
    size_t rows = 0;
    for (;;) {
      archive::ArchiveReader::Row row = (*reader)->Next(&reading);
      if (row == archive::ArchiveReader::Row::kEnd) break;
      Check(++rows <= size, "no more rows than bytes");
      if (row == archive::ArchiveReader::Row::kSkipped) {
        Check(!(*reader)->why().empty(), "a skipped row says why");
        continue;
      }
      Check(reading.sensor_id <= archive::kMaxSensorId, "sensor ids fit mare's 32 bits");
      for (const auto& f : reading.numbers) Check(archive::IsFieldName(f.name), "field names are valid");
      for (const auto& f : reading.texts) Check(archive::IsFieldName(f.name), "field names are valid");
    }
    Check((*reader)->status().ok(), "reading a file in memory fails nowhere");
  }
  ::close(fd);
  return 0;
}
