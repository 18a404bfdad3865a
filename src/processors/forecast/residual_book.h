// A model's out-of-sample errors on one series, by lead: what its 80 % prediction intervals
// (empirical quantiles, so calibrated by construction) and its recent skill (rolling MAE, which
// the ensemble weighs by) are made of. Errors come in only once their hour is observed, so they
// are never in-sample.
//
//   book.Add(origin, lead, actual - forecast);   // when hour origin + lead - 1 is observed
//   book.Interval(next_origin, lead, &lo, &hi);  // forecast + [lo, hi] covers ~80 %
#pragma once

#include <cstdint>
#include <deque>
#include <utility>
#include <vector>

namespace mare::forecast {

struct ResidualOptions {
  int interval_window_days = 56;  // errors of origins this recent make the interval
  int lead_pool = 2;              // leads within this distance pool their errors
  int min_errors = 20;            // fewer: no interval yet
  double coverage = 0.8;          // central interval [(1-c)/2, (1+c)/2] quantiles
};

class ResidualBook {
 public:
  ResidualBook(int leads, ResidualOptions options = {});
  void Add(int64_t origin, int lead, double error);  // error: actual minus forecast
  // Offsets to add to the forecast for the interval of `lead` issued at origin, from errors of
  // earlier origins only; false while there are too few.
  bool Interval(int64_t origin, int lead, double* lower, double* upper) const;
  // Mean absolute error over leads [lead - lead_pool, lead + lead_pool] of origins in the last
  // `days` days before origin; NaN when there is none.
  double RecentMae(int64_t origin, int lead, int days) const;

  // Mean absolute error over every lead, of origins in the last `days` days before origin;
  // NaN when there is none. *count: how many errors.
  double MeanAbsError(int64_t origin, int days, int64_t* count) const;

  using Errors = std::vector<std::pair<int64_t, double>>;  // (origin, error), oldest first
  // Per lead, the errors of origins >= from: all that reads at origins o with o − window >= from see.
  std::vector<Errors> Save(int64_t from) const;
  // Replaces the errors with saved ones (one entry per lead, origins non-decreasing; extra leads
  // are dropped).
  void Load(const std::vector<Errors>& by_lead);

 private:
  void Collect(int64_t origin, int lead, int days, std::vector<double>* out) const;

  ResidualOptions options_;
  int leads_;
  // (origin, error), oldest first; empty until the first error: an empty std::deque allocates
  // ~600 B, and a forecaster holds leads x models of them for every series it has seen.
  std::vector<std::deque<std::pair<int64_t, double>>> by_lead_;
  mutable std::vector<double> scratch_;
};

}  // namespace mare::forecast
