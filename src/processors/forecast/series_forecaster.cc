#include "processors/forecast/series_forecaster.h"

#include <algorithm>
#include <cmath>

#include "processors/forecast/all_models.h"

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
  }
  books_.assign(models_.size() + 1, ResidualBook(options_.horizon, options_.residuals));
  means_.assign(models_.size() + 1, std::vector<double>(static_cast<size_t>(options_.horizon), kMissing));
  at_lead_.resize(models_.size());
  weights_.resize(models_.size());
}

// The ensemble's errors at an origin come from 00:00 origins of the last interval window, each
// weighted by the models' errors of the ensemble window before it; 3 days of margin.
int SeriesForecaster::reach_days() const {
  return options_.residuals.interval_window_days + options_.ensemble.window_days + 3;
}

int SeriesForecaster::kept_days() const { return options_.history_days + reach_days() + 1; }

void SeriesForecaster::View(int64_t origin) {
  int64_t from = std::max(history_.first_hour, origin - 24 * static_cast<int64_t>(options_.history_days));
  int64_t to = std::min(origin, history_.end_hour());
  view_.first_hour = from;
  view_.values.clear();
  for (int64_t h = from; h < to; ++h) view_.values.push_back(history_.At(h));
}

void SeriesForecaster::Compute(int64_t origin) {
  View(origin);
  ForecastInput input{.target = &view_, .covariates = {}};
  const size_t n = models_.size();
  const bool midnight = IsMidnight(origin);
  for (size_t m = 0; m < n; ++m) {
    std::vector<double>& out = means_[m];
    if (m == ridge_ && !midnight) {  // fitted for one origin hour at a time: the day-ahead's
      std::fill(out.begin(), out.end(), kMissing);
      continue;
    }
    Status fit = Status::OK();
    if (m == holt_winters_) {
      // Fitted at the latest refit origin (reading only hours before it), then run on to origin.
      int64_t at = FloorTo(origin - options_.refit_phase, options_.refit_hours) + options_.refit_phase;
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
    EnsembleWeights(std::span<const ResidualBook>(books_.data(), n), at_lead_, origin, lead, options_.ensemble,
                    weights_);
    double sum = 0, total = 0;
    for (size_t m = 0; m < n; ++m) {
      if (weights_[m] > 0) {
        sum += weights_[m] * at_lead_[m];
        total += weights_[m];
      }
    }
    ensemble[static_cast<size_t>(lead - 1)] = total > 0 ? sum / total : kMissing;
  }
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
  if (midnight && origin >= replay_from_) {
    Compute(origin);
    pending_.push_back({origin, means_});
  } else if (issue != nullptr) {
    Compute(origin);
  }
  if (issue == nullptr) return true;
  issue->origin = origin;
  issue->day_ahead = midnight;
  const size_t n = models_.size();
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
}

}  // namespace mare::forecast
