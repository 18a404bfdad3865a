// Fuzz target: the forecast checkpoint decoder, then each series' state restored into a
// forecaster and an hour closed, as a restarted forecast processor would.
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "processors/forecast/forecast_checkpoint.h"
#include "processors/forecast/series_forecaster.h"
#include "fuzz_check.h"

namespace forecast = mare::forecast;

using mare::fuzz::Check;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < mare::fuzz::kCheckpointHeaderSize) return 0;
  std::string bytes(reinterpret_cast<const char*>(data), size);
  mare::fuzz::SealCheckpoint(&bytes);

  forecast::ForecastCheckpoint c;
  if (!forecast::DecodeForecastCheckpoint(bytes, "fuzz", &c).ok()) return 0;
  // What was read encodes (as the newest version) to bytes that read back the same.
  std::string once, twice;
  forecast::EncodeForecastCheckpoint(c, &once);
  forecast::ForecastCheckpoint again;
  Check(forecast::DecodeForecastCheckpoint(once, "fuzz", &again).ok(), "a decoded checkpoint's encoding decodes");
  forecast::EncodeForecastCheckpoint(again, &twice);
  Check(once == twice, "encoding is stable");
  for (const forecast::SeriesCheckpoint& s : c.series) {
    // Keep the work bounded: hours far from the epoch or histories of years are not worth a run.
    if (s.history.values.empty() || s.history.values.size() > 24 * 200) continue;
    if (s.history.first_hour < 0 || s.history.first_hour > (int64_t{1} << 40)) continue;
    forecast::SeriesOptions options;
    options.history_days = 7;
    forecast::SeriesForecaster f(options);
    if (s.state && f.RestoreState(s.history, *s.state).ok()) {
      Check(f.last_closed() == s.history.end_hour() - 1, "restored up to its last hour");
    } else {
      continue;  // a rebuild from hours (Restore) is the processor's other path, fuzzed no further here
    }
    forecast::ForecastIssue issue;
    Check(f.Close(f.last_closed() + 1, 12.5, &issue), "the next hour closes");
    Check(issue.mean.size() == static_cast<size_t>(options.horizon), "an issue of the horizon's hours");
  }
  return 0;
}
