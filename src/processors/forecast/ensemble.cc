#include "processors/forecast/ensemble.h"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace mare::forecast {

void EnsembleWeights(std::span<const ResidualBook> books, std::span<const double> forecasts, int64_t origin,
                     int lead, const EnsembleOptions& options, std::span<double> weights) {
  const size_t n = books.size();
  std::fill(weights.begin(), weights.end(), 0.0);
  // Asked for every lead of every issue: buffers of this thread, not two allocations a call.
  thread_local std::vector<double> mae;
  thread_local std::vector<size_t> ranked;
  mae.assign(n, 0.0);
  ranked.clear();
  for (size_t m = 0; m < n; ++m) {
    if (std::isnan(forecasts[m])) continue;
    mae[m] = books[m].RecentMae(origin, lead, options.window_days);
    if (!std::isnan(mae[m])) ranked.push_back(m);
  }
  if (ranked.empty()) {  // no model has a record yet: every model with a forecast, equally
    size_t present = 0;
    for (size_t m = 0; m < n; ++m) present += !std::isnan(forecasts[m]);
    for (size_t m = 0; m < n; ++m) {
      if (!std::isnan(forecasts[m])) weights[m] = 1.0 / static_cast<double>(present);
    }
    return;
  }
  // By MAE, ties in model order (a stable insertion sort: a handful of models, and
  // std::stable_sort would allocate its buffer at every call).
  for (size_t i = 1; i < ranked.size(); ++i) {
    size_t m = ranked[i], j = i;
    for (; j > 0 && mae[m] < mae[ranked[j - 1]]; --j) ranked[j] = ranked[j - 1];
    ranked[j] = m;
  }
  if (static_cast<int>(ranked.size()) > options.top) ranked.resize(static_cast<size_t>(options.top));
  double total = 0;
  for (size_t m : ranked) {
    weights[m] = std::pow(std::max(mae[m], 1e-6), -options.power);
    total += weights[m];
  }
  for (size_t m : ranked) weights[m] /= total;
}

}  // namespace mare::forecast
