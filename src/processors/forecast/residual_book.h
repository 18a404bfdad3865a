// A model's out-of-sample errors on one series, by lead: what its 80 % prediction intervals
// (empirical quantiles, so calibrated by construction) and its recent skill (rolling MAE, which
// the ensemble weighs by) are made of. Errors come in only once their hour is observed, so they
// are never in-sample.
//
//   book.Add(origin, lead, actual - forecast);   // when hour origin + lead - 1 is observed
//   book.Interval(next_origin, lead, &lo, &hi);  // forecast + [lo, hi] covers ~80 %
#pragma once

#include <cstdint>
#include <utility>
#include <vector>

namespace mare::forecast {

struct ResidualOptions {
  int interval_window_days = 56;  // errors of origins this recent make the interval
  int lead_pool = 2;              // leads within this distance pool their errors
  int min_errors = 20;            // fewer: no interval yet
  double coverage = 0.8;          // central interval [(1-c)/2, (1+c)/2] quantiles
  // Errors kept: of origins this many days before the newest (0: interval_window_days + 2). No
  // reader may ask for a longer window than this (RecentMae's and MeanAbsError's days).
  int keep_days = 0;
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
  // What RecentMae and Interval last answered for a lead, and what from: the forecaster asks
  // every hour, but a lead's pooled errors change only when one of its leads gets an error
  // (one lead a day's hour) or an origin leaves the window (once a day), so most answers repeat.
  struct Answer {
    int days = -1;               // the window it was computed over; -1: none yet
    std::vector<uint32_t> from;  // per pooled lead: its version, then the range [begin, end) read
    bool ok = false;
    double a = 0, b = 0;         // RecentMae: the MAE; Interval: lower, upper
  };
  // The pooled leads' errors of origins in [origin - days, origin), as Answer::from says it.
  void Key(int64_t origin, int lead, int days, std::vector<uint32_t>* key) const;
  // Whether `answer` was computed from exactly these errors; else makes it theirs (ok false).
  bool Reuse(Answer* answer, int days) const;
  void Collect(int64_t origin, int lead, int days, std::vector<double>* out) const;

  ResidualOptions options_;
  int leads_;
  // (origin, error), oldest first; empty until the first error (a forecaster holds leads x
  // models of them for every series it has seen). A vector, not a deque: the answers'
  // windows are found by binary search and read every hour, and the old errors leave once a
  // day (a ~2 KB move), not every hour.
  std::vector<std::vector<std::pair<int64_t, double>>> by_lead_;
  // Per lead, bumped by every change to its errors: an Answer whose versions and ranges match
  // was computed from the very same errors in the same order, so it is reused bit for bit.
  std::vector<uint32_t> versions_;
  // Answers are reused only while every lead's origins are non-decreasing (as the forecaster
  // and the backtest add them), which makes a window a contiguous range of them.
  bool sorted_ = true;
  mutable std::vector<Answer> mae_answers_, interval_answers_;  // per lead, made on first use
  mutable std::vector<uint32_t> key_;
  mutable std::vector<double> scratch_;
};

}  // namespace mare::forecast
