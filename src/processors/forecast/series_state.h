// SeriesState: what a SeriesForecaster has learnt beyond its hours (Holt–Winters' fit, every
// model's recent day-ahead errors, the day-ahead issues still being judged), saved in the
// forecast checkpoint so that a restart resumes with its models instead of replaying weeks of
// origins. Format: docs/formats/forecast-checkpoint.md.
#pragma once

#include <cstdint>
#include <utility>
#include <vector>

#include "processors/forecast/holt_winters.h"

namespace mare::forecast {

struct SeriesState {
  using Errors = std::vector<std::pair<int64_t, double>>;  // (00:00 origin, actual − forecast), oldest first
  struct Pending {  // a 00:00 issue some of whose hours are not observed yet
    int64_t origin = 0;
    std::vector<std::vector<double>> means;  // [model][lead − 1], the ensemble last
  };

  int64_t last_closed = 0;
  int64_t replay_from = 0;
  int64_t holt_winters_fit = 0;  // the origin Holt–Winters was last fitted at
  bool holt_winters_fitted = false;
  HoltWintersParams holt_winters;
  // [model][lead − 1], the ensemble last: the errors later origins may still read (the longest
  // window: intervals' 56 days, the ensemble's 28).
  std::vector<std::vector<Errors>> errors;
  std::vector<Pending> pending;
};

}  // namespace mare::forecast
