// SeriesForecaster: the forecast processor's state for one series (a sensor's field): its
// closed hours, its models and their out-of-sample errors. Each time an hour closes it issues
// the forecast of the next hours with 80 % intervals (the ensemble); at 00:00 UTC that is the
// day-ahead forecast.
//
//   SeriesForecaster s(options);
//   ForecastIssue issue;
//   if (s.Close(hour, mean, &issue)) Publish(issue);   // issue.origin == hour + 1
//
// What it issues at an origin is a function of the series' closed hours alone, never of when
// or in which order they were read: a restart that replays the kept history (Restore) goes on
// issuing exactly what the first run would have (docs/formats/forecasts.md says why).
#pragma once

#include <cstdint>
#include <deque>
#include <limits>
#include <memory>
#include <string_view>
#include <vector>

#include "processors/forecast/ensemble.h"
#include "processors/forecast/hourly_series.h"
#include "processors/forecast/model.h"
#include "processors/forecast/model_skill.h"
#include "processors/forecast/residual_book.h"
#include "processors/forecast/selection.h"
#include "processors/forecast/series_state.h"

namespace mare::forecast {

struct SeriesOptions {
  int horizon = 24;         // hours forecast by each issue, 1..168
  int history_days = 90;    // every model at origin o reads only the hours [o - history_days, o)
  int refit_hours = 24;     // Holt–Winters is refitted every this many hours (divides 24) ...
  int refit_phase = 0;      // ... at origins ≡ refit_phase (mod refit_hours): series spread their refits
  int skill_days = 30;      // the longest Skill() asked for: SaveState keeps the errors it reads
  ResidualOptions residuals;
  EnsembleOptions ensemble;
  SelectionOptions selection;  // its window_days at most the ensemble's (what SaveState keeps)
};

struct ForecastIssue {
  int64_t origin = 0;      // the first forecast hour (hours since the epoch): the hour after the one that closed
  bool day_ahead = false;  // origin is 00:00 UTC: the coming UTC day's forecast
  std::vector<double> mean, lower, upper;  // [lead - 1] for hour origin + lead - 1; NaN where none
  // What was issued (selection.h): "ensemble", or "ensemble+local_ridge" (blended at the weight selected)
  std::string_view model = "ensemble";
};

class SeriesForecaster {
 public:
  static constexpr int64_t kNone = std::numeric_limits<int64_t>::min();

  explicit SeriesForecaster(const SeriesOptions& options);

  // Hour `hour` closed with the value `value`. False, and nothing changes, when it is not after
  // the last closed hour (a closed hour is never revised). With issue, fills the forecast
  // issued at origin hour + 1.
  bool Close(int64_t hour, double value, ForecastIssue* issue);

  // Does now what the next issue will need and the hours closed so far already fix, so that
  // its own Close has less to do: the residual books' answers for its origin, Holt–Winters'
  // run over its window but the last hour (HoltWintersModel::Prepare, unless that issue refits),
  // and when the next hour to close is 23:00 UTC, the 00:00 issue's ridge fit but its last lead
  // (RidgeModel::Prepare). What is issued does not change: Close without it issues the same,
  // bit for bit. True when there was something to do (an hour has closed).
  bool Prepare();

  int64_t last_closed() const { return last_closed_; }
  // The kept hours, up to the last closed one: what Restore rebuilds the models from.
  const HourlySeries& history() const { return history_; }
  // Its last history_days days: all the models read from the next origin on, so all that
  // RestoreState needs besides SaveState's state (what a checkpoint holds).
  HourlySeries ModelHistory() const;
  // The state Close would have built over `history` (as history() gave it), issuing nothing.
  void Restore(const HourlySeries& history);
  // Days of history kept: history_days and what the errors of the last weeks were made from.
  int kept_days() const;

  // Each model's MAE over the day-ahead issues of the last `days` days, its skill against
  // persistence and its weight in the latest day-ahead ensemble.
  SeriesSkill Skill(int days) const;

  // What it learnt beyond its hours, for a checkpoint: with the same history given back to
  // RestoreState, a forecaster issues from then on exactly what this one would.
  SeriesState SaveState() const;
  // This forecaster as SaveState left the one that saved it, given its history(): no replay.
  // InvalidArgument (nothing changed) when the state does not fit these options (another
  // horizon, another set of models) or the history: then Restore(history) rebuilds it.
  Status RestoreState(const HourlySeries& history, const SeriesState& state);

 private:
  // Every model's forecast from origin, then the ensemble's, then the selected one's (what is
  // issued), into means_; the ridges (fitted per origin hour) only at 00:00 UTC origins.
  // Returns the selected candidate's name.
  std::string_view Compute(int64_t origin);
  // The local ridge's weight against the ensemble in what the issue at origin issues, from the
  // books' errors of the origins before it (selection.h).
  double SelectedWeight(int64_t origin) const;
  void View(int64_t origin);  // view_ = the hours [origin - history_days, origin)
  // The Holt–Winters refit the next issue would make, if not made yet (its hours are always in):
  // at the end of Restore, so that a rebuild does not leave ~all series to refit in the same
  // next hour, and in Prepare, so that no issue waits for a refit.
  void PrefitHoltWinters();
  int reach_days() const;     // how far back the errors read at an origin were made
  int64_t HoltWintersFitOrigin(int64_t origin) const;  // the refit an issue at origin runs

  struct Pending {  // a 00:00 UTC origin whose hours are not all observed yet
    int64_t origin;
    std::vector<std::vector<double>> means;  // [model][lead - 1], then the ensemble, the selected
  };

  SeriesOptions options_;
  HourlySeries history_;
  int64_t last_closed_ = kNone;
  int64_t replay_from_ = kNone;  // while restoring: 00:00 origins before it are not computed
  std::vector<std::unique_ptr<ForecastModel>> models_;
  size_t holt_winters_ = 0, ridge_ = 0, local_ridge_ = 0;  // their indices in models_
  size_t weighed_ = 0;                   // the ensemble weighs models_[0, weighed_)
  int64_t holt_winters_fit_ = kNone;     // the origin Holt–Winters was last fitted at
  // Per model, then the ensemble's, then the selected forecast's (its intervals): errors of
  // 00:00 origins.
  std::vector<ResidualBook> books_;
  std::deque<Pending> pending_;
  HourlySeries view_;
  std::vector<std::vector<double>> means_;
  std::vector<double> at_lead_, weights_;
};

}  // namespace mare::forecast
