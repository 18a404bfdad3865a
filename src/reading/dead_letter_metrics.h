// The metrics of the dead-letter file, where rejected readings are kept: declared once here,
// read back by the dashboard and the tests through these names.
#pragma once

#include "common/metrics.h"

namespace mare::dead_letter_metrics {

inline constexpr metrics::Metric kReadingsWritten{"mare_dead_letter_readings_written_total", "Rejected readings kept in the dead-letter file"};
inline constexpr metrics::Metric kReadingsDropped{"mare_dead_letter_readings_dropped_total", "Rejected readings not kept (ingest.dead_letter_max is 0, or the write failed)"};
inline constexpr metrics::Metric kReadingsTruncated{"mare_dead_letter_readings_truncated_total", "Rejected readings kept only in part (longer than ingest.dead_letter_entry_bytes)"};
inline constexpr metrics::Metric kFilesRotated{"mare_dead_letter_files_rotated_total", "Times the dead-letter file was rotated (its older rotated file dropped)"};

}  // namespace mare::dead_letter_metrics
