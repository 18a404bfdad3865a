#include "processors/forecast/nelder_mead.h"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace mare::forecast {

NelderMeadResult MinimizeNelderMead(const std::function<double(const std::vector<double>&)>& f,
                                    std::vector<double> start, const NelderMeadOptions& options) {
  const size_t n = start.size();
  std::vector<std::vector<double>> points(n + 1, start);
  for (size_t i = 0; i < n; ++i) points[i + 1][i] += options.initial_step;
  std::vector<double> values(n + 1);
  int evaluations = 0;
  auto eval = [&](const std::vector<double>& x) {
    ++evaluations;
    double v = f(x);
    return std::isnan(v) ? HUGE_VAL : v;
  };
  for (size_t i = 0; i <= n; ++i) values[i] = eval(points[i]);
  std::vector<size_t> order(n + 1);
  std::vector<double> centroid(n), trial(n), trial2(n);
  auto along = [&](double t, std::vector<double>* out) {  // centroid + t * (centroid - worst)
    for (size_t j = 0; j < n; ++j) (*out)[j] = centroid[j] + t * (centroid[j] - points[order[n]][j]);
  };
  while (evaluations < options.max_evaluations) {
    std::iota(order.begin(), order.end(), 0);
    // Stable: ties keep their index order, so the path never depends on sort internals.
    std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return values[a] < values[b]; });
    double best = values[order[0]], worst = values[order[n]];
    if (std::fabs(worst - best) <= options.tolerance * (std::fabs(best) + 1e-12)) break;
    std::fill(centroid.begin(), centroid.end(), 0.0);
    for (size_t i = 0; i < n; ++i) {
      for (size_t j = 0; j < n; ++j) centroid[j] += points[order[i]][j] / static_cast<double>(n);
    }
    along(1.0, &trial);
    double reflected = eval(trial);
    if (reflected < best) {
      along(2.0, &trial2);
      double expanded = eval(trial2);
      if (expanded < reflected) {
        points[order[n]] = trial2;
        values[order[n]] = expanded;
      } else {
        points[order[n]] = trial;
        values[order[n]] = reflected;
      }
    } else if (reflected < values[order[n - 1]]) {
      points[order[n]] = trial;
      values[order[n]] = reflected;
    } else {
      along(reflected < worst ? 0.5 : -0.5, &trial2);
      double contracted = eval(trial2);
      if (contracted < std::min(reflected, worst)) {
        points[order[n]] = trial2;
        values[order[n]] = contracted;
      } else {
        for (size_t i = 1; i <= n; ++i) {
          std::vector<double>& p = points[order[i]];
          for (size_t j = 0; j < n; ++j) p[j] = points[order[0]][j] + 0.5 * (p[j] - points[order[0]][j]);
          values[order[i]] = eval(p);
        }
      }
    }
  }
  size_t best = static_cast<size_t>(std::min_element(values.begin(), values.end()) - values.begin());
  return {points[best], values[best], evaluations};
}

}  // namespace mare::forecast
