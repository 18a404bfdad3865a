#include "processors/forecast/ridge.h"

#include <algorithm>
#include <cmath>
#include <numbers>

#include "processors/forecast/climatology.h"

namespace mare::forecast {

namespace {

constexpr size_t kOwnFeatures = 8;
constexpr size_t kCovariateFeatures = 4;
constexpr double kDaysPerYear = 365.2425;

// max - min of the values in [from, to), NaN when fewer than min_count are present.
double RangeOver(const HourlySeries& y, int64_t from, int64_t to, int64_t min_count) {
  double lo = HUGE_VAL, hi = -HUGE_VAL;
  int64_t n = 0;
  for (int64_t h = from; h < to; ++h) {
    double v = y.At(h);
    if (std::isnan(v)) continue;
    lo = std::min(lo, v);
    hi = std::max(hi, v);
    ++n;
  }
  return n >= min_count && n > 0 ? hi - lo : kMissing;
}

}  // namespace

size_t RidgeModel::FeatureCount(const ForecastInput& input) {
  return kOwnFeatures + kCovariateFeatures * input.covariates.size() + input.categories.size();
}

void RidgeModel::Features(const ForecastInput& input, int64_t origin, int lead, double* out) {
  OriginFeatures(input, origin, out);
  LeadFeatures(input, origin, lead, out);
}

void RidgeModel::OriginFeatures(const ForecastInput& input, int64_t origin, double* out) {
  const HourlySeries& y = *input.target;
  const double last = LastValue(y, origin);
  out[0] = last;
  out[2] = y.MeanOver(origin - 24, origin, 12) - last;
  out[4] = y.At(origin - 1) - y.At(origin - 4);
  out[5] = RangeOver(y, origin - 24, origin, 12);
  double* c = out + kOwnFeatures;
  for (const HourlySeries* covariate : input.covariates) {
    c[0] = covariate->LastBefore(origin, 24);
    c[1] = covariate->MeanOver(origin - 24, origin, 12);
    c[2] = covariate->LastBefore(origin, 3) - covariate->At(origin - 25);
    // Its difference to the target's last value: the dew point depression (how dry the air is,
    // so how far the night cools), the sea's warmth under the air. Linear in the two, but the
    // penalty treats it as one feature (docs/forecast.md: Beijing's ridge MAE 1.987 without, 1.975 with,
    // in a numpy copy of this model).
    c[3] = c[0] - last;
    c += kCovariateFeatures;
  }
  // A class's share of the last 6 hours: the wind's direction now (its last value, 24 h mean
  // and 24 h change, as for a covariate, did worse on Beijing's: docs/forecast.md).
  for (const HourlySeries* category : input.categories) *c++ = category->MeanOver(origin - 6, origin, 3);
}

void RidgeModel::LeadFeatures(const ForecastInput& input, int64_t origin, int lead, double* out) {
  const HourlySeries& y = *input.target;
  int64_t t = origin + lead - 1;
  const double last = out[0];
  out[1] = y.At(t - 24 * ((lead - 1) / 24 + 1)) - last;
  out[3] = SameHourMean(y, origin, t, 7) - last;
  double angle = 2 * std::numbers::pi * static_cast<double>(t) / (24 * kDaysPerYear);
  out[6] = std::sin(angle);
  out[7] = std::cos(angle);
}

void RidgeModel::Likeness(const ForecastInput& input, int64_t origin, int days_back, Eigen::VectorXd* likeness,
                          std::vector<int>* ranked) const {
  const HourlySeries& y = *input.target;
  const size_t features = FeatureCount(input);
  // The columns compared: the origin's own features but the last value (a level, where the
  // likeness is of the weather's shape), the season; per covariate its 24 h change and its
  // difference to the target; every category's share.
  std::vector<size_t> cols = {2, 4, 5, 6, 7};
  for (size_t c = 0; c < input.covariates.size(); ++c) {
    cols.push_back(kOwnFeatures + kCovariateFeatures * c + 2);
    cols.push_back(kOwnFeatures + kCovariateFeatures * c + 3);
  }
  for (size_t c = 0; c < input.categories.size(); ++c) {
    cols.push_back(kOwnFeatures + kCovariateFeatures * input.covariates.size() + c);
  }
  const size_t q = cols.size();
  const int64_t lag = options_.likeness_lag;
  std::vector<double> row(features), here(q), z(static_cast<size_t>(days_back) * q);
  auto take = [&](int64_t o, double* out) {
    Features(input, o - lag, 1, row.data());
    for (size_t j = 0; j < q; ++j) out[j] = row[cols[j]];
  };
  take(origin, here.data());
  for (int k = 1; k <= days_back; ++k) take(origin - 24 * k, z.data() + static_cast<size_t>(k - 1) * q);
  // Standardized by the training origins' spread, so that no feature's unit weighs.
  std::vector<double> mean(q, 0.0), scale(q, 1.0);
  for (size_t j = 0; j < q; ++j) {
    double sum = 0, sum2 = 0;
    int present = 0;
    for (int k = 0; k < days_back; ++k) {
      double v = z[static_cast<size_t>(k) * q + j];
      if (std::isnan(v)) continue;
      sum += v;
      sum2 += v * v;
      ++present;
    }
    if (present == 0) continue;
    mean[j] = sum / present;
    double var = sum2 / present - mean[j] * mean[j];
    scale[j] = var >= 1e-18 ? std::sqrt(var) : 1.0;
  }
  std::vector<double> distance(static_cast<size_t>(days_back));
  likeness->resize(days_back);
  const double h = options_.likeness_bandwidth;
  for (int k = 0; k < days_back; ++k) {
    double d2 = 0;
    for (size_t j = 0; j < q; ++j) {
      double d = (z[static_cast<size_t>(k) * q + j] - here[j]) / scale[j];
      if (!std::isnan(d)) d2 += d * d;  // a missing feature: no difference
    }
    d2 /= static_cast<double>(q);
    distance[static_cast<size_t>(k)] = d2;
    (*likeness)(k) = h > 0 ? std::exp(-0.5 * d2 / (h * h)) : 1.0;
  }
  ranked->clear();
  if (options_.analogs <= 0) return;
  // Analogs: days two back or more (every lead's hour before origin - 24 - 1), with a last value
  // and some observed hour among their 24 leads.
  for (int k = 2; k <= days_back; ++k) {
    const int64_t o = origin - 24 * k;
    if (std::isnan(LastValue(y, o))) continue;
    bool any = false;
    for (int64_t t = o; t < o + kLeads && !any; ++t) any = !std::isnan(y.At(t));
    if (any) ranked->push_back(k - 1);
  }
  std::stable_sort(ranked->begin(), ranked->end(), [&](int a, int b) {
    return distance[static_cast<size_t>(a)] < distance[static_cast<size_t>(b)];
  });
  if (static_cast<int>(ranked->size()) > options_.analogs) ranked->resize(static_cast<size_t>(options_.analogs));
}

Status RidgeModel::Fit(const ForecastInput& input, int64_t origin) {
  int first_lead = 1;
  if (prepared_origin_ == origin && !leads_.empty()) {
    first_lead = prepared_leads_ + 1;  // the leads before were fitted by Prepare
  } else {
    leads_.assign(kLeads, Lead{});
  }
  prepared_origin_ = -1;
  fitted_origin_hour_ = ((origin % 24) + 24) % 24;
  FitLeads(input, origin, first_lead, kLeads);
  for (const Lead& lead : leads_) {
    if (lead.fitted) return Status::OK();
  }
  return Status::InvalidArgument("ridge: too little history");
}

void RidgeModel::Prepare(const ForecastInput& input, int64_t origin, int last_lead) {
  last_lead = std::clamp(last_lead, 0, kLeads);
  int first_lead = 1;
  if (prepared_origin_ == origin && !leads_.empty()) {
    if (last_lead <= prepared_leads_) return;  // prepared already
    first_lead = prepared_leads_ + 1;          // each lead's fit is its own: the same bits
  } else {
    leads_.assign(kLeads, Lead{});
  }
  fitted_origin_hour_ = -1;  // nothing to forecast with until Fit completes it
  FitLeads(input, origin, first_lead, last_lead);
  prepared_origin_ = origin;
  prepared_leads_ = last_lead;
}

void RidgeModel::FitLeads(const ForecastInput& input, int64_t origin, int first_lead, int last_lead) {
  const HourlySeries& y = *input.target;
  const size_t features = FeatureCount(input);
  std::vector<double> row(features);
  // Each training origin's weight by its distance in days of the year: season(k - 1) for the
  // origin k days back (k < first_k + window_days below).
  // Only the days the series has are weighed (the loop below stops at the first origin k days
  // back with o - 24 before the series).
  const int64_t held = std::max<int64_t>((origin - 24 - y.first_hour) / 24, 0);
  const int days_back = static_cast<int>(std::min<int64_t>(options_.window_days + (kLeads - 1) / 24, held));
  Eigen::VectorXd season(days_back);
  for (int k = 0; k < days_back; ++k) {
    double d = std::fmod(static_cast<double>(k + 1), kDaysPerYear);
    d = std::min(d, kDaysPerYear - d);
    season(k) = options_.season_days > 0 ? std::exp(-0.5 * (d / options_.season_days) * (d / options_.season_days)) : 1.0;
  }
  std::vector<int> ranked;
  if (options_.likeness_bandwidth > 0 || options_.analogs > 0) {
    Eigen::VectorXd likeness;
    Likeness(input, origin, days_back, &likeness, &ranked);
    season.array() *= likeness.array();
  }
  std::vector<double> changes;
  // The features that depend on the training origin alone (the last value, the 24 h mean and
  // range, the covariates, ...) are the same for every lead: computed once per origin, on first
  // use (row k - 1 for the origin k days back), and only the lead's own copied in.
  // Scratch of this fit, not members: a processor holds a model per series.
  std::vector<double> origin_rows(static_cast<size_t>(days_back) * features);
  std::vector<char> origin_done(static_cast<size_t>(days_back), 0);
  Eigen::MatrixXd x(options_.window_days, static_cast<Eigen::Index>(features)), a;
  Eigen::VectorXd target(options_.window_days), prior(options_.window_days);
  Eigen::MatrixXd aw, gram;
  for (int lead = first_lead; lead <= last_lead; ++lead) {
    // Training origins o - 24k whose target hour is before the origin: only the past is read.
    int64_t first_k = (lead - 1) / 24 + 1;
    int n = 0;
    for (int64_t k = first_k; k < first_k + options_.window_days; ++k) {
      int64_t o = origin - 24 * k;
      if (o - 24 < y.first_hour) break;
      double v = y.At(o + lead - 1);
      if (std::isnan(v)) continue;
      double* shared = origin_rows.data() + static_cast<size_t>(k - 1) * features;
      if (!origin_done[static_cast<size_t>(k - 1)]) {
        OriginFeatures(input, o, shared);
        origin_done[static_cast<size_t>(k - 1)] = 1;
      }
      if (std::isnan(shared[0])) continue;  // no last value to anchor on
      std::copy(shared, shared + features, row.begin());
      LeadFeatures(input, o, lead, row.data());
      v -= row[0];
      for (size_t j = 0; j < features; ++j) x(n, static_cast<Eigen::Index>(j)) = row[j];
      target(n) = v;
      prior(n) = season(k - 1);
      ++n;
    }
    Lead& model = leads_[lead - 1];
    if (n < options_.min_samples) continue;
    // The analogs' median change at this lead (their targets are all before origin - 24).
    model.analog = kMissing;
    if (!ranked.empty()) {
      changes.clear();
      for (int i : ranked) {
        const int64_t o = origin - 24 * static_cast<int64_t>(i + 1);
        double v = y.At(o + lead - 1) - LastValue(y, o);
        if (!std::isnan(v)) changes.push_back(v);
      }
      if (!changes.empty()) {
        std::sort(changes.begin(), changes.end());
        size_t m = changes.size() / 2;
        model.analog = changes.size() % 2 == 1 ? changes[m] : 0.5 * (changes[m - 1] + changes[m]);
      }
    }
    auto xs = x.topRows(n);
    model.mean = Eigen::VectorXd::Zero(features);
    model.scale = Eigen::VectorXd::Ones(features);
    for (size_t j = 0; j < features; ++j) {
      double sum = 0, sum2 = 0;
      int present = 0;
      for (int i = 0; i < n; ++i) {
        double v = xs(i, j);
        if (std::isnan(v)) continue;
        sum += v;
        sum2 += v * v;
        ++present;
      }
      if (present == 0) continue;
      double mean = sum / present, var = sum2 / present - mean * mean;
      model.mean(j) = mean;
      model.scale(j) = var > 1e-12 ? std::sqrt(var) : 0.0;  // 0: a constant feature, dropped
    }
    // Standardized, missing -> 0 (the mean), constant -> 0: the penalty treats all alike; the
    // last column 1 for the intercept.
    a.resize(n, static_cast<Eigen::Index>(features) + 1);
    for (size_t j = 0; j < features; ++j) {
      for (int i = 0; i < n; ++i) {
        double v = xs(i, j);
        a(i, j) = std::isnan(v) || model.scale(j) == 0 ? 0.0 : (v - model.mean(j)) / model.scale(j);
      }
    }
    a.col(features).setOnes();
    Eigen::VectorXd t = target.head(n);
    // Least squares first, then iteratively reweighted towards least absolute deviations:
    // the day-ahead change's distribution is skewed (a front drops the temperature fast), and
    // the median, not the mean, is what minimises the MAE forecasts are judged by.
    Eigen::VectorXd penalty = Eigen::VectorXd::Constant(features + 1, options_.lambda);
    penalty(features) = 0;  // the intercept is not shrunk
    Eigen::VectorXd w = prior.head(n), beta;
    for (int it = 0; it <= options_.robust_iterations; ++it) {
      // a' W a as Eigen evaluates a.transpose() * w.asDiagonal() * a: a' W into a temporary,
      // then its matrix product with a, which packs both into the same blocks whatever their
      // storage order, for the same kernel: the same bits. Kept column-major here (Eigen's
      // was row-major): packing it is then a copy, not a transposition.
      aw = (a.array().colwise() * w.array()).matrix().transpose();
      gram.noalias() = aw * a;
      gram.diagonal() += penalty * w.mean();
      beta = gram.ldlt().solve(a.transpose() * (w.array() * t.array()).matrix());
      Eigen::ArrayXd r = (t - a * beta).array().abs();
      double floor = std::max(0.1 * r.mean(), 1e-9);
      w = (prior.head(n).array() / r.max(floor)).matrix();
    }
    model.weights = beta.head(features);
    model.intercept = beta(features);
    model.fitted = true;
  }
}

void RidgeModel::Forecast(const ForecastInput& input, int64_t origin, std::span<double> means) const {
  const size_t features = FeatureCount(input);
  std::vector<double> row(features);
  bool same_hour = ((origin % 24) + 24) % 24 == fitted_origin_hour_;
  for (size_t i = 0; i < means.size(); ++i) {
    means[i] = kMissing;
    if (!same_hour || i >= leads_.size() || !leads_[i].fitted) continue;
    const Lead& model = leads_[i];
    Features(input, origin, static_cast<int>(i) + 1, row.data());
    if (std::isnan(row[0])) continue;
    double sum = row[0] + model.intercept;
    for (size_t j = 0; j < features; ++j) {
      if (std::isnan(row[j]) || model.scale(j) == 0) continue;
      sum += model.weights(j) * (row[j] - model.mean(j)) / model.scale(j);
    }
    if (options_.analog_share > 0 && !std::isnan(model.analog)) {
      sum = (1 - options_.analog_share) * sum + options_.analog_share * (row[0] + model.analog);
    }
    means[i] = sum;
  }
}

}  // namespace mare::forecast
