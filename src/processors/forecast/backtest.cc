#include "processors/forecast/backtest.h"

#include <chrono>
#include <algorithm>
#include <cmath>

#include "processors/forecast/all_models.h"
#include "processors/forecast/selection.h"

namespace mare::forecast {

namespace {

struct Tally {
  double abs = 0, sq = 0, sum = 0;
  int64_t n = 0, fallback = 0, interval_n = 0, covered = 0;
  double seconds = 0;
  void Add(double error) {
    abs += std::fabs(error);
    sq += error * error;
    sum += error;
    ++n;
  }
};

double Seconds(std::chrono::steady_clock::time_point since) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - since).count();
}

}  // namespace

Result<BacktestReport> RunBacktest(const ForecastInput& input, const BacktestOptions& options) {
  if (input.target == nullptr || input.target->values.empty()) return Status::InvalidArgument("empty series");
  const HourlySeries& y = *input.target;
  const int horizon = options.horizon;
  auto start = std::chrono::steady_clock::now();
  std::vector<std::unique_ptr<ForecastModel>> models = AllModels();
  const size_t n = models.size();  // the ensemble is index n, the selected forecast n + 1
  const size_t weighed = std::min(n, kEnsembleModels);
  std::vector<ResidualBook> books(n + 2, ResidualBook(horizon, options.residuals));
  std::vector<Tally> tally(n + 2);
  const size_t challenger = weighed < n ? weighed : n;  // the model outside the ensemble (the local ridge)

  int64_t first_day = (y.first_hour + 24 * options.min_history_days + 23) / 24;
  int64_t end_day = (y.end_hour() + 23) / 24;
  if (first_day >= end_day) return Status::InvalidArgument("series too short: fewer days than min_history_days + 1");
  BacktestReport report;
  report.first_origin = first_day * 24;

  std::vector<std::vector<double>> means(n + 2, std::vector<double>(horizon));
  std::vector<double> at_lead(n), weights(n);
  for (int64_t day = first_day; day < end_day; ++day) {
    const int64_t origin = day * 24;
    for (size_t m = 0; m < n; ++m) {
      auto t0 = std::chrono::steady_clock::now();
      Status fit = models[m]->Fit(input, origin);
      if (fit.ok()) {
        models[m]->Forecast(input, origin, means[m]);
      } else {
        std::fill(means[m].begin(), means[m].end(), kMissing);
      }
      tally[m].seconds += Seconds(t0);
    }
    auto t0 = std::chrono::steady_clock::now();
    for (int lead = 1; lead <= horizon; ++lead) {
      for (size_t m = 0; m < n; ++m) at_lead[m] = means[m][lead - 1];
      EnsembleWeights(std::span<const ResidualBook>(books.data(), weighed), std::span<const double>(at_lead.data(), weighed),
                      origin, lead, options.ensemble, std::span<double>(weights.data(), weighed));
      double sum = 0, total = 0;
      for (size_t m = 0; m < weighed; ++m) {
        if (weights[m] > 0) {
          sum += weights[m] * at_lead[m];
          total += weights[m];
        }
      }
      means[n][lead - 1] = total > 0 ? sum / total : kMissing;
    }
    // The blend of the ensemble and the model outside it at the selected weight, where the model
    // has a forecast; else the ensemble's.
    const double w = challenger < n ? SelectWeight(books[n], books[challenger], origin, options.selection) : 0.0;
    for (int lead = 1; lead <= horizon; ++lead) {
      double e = means[n][lead - 1], v = challenger < n ? means[challenger][lead - 1] : kMissing;
      means[n + 1][lead - 1] = std::isnan(v) || w == 0 ? e : w * v + (1 - w) * e;
    }
    report.weight_days[w] += 1;
    tally[n].seconds += Seconds(t0);

    bool judged = false;
    for (int lead = 1; lead <= horizon; ++lead) {
      double actual = y.At(origin + lead - 1);
      double ensemble = means[n][lead - 1];
      if (std::isnan(actual) || std::isnan(ensemble)) continue;  // nothing to judge, or nobody forecast
      judged = true;
      for (size_t m = 0; m <= n + 1; ++m) {
        double forecast = means[m][lead - 1];
        Tally& t = tally[m];
        double lower = 0, upper = 0;
        if (std::isnan(forecast)) {
          ++t.fallback;
          t.Add(ensemble - actual);
          continue;
        }
        if (books[m].Interval(origin, lead, &lower, &upper)) {
          ++t.interval_n;
          t.covered += actual >= forecast + lower && actual <= forecast + upper;
        }
        t.Add(forecast - actual);
      }
    }
    // Only now, with the day judged, do its errors join the books: the next origin's past.
    for (int lead = 1; lead <= horizon; ++lead) {
      double actual = y.At(origin + lead - 1);
      if (std::isnan(actual)) continue;
      for (size_t m = 0; m <= n + 1; ++m) books[m].Add(origin, lead, actual - means[m][lead - 1]);
    }
    report.days += judged;
    if (options.progress) options.progress(day - first_day + 1, end_day - first_day);
  }

  double persistence_mae = 0, best_naive_mae = HUGE_VAL;
  for (size_t m = 0; m <= n + 1; ++m) {
    ModelScore s;
    s.model = m < n ? std::string(models[m]->name()) : m == n ? "ensemble" : "selected";
    const Tally& t = tally[m];
    s.hours = t.n;
    s.fallback_hours = t.fallback;
    if (t.n > 0) {
      s.mae = t.abs / t.n;
      s.rmse = std::sqrt(t.sq / t.n);
      s.bias = t.sum / t.n;
    }
    s.interval_hours = t.interval_n;
    s.coverage = t.interval_n > 0 ? static_cast<double>(t.covered) / t.interval_n : kMissing;
    s.seconds = t.seconds;
    if (s.model == "persistence") persistence_mae = s.mae;
    if (IsNaiveModel(s.model) && s.mae < best_naive_mae) {
      best_naive_mae = s.mae;
      report.best_naive = s.model;
    }
    report.models.push_back(std::move(s));
  }
  for (ModelScore& s : report.models) {
    s.skill_persistence = persistence_mae > 0 ? 1 - s.mae / persistence_mae : kMissing;
    s.skill_best_naive = best_naive_mae > 0 && std::isfinite(best_naive_mae) ? 1 - s.mae / best_naive_mae : kMissing;
  }
  report.seconds = Seconds(start);
  return report;
}

}  // namespace mare::forecast
