// Ridge regression on lagged values and calendar terms: one linear model per lead, fitted on
// the same hour of the day's origins over the last two years, so that each lead learns its own mix of
// "last value" (strong over water) and "yesterday's same hour" (strong on land). May use the
// sensor's other fields (ForecastInput::covariates: dew point, water temperature, pressure) and
// classes (ForecastInput::categories: the wind's direction class).
#pragma once

#include <Eigen/Dense>
#include <string_view>
#include <vector>

#include "processors/forecast/model.h"

namespace mare::forecast {

struct RidgeOptions {
  int window_days = 730;        // training origins: the same hour of day, this many days back
  int min_samples = 14;         // fewer for a lead: that lead is not forecast (NaN)
  double lambda = 2.0;          // L2 penalty on the standardized features
  int robust_iterations = 6;    // reweightings towards least absolute deviations (0: least squares)
  // Training origins weigh exp(-d² / 2 season_days²) by their distance d in days of the year to
  // the origin's (0: all alike): how the day ahead follows from today changes with the season
  // (a land station's daily cycle and its fronts), and two years hold both seasons.
  double season_days = 60;
  // A local fit (0: off): each training origin also weighs exp(-d² / 2 likeness_bandwidth²),
  // d² the mean squared difference, in training standard deviations, of its likeness features
  // (the origin features but the last value: the 24 h mean and range, the 3 h tendency, the
  // season, per covariate its 24 h change and its difference to the target, per category its
  // share) to the forecast origin's: a cold front's day learns from other fronts' days. They
  // are taken as of likeness_lag hours before each origin (1: the hours before 23:00, which a
  // day-ahead issue has once 22:00 has closed, so that Prepare computes them off its path).
  double likeness_bandwidth = 0;
  int likeness_lag = 1;
  // Analogs (0: none): the median change at each lead of the `analogs` training days most alike
  // by that distance (of origins two days back or more, so that every lead of theirs is before
  // the lag), blended in at analog_share of the forecast.
  int analogs = 0;
  double analog_share = 0;
  std::string_view name = "ridge";
};

// It predicts the change from the last value, so that the penalty shrinks towards "the last
// value plus the lead's mean change" (the daily cycle as seen from the origin's hour), not
// towards the series' mean. Features for hour t forecast from origin o (a missing one is
// imputed by its training mean): the last value; yesterday's same hour, the last 24 h mean and
// the 7-day mean at t's hour, each minus the last value; the 3 h tendency; the last 24 h's range
// (max - min: the daily cycle's amplitude, small under cloud); the season (day-of-year
// harmonics); per covariate its last value, its last 24 h mean, its 24 h change and its last value minus
// the target's; per category
// its share of the last 6 hours.
// The hour of the day needs no term: each (origin hour, lead) pair has its own model and
// intercept.
class RidgeModel : public ForecastModel {
 public:
  explicit RidgeModel(RidgeOptions options = {}) : options_(options) {}
  std::string_view name() const override { return options_.name; }
  Status Fit(const ForecastInput& input, int64_t origin) override;
  void Forecast(const ForecastInput& input, int64_t origin, std::span<double> means) const override;

  // Fits leads 1..last_lead for `origin` ahead of time, from an input that need hold only the
  // hours before origin - (24 - last_lead): lead L's training rows read nothing later (its
  // newest row's target is hour origin - 25 + L). The next Fit at that origin then fits only the
  // other leads: the same models, bit for bit, as one Fit with every hour in (a day-ahead
  // issue's ridge is fitted in the hour before 23:00 closes, off its path). Any other Fit
  // drops what was prepared. Called again for the same origin with a later last_lead, it fits
  // only the leads after those prepared (a lead at a time as the day's hours close).
  void Prepare(const ForecastInput& input, int64_t origin, int last_lead);
  static constexpr int kLeads = 24;  // leads fitted: the day-ahead horizon

  // The features of hour origin + lead from origin; out has FeatureCount(input) entries.
  static size_t FeatureCount(const ForecastInput& input);
  static void Features(const ForecastInput& input, int64_t origin, int lead, double* out);

 private:
  struct Lead {
    bool fitted = false;
    Eigen::VectorXd mean, scale, weights;
    double intercept = 0;
    double analog = 0;  // the analogs' median change (NaN: none); used when analog_share > 0
  };
  void FitLeads(const ForecastInput& input, int64_t origin, int first_lead, int last_lead);
  // Features splits in two: what depends on the origin alone (out[0], the last value, first),
  // shared by every lead's training row of that origin, and then what depends on the lead.
  static void OriginFeatures(const ForecastInput& input, int64_t origin, double* out);
  static void LeadFeatures(const ForecastInput& input, int64_t origin, int lead, double* out);
  // The local weights and the analogs' ranking for a fit at origin over days_back training
  // origins (k days back: entry k - 1): likeness[k - 1] multiplies the prior, ranked lists the
  // days by distance (nearest first, ties by k).
  void Likeness(const ForecastInput& input, int64_t origin, int days_back, Eigen::VectorXd* likeness,
                std::vector<int>* ranked) const;

  RidgeOptions options_;
  std::vector<Lead> leads_;
  int64_t fitted_origin_hour_ = -1;  // hour of day of the origin the models were fitted for
  int64_t prepared_origin_ = -1;     // Prepare fitted leads 1..prepared_leads_ for it
  int prepared_leads_ = 0;
};

}  // namespace mare::forecast
