// What a series issues: the ensemble blended with a model outside it (the local ridge), at the
// weight that gave the lower day-ahead MAE over the last weeks of that series' own issues. Each
// of those errors is out of sample (the issue was made before its day), so the choice is
// validated on held-out past days, never on the day it is made for.
#pragma once

#include <cstdint>
#include <vector>

#include "processors/forecast/residual_book.h"

namespace mare::forecast {

struct SelectionOptions {
  int window_days = 42;  // the errors compared: of the day-ahead issues of this many days before
  int min_errors = 336;  // fewer pairs of errors (two weeks of hours): the ensemble alone (weight 0)
  // The weights of the model against the ensemble's 1 - w that are compared (0: the ensemble
  // alone, 1: the model alone); docs/forecast.md has what each grid gave.
  std::vector<double> weights = {0.5, 0.75};
};

// The weight w of the model's forecast (the ensemble's 1 - w) whose blend had the lowest MAE
// over the window's hours where both have an error (books of signed errors: the blend's error
// is w e_model + (1 - w) e_ensemble); ties go to the earlier weight; 0 with fewer than
// min_errors such hours.
double SelectWeight(const ResidualBook& ensemble, const ResidualBook& model, int64_t origin, const SelectionOptions& options);

}  // namespace mare::forecast
