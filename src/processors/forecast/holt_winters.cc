#include "processors/forecast/holt_winters.h"

#include <algorithm>
#include <cmath>

#include "processors/forecast/nelder_mead.h"

namespace mare::forecast {

namespace {

int HourOfDay(int64_t hour) { return static_cast<int>(((hour % 24) + 24) % 24); }

double Squash(double u, double lo, double hi) { return lo + (hi - lo) / (1.0 + std::exp(-u)); }
double Unsquash(double v, double lo, double hi) {
  double t = (v - lo) / (hi - lo);
  return std::log(t / (1.0 - t));
}

// The bounds keep the recursion stable and the fit away from degenerate corners.
HoltWintersParams FromFree(const std::vector<double>& u) {
  return {Squash(u[0], 0.01, 0.99), Squash(u[1], 0.0, 0.3), Squash(u[2], 0.01, 0.99), Squash(u[3], 0.7, 0.98)};
}
std::vector<double> ToFree(const HoltWintersParams& p) {
  return {Unsquash(p.alpha, 0.01, 0.99), Unsquash(p.beta, 0.0, 0.3), Unsquash(p.gamma, 0.01, 0.99),
          Unsquash(p.phi, 0.7, 0.98)};
}

// The recursion over hours [from, to): the fits run it ~140 times a refit, so the state is in
// locals, the hour of the day counted instead of divided, the values read in place (NaN outside
// the series, as At says). The same operations in the same order as the plain recursion, however
// the hours are split between calls: the same bits.
inline void Advance(const HourlySeries& y, int64_t from, int64_t to, const HoltWintersParams& p, double* level,
                    double* trend_io, std::array<double, 24>* seasons, double* sse) {
  double lvl = *level, trend = *trend_io;
  const double* values = y.values.data();
  const int64_t first = y.first_hour, end = y.end_hour();
  int hour = HourOfDay(from);
  double total = *sse;
  for (int64_t t = from; t < to; ++t, hour = hour == 23 ? 0 : hour + 1) {
    double& season = (*seasons)[hour];
    double predicted = lvl + p.phi * trend + season;
    double v = t >= first && t < end ? values[t - first] : kMissing;
    if (std::isnan(v)) {  // a gap: the state runs on as forecast
      lvl += p.phi * trend;
      trend *= p.phi;
      continue;
    }
    double error = v - predicted;
    total += error * error;
    double level_before = lvl;
    lvl = p.alpha * (v - season) + (1 - p.alpha) * (lvl + p.phi * trend);
    trend = p.beta * (lvl - level_before) + (1 - p.beta) * p.phi * trend;
    season = p.gamma * (v - lvl) + (1 - p.gamma) * season;
  }
  *level = lvl;
  *trend_io = trend;
  *sse = total;
}

}  // namespace

bool HoltWintersModel::Start(const HourlySeries& y, int64_t origin, int64_t* start_out, State* s) const {
  int64_t start = origin - 24 * static_cast<int64_t>(window_days_);
  if (start < y.first_hour) start = y.first_hour;
  if (origin - start < 72) return false;
  // Start: the level is the mean of the first two days, each hour's offset its mean deviation.
  double level = y.MeanOver(start, start + 48, 24);
  if (std::isnan(level)) return false;
  std::array<double, 24> sum{};
  std::array<int, 24> count{};
  for (int64_t t = start; t < start + 48; ++t) {
    double v = y.At(t);
    if (std::isnan(v)) continue;
    sum[HourOfDay(t)] += v - level;
    ++count[HourOfDay(t)];
  }
  for (int i = 0; i < 24; ++i) s->season[i] = count[i] > 0 ? sum[i] / count[i] : 0.0;
  s->level = level;
  s->trend = 0;
  *start_out = start;
  return true;
}

bool HoltWintersModel::Run(const HourlySeries& y, int64_t origin, const HoltWintersParams& p, State* s,
                           double* sse) const {
  int64_t start = 0;
  if (!Start(y, origin, &start, s)) return false;
  *sse = 0;
  Advance(y, start + 48, origin, p, &s->level, &s->trend, &s->season, sse);
  return true;
}

void HoltWintersModel::Prepare(const HourlySeries& y, int64_t origin) {
  ahead_.origin = kNoOrigin;
  if (!fitted_ || !Start(y, origin, &ahead_.start, &ahead_.state)) return;
  double sse = 0;
  Advance(y, ahead_.start + 48, origin - 1, params_, &ahead_.state.level, &ahead_.state.trend, &ahead_.state.season, &sse);
  ahead_.origin = origin;
}

Status HoltWintersModel::Fit(const ForecastInput& input, int64_t origin) {
  const HourlySeries& y = *input.target;
  fitted_ = false;
  ahead_.origin = kNoOrigin;
  // Every run of the fit starts from the same state (Start reads the window's first two days
  // alone): made once, each run then only advances it, as Run would.
  int64_t start = 0;
  State first;
  if (!Start(y, origin, &start, &first)) return Status::InvalidArgument("holt_winters: too little history");
  auto run = [&](const HoltWintersParams& p) {
    State s = first;
    double e = 0;
    Advance(y, start + 48, origin, p, &s.level, &s.trend, &s.season, &e);
    return e;
  };
  auto objective = [&](const std::vector<double>& u) { return run(FromFree(u)); };
  // A coarse grid finds the basin; Nelder–Mead polishes it.
  HoltWintersParams best = params_;
  double best_sse = HUGE_VAL;
  for (double alpha : {0.1, 0.4, 0.8}) {
    for (double gamma : {0.05, 0.2, 0.5}) {
      for (double beta : {0.01, 0.1}) {
        HoltWintersParams p{alpha, beta, gamma, 0.9};
        double e = run(p);
        if (e < best_sse) {
          best_sse = e;
          best = p;
        }
      }
    }
  }
  NelderMeadOptions options;
  options.initial_step = 0.5;
  options.max_evaluations = 120;
  NelderMeadResult r = MinimizeNelderMead(objective, ToFree(best), options);
  params_ = r.value < best_sse ? FromFree(r.x) : best;
  fitted_ = true;
  return Status::OK();
}

void HoltWintersModel::Forecast(const ForecastInput& input, int64_t origin, std::span<double> means) const {
  State s;
  double sse = 0;
  // Prepare's run, when it was for this origin and window: only the last hour is left.
  const int64_t start = std::max(origin - 24 * static_cast<int64_t>(window_days_), input.target->first_hour);
  if (fitted_ && ahead_.origin == origin && ahead_.start == start) {
    s = ahead_.state;
    Advance(*input.target, origin - 1, origin, params_, &s.level, &s.trend, &s.season, &sse);
  } else if (!fitted_ || !Run(*input.target, origin, params_, &s, &sse)) {
    std::fill(means.begin(), means.end(), kMissing);
    return;
  }
  double damped = 0, power = 1;
  for (size_t i = 0; i < means.size(); ++i) {
    power *= params_.phi;
    damped += power;
    int64_t hour = origin + static_cast<int64_t>(i);
    means[i] = s.level + damped * s.trend + s.season[HourOfDay(hour)];
  }
}

}  // namespace mare::forecast
