// Nelder–Mead: the downhill simplex minimiser that fits Holt–Winters' smoothing parameters.
// Deterministic (no random restarts): the same start gives the same answer, bit for bit.
#pragma once

#include <functional>
#include <vector>

namespace mare::forecast {

struct NelderMeadOptions {
  double initial_step = 0.5;  // the simplex's first edges, in the parameters' own units
  int max_evaluations = 200;
  double tolerance = 1e-7;    // stop when the simplex's values differ by less (relative)
};

struct NelderMeadResult {
  std::vector<double> x;
  double value;
  int evaluations;
};

// Minimises f from start with the standard coefficients (reflection 1, expansion 2,
// contraction 1/2, shrink 1/2).
NelderMeadResult MinimizeNelderMead(const std::function<double(const std::vector<double>&)>& f,
                                    std::vector<double> start, const NelderMeadOptions& options = {});

}  // namespace mare::forecast
