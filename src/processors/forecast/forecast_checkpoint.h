// The forecast checkpoint: the rollups offsets the forecast processor has read and, per series,
// the hours it keeps, its models' state (Holt–Winters' fit, recent errors, issues being judged)
// and its latest forecasts, in one file replaced atomically (temp file, fsync, rename, fsync
// directory); since version 3 each series' part is compressed (zstd) on its own. A series
// without a state (version 1 files) is rebuilt from its hours (SeriesForecaster::Restore).
// Format: docs/formats/forecast-checkpoint.md.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"
#include "processors/forecast/hourly_series.h"
#include "processors/forecast/series_state.h"

namespace mare::forecast {

struct SeriesCheckpoint {
  uint64_t sensor_id = 0;
  std::string field;
  int32_t partition = 0;  // of the rollups topic, where its hours come from
  HourlySeries history;   // the kept hours, the last one the last closed
  std::string latest;     // the value of its latest forecast record, "" if none
  std::string latest_day_ahead;
  std::optional<SeriesState> state;  // none: rebuild from the hours
};

struct ForecastCheckpoint {
  uint32_t version = 0;  // of the file read (decoding); files are written in the newest
  uint32_t horizon = 0, history_days = 0, refit_hours = 0;  // the settings it was made with
  std::vector<int64_t> next_offsets;                        // per rollups partition
  std::vector<SeriesCheckpoint> series;
};

inline constexpr uint32_t kForecastCheckpointVersion = 3;

// Writes the newest version; an older one (2) only for the tests of reading it.
void EncodeForecastCheckpoint(const ForecastCheckpoint& checkpoint, std::string* out,
                              uint32_t version = kForecastCheckpointVersion);
// Corruption (naming `where`) when the bytes are damaged.
Status DecodeForecastCheckpoint(std::string_view bytes, const std::string& where, ForecastCheckpoint* out);

// NotFound when there is none.
Status ReadForecastCheckpoint(const std::string& path, ForecastCheckpoint* out);
Status WriteForecastCheckpoint(const std::string& path, const ForecastCheckpoint& checkpoint, std::string* scratch);

}  // namespace mare::forecast
