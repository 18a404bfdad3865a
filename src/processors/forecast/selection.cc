#include "processors/forecast/selection.h"

#include <cmath>

namespace mare::forecast {

double SelectWeight(const ResidualBook& ensemble, const ResidualBook& model, int64_t origin, const SelectionOptions& options) {
  double chosen = 0, best = HUGE_VAL;
  for (double w : options.weights) {
    int64_t n = 0;
    double mae = model.BlendMae(ensemble, w, origin, options.window_days, &n);
    if (n < options.min_errors || std::isnan(mae)) return 0;  // the same hours for every weight
    if (mae < best) {
      best = mae;
      chosen = w;
    }
  }
  return chosen;
}

}  // namespace mare::forecast
