#include "processors/forecast/series_forecaster.h"

#include <algorithm>
#include <cmath>

#include "processors/forecast/all_models.h"
#include "processors/forecast/holt_winters.h"
#include "processors/forecast/ridge.h"

namespace mare::forecast {

namespace {

int64_t FloorTo(int64_t v, int64_t step) {
  int64_t q = v / step;
  if (v % step < 0) --q;
  return q * step;
}

bool IsMidnight(int64_t hour) { return FloorTo(hour, 24) == hour; }

}  // namespace

SeriesForecaster::SeriesForecaster(const SeriesOptions& options)
    : options_(options), models_(AllModels()) {
  for (size_t m = 0; m < models_.size(); ++m) {
    if (models_[m]->name() == "holt_winters") holt_winters_ = m;
    if (models_[m]->name() == "ridge") ridge_ = m;
    if (models_[m]->name() == "local_ridge") local_ridge_ = m;
  }
  weighed_ = std::min(models_.size(), kEnsembleModels);
  // The books' readers: the intervals (the ensemble's book), the ensemble's weights and Skill().
  ResidualOptions residuals = options_.residuals;
  residuals.keep_days = std::max({residuals.interval_window_days, options_.ensemble.window_days,
                                   options_.selection.window_days, options_.skill_days}) + 2;
  books_.assign(models_.size() + 2, ResidualBook(options_.horizon, residuals));
  means_.assign(models_.size() + 2, std::vector<double>(static_cast<size_t>(options_.horizon), kMissing));
  at_lead_.resize(models_.size());
  weights_.resize(models_.size());
}

// The selected forecast's errors at an origin (its intervals) come from 00:00 origins of the
// last interval window, each selected by the ensemble's errors of the selection window before
// it, each ensemble weighted by the models' errors of the ensemble window before that; 3 days of
// margin.
int SeriesForecaster::reach_days() const {
  return options_.residuals.interval_window_days + options_.selection.window_days + options_.ensemble.window_days + 3;
}

// The latest refit origin before `origin`: the issue at a refit origin itself still runs the
// previous fit, so that the refit (which reads the hours before its origin, the one just closed
// among them) is made ahead, in the idle part of that hour (Prepare), not on any issue's path.
int64_t SeriesForecaster::HoltWintersFitOrigin(int64_t origin) const {
  return FloorTo(origin - 1 - options_.refit_phase, options_.refit_hours) + options_.refit_phase;
}

int SeriesForecaster::kept_days() const { return options_.history_days + reach_days() + 1; }

void SeriesForecaster::View(int64_t origin) {
  int64_t from = std::max(history_.first_hour, origin - 24 * static_cast<int64_t>(options_.history_days));
  int64_t to = std::min(origin, history_.end_hour());
  view_.first_hour = from;
  view_.values.clear();
  // history_ covers [first_hour, end_hour()), so [from, to) is a slice of it (or empty).
  if (to > from) {
    auto begin = history_.values.begin() + (from - history_.first_hour);
    view_.values.assign(begin, begin + (to - from));
  }
}

std::string_view SeriesForecaster::Compute(int64_t origin) {
  View(origin);
  ForecastInput input{.target = &view_, .covariates = {}};
  const size_t n = models_.size();
  const bool midnight = IsMidnight(origin);
  for (size_t m = 0; m < n; ++m) {
    std::vector<double>& out = means_[m];
    if ((m == ridge_ || m == local_ridge_) && !midnight) {  // fitted for one origin hour at a time: the day-ahead's
      std::fill(out.begin(), out.end(), kMissing);
      continue;
    }
    Status fit = Status::OK();
    if (m == holt_winters_) {
      // Fitted at the latest refit origin before this one (reading only hours before it), then
      // run on to origin.
      const int64_t at = HoltWintersFitOrigin(origin);
      if (holt_winters_fit_ != at) {
        HourlySeries before = view_;
        if (before.end_hour() > at) before.values.resize(static_cast<size_t>(std::max<int64_t>(0, at - before.first_hour)));
        ForecastInput fit_input{.target = &before, .covariates = {}};
        Status s = models_[m]->Fit(fit_input, at);
        (void)s;  // too little history: Forecast then says NaN
        holt_winters_fit_ = at;
      }
    } else {
      fit = models_[m]->Fit(input, origin);
    }
    if (fit.ok()) {
      models_[m]->Forecast(input, origin, out);
    } else {
      std::fill(out.begin(), out.end(), kMissing);
    }
  }
  std::vector<double>& ensemble = means_[n];
  for (int lead = 1; lead <= options_.horizon; ++lead) {
    for (size_t m = 0; m < n; ++m) at_lead_[m] = means_[m][static_cast<size_t>(lead - 1)];
    EnsembleWeights(std::span<const ResidualBook>(books_.data(), weighed_), std::span<const double>(at_lead_.data(), weighed_),
                    origin, lead, options_.ensemble, std::span<double>(weights_.data(), weighed_));
    double sum = 0, total = 0;
    for (size_t m = 0; m < weighed_; ++m) {
      if (weights_[m] > 0) {
        sum += weights_[m] * at_lead_[m];
        total += weights_[m];
      }
    }
    ensemble[static_cast<size_t>(lead - 1)] = total > 0 ? sum / total : kMissing;
  }
  // The ensemble blended with the local ridge at the weight selected on their day-ahead errors
  // of the last weeks; where the local ridge has no forecast (at any hour but 00:00), the
  // ensemble's.
  const double w = SelectedWeight(origin);
  std::vector<double>& selected = means_[n + 1];
  bool any = false;
  for (size_t i = 0; i < selected.size(); ++i) {
    double v = means_[local_ridge_][i];
    bool blend = !std::isnan(v) && w > 0;
    any |= blend;
    selected[i] = blend ? w * v + (1 - w) * ensemble[i] : ensemble[i];
  }
  return any ? std::string_view("ensemble+local_ridge") : std::string_view("ensemble");
}

double SeriesForecaster::SelectedWeight(int64_t origin) const {
  return SelectWeight(books_[models_.size()], books_[local_ridge_], origin, options_.selection);
}

bool SeriesForecaster::Close(int64_t hour, double value, ForecastIssue* issue) {
  if (last_closed_ != kNone && hour <= last_closed_) return false;
  const int64_t reach_from = hour + 1 - 24 * static_cast<int64_t>(reach_days());
  // 00:00 origins in a gap (no hour closed just before them) are origins all the same: their
  // errors judge the models like any other day's.
  if (last_closed_ != kNone) {
    int64_t first = std::max({last_closed_ + 2, reach_from, replay_from_});
    for (int64_t m = FloorTo(first + 23, 24); m <= hour; m += 24) {
      Compute(m);
      pending_.push_back({m, means_});
    }
  }
  if (last_closed_ == kNone) history_.first_hour = hour;
  history_.values.resize(static_cast<size_t>(hour - history_.first_hour), kMissing);
  history_.values.push_back(value);
  const size_t kept = static_cast<size_t>(kept_days()) * 24;
  if (history_.values.size() > kept + 30 * 24) {  // trimmed now and then, to exactly kept hours
    size_t drop = history_.values.size() - kept;
    history_.values.erase(history_.values.begin(), history_.values.begin() + static_cast<std::ptrdiff_t>(drop));
    history_.first_hour += static_cast<int64_t>(drop);
  }
  // The hour judges every pending 00:00 origin that forecast it.
  for (const Pending& p : pending_) {
    int64_t lead = hour - p.origin + 1;
    if (lead < 1 || lead > options_.horizon) continue;
    for (size_t m = 0; m < p.means.size(); ++m) {
      books_[m].Add(p.origin, static_cast<int>(lead), value - p.means[m][static_cast<size_t>(lead - 1)]);
    }
  }
  while (!pending_.empty() && pending_.front().origin + options_.horizon <= hour + 1) pending_.pop_front();
  last_closed_ = hour;

  const int64_t origin = hour + 1;
  const bool midnight = IsMidnight(origin);
  std::string_view selected = "ensemble";
  if (midnight && origin >= replay_from_) {
    selected = Compute(origin);
    pending_.push_back({origin, means_});
  } else if (issue != nullptr) {
    selected = Compute(origin);
  }
  if (issue == nullptr) return true;
  issue->origin = origin;
  issue->day_ahead = midnight;
  issue->model = selected;
  const size_t n = models_.size() + 1;  // the selected forecast's
  issue->mean = means_[n];
  issue->lower.assign(static_cast<size_t>(options_.horizon), kMissing);
  issue->upper.assign(static_cast<size_t>(options_.horizon), kMissing);
  for (int lead = 1; lead <= options_.horizon; ++lead) {
    size_t i = static_cast<size_t>(lead - 1);
    double lo = 0, hi = 0;
    if (!std::isnan(issue->mean[i]) && books_[n].Interval(origin, lead, &lo, &hi)) {
      issue->lower[i] = issue->mean[i] + lo;
      issue->upper[i] = issue->mean[i] + hi;
    }
  }
  return true;
}

bool SeriesForecaster::Prepare() {
  if (last_closed_ == kNone) return false;
  const int64_t origin = last_closed_ + 2;  // the issue after the next hour closes
  // The view at that origin, short of its last hour (not closed yet): what Compute will give
  // the models then, but for the hour only Holt–Winters' last step and the ridge's last lead read.
  View(origin);
  ForecastInput input{.target = &view_, .covariates = {}};
  // The next 00:00 issue's ridge: lead L's training rows read nothing after hour M - 25 + L, so
  // it is fitted once that hour has closed, a lead each hour through the day (spread, where
  // fitting its 23 leads at once after 22:00 with the local ridge's made that hour's work the
  // busiest). The local ridge's likeness is as of 23:00: its 23 leads once 22:00 has closed.
  const int64_t midnight = FloorTo(origin + 23, 24);
  const int ridge_leads = static_cast<int>(std::min<int64_t>(RidgeModel::kLeads - 1, last_closed_ - midnight + 25));
  if (ridge_leads >= 1) {
    if (midnight != origin) View(midnight);
    static_cast<RidgeModel&>(*models_[ridge_]).Prepare(input, midnight, ridge_leads);
    if (midnight != origin) View(origin);
  }
  if (IsMidnight(origin)) static_cast<RidgeModel&>(*models_[local_ridge_]).Prepare(input, origin, RidgeModel::kLeads - 1);
  // Holt–Winters' fit that issue runs (refitted now when due: its hours are all in, so the
  // issue need not), then its run over its window but the last hour.
  PrefitHoltWinters();
  static_cast<HoltWintersModel&>(*models_[holt_winters_]).Prepare(view_, origin);
  // The books' answers that issue will ask for (the models' MAE for the ensemble's weights, the
  // ensemble's intervals), from the errors in now: the next hour adds one lead's (and, at
  // 00:00, moves the windows on a day), so it recomputes the five leads pooled with it, and
  // reuses the rest as made here. After a restart (answers are not saved) or when 00:00 closes
  // next, that is every lead's. Answers are reused only when made from the very same errors.
  const size_t n = models_.size();
  for (int lead = 1; lead <= options_.horizon; ++lead) {
    for (size_t m = 0; m < weighed_; ++m) books_[m].RecentMae(origin, lead, options_.ensemble.window_days);
    double lo = 0, hi = 0;
    books_[n + 1].Interval(origin, lead, &lo, &hi);
  }
  return true;
}

void SeriesForecaster::Restore(const HourlySeries& history) {
  *this = SeriesForecaster(options_);
  if (history.values.empty()) return;
  // As if the hour before the kept ones had closed: 00:00 origins in a gap at the start are
  // computed as the first run computed them. Older origins than the errors read from now on
  // reach are not computed at all.
  last_closed_ = history.first_hour - 1;
  history_.first_hour = history.first_hour;
  replay_from_ = history.end_hour() - 24 * static_cast<int64_t>(reach_days());
  for (int64_t h = history.first_hour; h < history.end_hour(); ++h) {
    double v = history.At(h);
    if (!std::isnan(v)) Close(h, v, nullptr);
  }
  PrefitHoltWinters();
}

void SeriesForecaster::PrefitHoltWinters() {
  if (last_closed_ == kNone) return;
  // The issue when the next hour closes (origin last + 2) runs Holt–Winters fitted at the latest
  // refit origin before it, whose hours are all in: unless fitted there, fit it now, with what
  // Compute would give the fit (the view at that origin, cut at the refit origin). Compute then
  // finds it fitted. The fit reads the window_days (28) before the refit origin, inside the view for any
  // later origin refitting there too (history_days >= 30), so the values are the same either way.
  const int64_t origin = last_closed_ + 2;
  const int64_t at = HoltWintersFitOrigin(origin);
  if (holt_winters_fit_ == at) return;
  View(origin);
  HourlySeries before = view_;
  if (before.end_hour() > at) before.values.resize(static_cast<size_t>(std::max<int64_t>(0, at - before.first_hour)));
  ForecastInput fit_input{.target = &before, .covariates = {}};
  Status s = models_[holt_winters_]->Fit(fit_input, at);
  (void)s;  // too little history: Forecast then says NaN, as in Compute
  holt_winters_fit_ = at;
}

SeriesSkill SeriesForecaster::Skill(int days) const {
  SeriesSkill skill;
  skill.as_of = last_closed_ == kNone ? 0 : last_closed_ + 1;
  skill.days = days;
  skill.in_use = "ensemble";
  const size_t n = models_.size();
  std::vector<double> weight(n, 0.0);
  if (!pending_.empty()) {  // the latest day-ahead issue's weights and selection, as it computed them
    const Pending& latest = pending_.back();
    std::vector<double> at_lead(weighed_), w(weighed_);
    for (int lead = 1; lead <= options_.horizon; ++lead) {
      for (size_t m = 0; m < weighed_; ++m) at_lead[m] = latest.means[m][static_cast<size_t>(lead - 1)];
      EnsembleWeights(std::span<const ResidualBook>(books_.data(), weighed_), at_lead, latest.origin, lead, options_.ensemble, w);
      for (size_t m = 0; m < weighed_; ++m) weight[m] += w[m] / options_.horizon;
    }
    // Its errors are all of origins before it: the books answer as they did then.
    if (SelectedWeight(latest.origin) > 0) skill.in_use = "ensemble+local_ridge";
  }
  double persistence = kMissing, best_weight = 0;
  for (size_t m = 0; m <= n; ++m) {
    ModelSkill s;
    s.model = m < n ? std::string(models_[m]->name()) : "ensemble";
    s.mae = books_[m].MeanAbsError(skill.as_of, days, &s.hours);
    s.weight = m < weighed_ ? weight[m] : kMissing;
    if (s.model == "persistence") persistence = s.mae;
    if (m < n && weight[m] > best_weight) {
      best_weight = weight[m];
      skill.leading = s.model;
    }
    skill.models.push_back(std::move(s));
  }
  for (ModelSkill& s : skill.models) s.skill = persistence > 0 ? 1 - s.mae / persistence : kMissing;
  return skill;
}

HourlySeries SeriesForecaster::ModelHistory() const {
  // View() at origin o >= end_hour() reads from o - history_days on.
  const int64_t from = std::max(history_.first_hour, history_.end_hour() - 24 * static_cast<int64_t>(options_.history_days));
  HourlySeries out;
  out.first_hour = from;
  out.values.assign(history_.values.begin() + (from - history_.first_hour), history_.values.end());
  return out;
}

SeriesState SeriesForecaster::SaveState() const {
  SeriesState state;
  state.last_closed = last_closed_;
  state.replay_from = replay_from_;
  state.holt_winters_fit = holt_winters_fit_;
  const auto& hw = static_cast<const HoltWintersModel&>(*models_[holt_winters_]);
  state.holt_winters_fitted = hw.fitted();
  state.holt_winters = hw.params();
  // Issues from the next origin on read the models' errors over the ensemble's window, the
  // ensemble's over the interval's, and Skill() each over skill_days; one day of margin.
  const size_t n = models_.size();
  auto from = [&](int days) { return last_closed_ + 1 - 24 * static_cast<int64_t>(std::max(days, options_.skill_days) + 1); };
  // The ensemble's models over its window; the models outside it over the selection's.
  for (size_t m = 0; m < n; ++m) {
    state.errors.push_back(books_[m].Save(from(m < weighed_ ? options_.ensemble.window_days : options_.selection.window_days)));
  }
  // The ensemble's (the selection's incumbent) and the selected forecast's (the intervals).
  state.errors.push_back(books_[n].Save(from(std::max(options_.residuals.interval_window_days, options_.selection.window_days))));
  state.errors.push_back(books_[n + 1].Save(from(options_.residuals.interval_window_days)));
  for (const Pending& p : pending_) state.pending.push_back({p.origin, p.means});
  return state;
}

Status SeriesForecaster::RestoreState(const HourlySeries& history, const SeriesState& state) {
  const size_t books = models_.size() + 2;
  const size_t horizon = static_cast<size_t>(options_.horizon);
  if (history.values.empty() || state.last_closed != history.end_hour() - 1) {
    return Status::InvalidArgument("the state's last closed hour is not its history's");
  }
  // replay_from is set at a rebuild to an hour before the last one closed, and stays there; one
  // after it is damage, and Close would add to it.
  if (state.replay_from > state.last_closed + 1) {
    return Status::InvalidArgument("the state's replay hour is after its last closed hour");
  }
  if (state.errors.size() != books) return Status::InvalidArgument("the state has another set of models");
  for (const auto& by_lead : state.errors) {
    if (by_lead.size() != horizon) return Status::InvalidArgument("the state was made with another horizon");
  }
  // A pending origin is a 00:00 issue waiting for its hours: within a horizon before the next
  // hour (one whose hours are all in is let go at the next Close), ascending. Anything else (a
  // damaged file) would make Close's lead arithmetic meaningless, or overflow.
  const int64_t next = state.last_closed + 1;
  int64_t previous = next - options_.horizon - 1;
  for (const SeriesState::Pending& p : state.pending) {
    if (p.origin <= previous || p.origin > next) return Status::InvalidArgument("the state's pending issues are out of order or range");
    previous = p.origin;
    if (p.means.size() != books) return Status::InvalidArgument("the state has another set of models");
    for (const auto& m : p.means) {
      if (m.size() != horizon) return Status::InvalidArgument("the state was made with another horizon");
    }
  }
  *this = SeriesForecaster(options_);
  history_ = history;
  last_closed_ = state.last_closed;
  replay_from_ = state.replay_from;
  holt_winters_fit_ = state.holt_winters_fit;
  static_cast<HoltWintersModel&>(*models_[holt_winters_]).SetFit(state.holt_winters, state.holt_winters_fitted);
  for (size_t m = 0; m < books; ++m) books_[m].Load(state.errors[m]);
  for (const SeriesState::Pending& p : state.pending) pending_.push_back({p.origin, p.means});
  return Status::OK();
}

}  // namespace mare::forecast
