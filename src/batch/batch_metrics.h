// The metrics of the batch layer's reconcile (`mare batch reconcile`, or any process that runs
// Reconcile with a registry): declared once here. They belong to the rollups, hence mare_rollup_.
#pragma once

#include "common/metrics.h"

namespace mare::batch_metrics {

inline constexpr metrics::Metric kComparedWindows{"mare_rollup_batch_compared_windows", "Windows the last reconcile compared (stream's rollups against the batch recompute)"};
inline constexpr metrics::Metric kDifferingWindows{"mare_rollup_batch_differing_windows", "Windows where the last reconcile found the stream's rollups differ from the batch recompute"};
inline constexpr metrics::Metric kRepairedWindows{"mare_rollup_batch_repaired_windows_total", "Windows whose batch values reconcile --repair wrote"};

}  // namespace mare::batch_metrics
