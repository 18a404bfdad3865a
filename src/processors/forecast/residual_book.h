// A model's out-of-sample errors on one series, by lead: what its 80 % prediction intervals
// (empirical quantiles, so calibrated by construction) and its recent skill (rolling MAE, which
// the ensemble weighs by) are made of. Errors come in only once their hour is observed, so they
// are never in-sample.
//
//   book.Add(origin, lead, actual - forecast);   // when hour origin + lead - 1 is observed
//   book.Interval(next_origin, lead, &lo, &hi);  // forecast + [lo, hi] covers ~80 %
#pragma once

#include <cmath>
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

// Origins are 00:00 UTC hours (hours since the epoch, multiples of 24: the day-ahead issues the
// forecaster and the backtest judge), one error per origin and lead; an error of another origin
// is not kept (Add and Load ignore it), and a second one of the same origin and lead replaces
// the first.
class ResidualBook {
 public:
  static constexpr int64_t kOriginStep = 24;

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

  // The MAE of a blend, w times this book's model and 1 - w the other's, over every lead of
  // origins in the last `days` days before origin where both have an error (an error is actual
  // minus forecast, so the blend's is w e + (1 - w) e_other); NaN when there is none. *count:
  // how many such pairs.
  double BlendMae(const ResidualBook& other, double w, int64_t origin, int days, int64_t* count) const;

  using Errors = std::vector<std::pair<int64_t, double>>;  // (origin, error), oldest first
  // Per lead, the errors of origins >= from: all that reads at origins o with o − window >= from see.
  std::vector<Errors> Save(int64_t from) const;
  // Replaces the errors with saved ones (one entry per lead; extra leads are dropped, and errors
  // older than keep_days before the newest, as Add would have dropped them).
  void Load(const std::vector<Errors>& by_lead);

  // The bytes its errors take on the heap: 8 a lead and day, from its oldest error's day to its
  // newest's (at most keep_days + 1 of them), none before the first.
  size_t ErrorBytes() const { return errors_.capacity() * sizeof(double); }

 private:
  // What RecentMae and Interval last answered for a lead, and what from: the forecaster asks
  // every hour, but a lead's pooled errors change only when one of its leads gets an error
  // (one lead a day's hour) or the days kept move on (once a day), so most answers repeat.
  struct Answer {
    int days = -1;               // the window it was computed over; -1: none yet
    int64_t first = 0, end = 0;  // the window's days [first, end)
    int64_t kept_from = 0;       // the first of them kept when it was computed
    uint64_t stamp = 0;          // stamp_ when it was computed
    bool ok = false;
    double a = 0, b = 0;         // RecentMae: the MAE; Interval: lower, upper
  };
  int span() const { return keep_days_ + 1; }  // days kept at most: the newest and keep_days before it
  // The days whose origins are in [origin - 24 days, origin): [*first, *end).
  void Days(int64_t origin, int days, int64_t* first, int64_t* end) const;
  void Kept(int64_t* first, int64_t* end) const;  // [*first, *end) cut to the days kept
  const double* Lead(int lead) const { return errors_.data() + static_cast<size_t>(lead - 1) * static_cast<size_t>(days_); }
  size_t Slot(int64_t day) const;  // a day's place in each lead's ring
  // f(error) for each error of a lead's days [first, end), newest first: the order the sums
  // have always been made in (the same bits).
  template <typename F>
  void NewestFirst(const double* errors, int64_t first, int64_t end, F f) const {
    if (end <= first) return;
    const size_t last = static_cast<size_t>(days_) - 1;
    size_t slot = Slot(end - 1);
    for (int64_t d = end - 1; d >= first; --d, slot = slot == 0 ? last : slot - 1) {
      if (!std::isnan(errors[slot])) f(errors[slot]);  // NaN: a day without an error
    }
  }
  // Whether `answer` was computed from the very errors it would read now; else makes it theirs
  // (ok false), to be filled.
  bool Reuse(Answer* answer, int64_t origin, int lead, int days) const;
  void Collect(int64_t origin, int lead, int days, std::vector<double>* out) const;
  void Place(int64_t origin, int lead, double error);  // Add without the checks
  void MoveTo(int64_t day);                            // day becomes the newest: older ones leave
  void Grow(int days);                                 // the rings hold `days` days, the same errors

  ResidualOptions options_;
  int leads_;
  int keep_days_;
  // Per lead, a ring of days_ days (the origin of an error given by its place: 8 bytes a day
  // and lead, where (origin, error) pairs took 16), NaN where a day has no error. Empty until the
  // first error, then one day, growing by the days its errors span up to span(): a forecaster
  // holds leads x models of them for every series it has seen, and a whole window's worth each
  // at the first error was 11 KB a book, 680 MB at once for 10,000 series (bench/longrun.py).
  std::vector<double> errors_;
  int days_ = 0;        // days in each ring: the newest_ and days_ - 1 before it
  int64_t newest_ = 0;  // the newest day kept (origin / 24), while errors_ is not empty
  int64_t oldest_ = 0;  // no error is of a day before it (>= newest_ - days_ + 1)
  // Per lead, stamp_ at its last change: an Answer computed at a later stamp over the same days
  // read the very same errors in the same order, so it is reused bit for bit.
  std::vector<uint64_t> changed_;
  uint64_t stamp_ = 0;
  mutable std::vector<Answer> mae_answers_, interval_answers_;  // per lead, made on first use
};

}  // namespace mare::forecast
