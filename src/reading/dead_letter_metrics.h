// The metrics of the dead-letter file, where rejected readings are kept: declared once here,
// read back by the dashboard and the tests through these names.
#pragma once

#include "common/metrics.h"

namespace mare::dead_letter_metrics {

inline constexpr metrics::Metric kReadingsWritten{"mare_dead_letter_readings_written_total", "Rejected readings kept in the dead-letter file"};
inline constexpr metrics::Metric kReadingsDropped{"mare_dead_letter_readings_dropped_total", "Rejected readings not kept because the dead-letter file is full (counted only)"};

}  // namespace mare::dead_letter_metrics
