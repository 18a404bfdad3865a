// The metrics of the forecast processor: declared once here, read back by the commands, the
// benchmarks and the tests through these names.
#pragma once

#include "common/metrics.h"

namespace mare::forecast_metrics {

inline constexpr metrics::Metric kHoursClosed{"mare_forecast_hours_closed_total", "Hourly means taken into the forecast series (final 1h rollups of a configured field)"};
inline constexpr metrics::Metric kIssued{"mare_forecast_forecasts_issued_total", "Forecasts appended to the forecasts topic, one per series and closed hour"};
inline constexpr metrics::Metric kDayAheadIssued{"mare_forecast_day_ahead_issued_total", "Day-ahead forecasts (issued at 00:00 UTC) appended to the forecasts topic"};
inline constexpr metrics::Metric kIssueSeconds{"mare_forecast_issue_seconds", "Time to fit and forecast one series when its hour closes"};
inline constexpr metrics::Metric kSeries{"mare_forecast_kept_series", "Series (sensor and field) the forecast processor keeps"};
inline constexpr metrics::Metric kLagRecords{"mare_forecast_lag_records", "Rollup records not yet read by the forecast processor"};
inline constexpr metrics::Metric kCheckpointSeconds{"mare_forecast_checkpoint_seconds", "Time to write a forecast checkpoint"};
inline constexpr metrics::Metric kConsumerUp{"mare_forecast_consumer_up", "1 while the forecast processor consumes, 0 while it retries a failed step or stopped"};
inline constexpr metrics::Metric kStepsFailed{"mare_forecast_steps_failed_total", "Failed steps of the forecast processor, each retried from the last checkpoint unless permanent"};

}  // namespace mare::forecast_metrics
