#include "processors/forecast/ridge.h"

#include <cmath>
#include <numbers>

#include "processors/forecast/climatology.h"

namespace mare::forecast {

namespace {

constexpr size_t kOwnFeatures = 7;
constexpr size_t kCovariateFeatures = 3;
// Fits the next 24 hours (the day-ahead horizon); longer horizons fit as many leads as asked.
constexpr int kDefaultLeads = 24;

}  // namespace

size_t RidgeModel::FeatureCount(const ForecastInput& input) {
  return kOwnFeatures + kCovariateFeatures * input.covariates.size();
}

void RidgeModel::Features(const ForecastInput& input, int64_t origin, int lead, double* out) {
  const HourlySeries& y = *input.target;
  int64_t t = origin + lead - 1;
  out[0] = LastValue(y, origin);
  out[1] = y.At(t - 24 * ((lead - 1) / 24 + 1));
  out[2] = y.MeanOver(origin - 24, origin, 12);
  out[3] = SameHourMean(y, origin, t, 7);
  out[4] = y.At(origin - 1) - y.At(origin - 4);
  double angle = 2 * std::numbers::pi * static_cast<double>(t) / (24 * 365.2425);
  out[5] = std::sin(angle);
  out[6] = std::cos(angle);
  double* c = out + kOwnFeatures;
  for (const HourlySeries* covariate : input.covariates) {
    c[0] = covariate->LastBefore(origin, 24);
    c[1] = covariate->MeanOver(origin - 24, origin, 12);
    c[2] = covariate->LastBefore(origin, 3) - covariate->At(origin - 25);
    c += kCovariateFeatures;
  }
}

Status RidgeModel::Fit(const ForecastInput& input, int64_t origin) {
  const HourlySeries& y = *input.target;
  const size_t features = FeatureCount(input);
  const int leads = kDefaultLeads;
  leads_.assign(leads, Lead{});
  fitted_origin_hour_ = ((origin % 24) + 24) % 24;
  std::vector<double> row(features);
  int fitted = 0;
  for (int lead = 1; lead <= leads; ++lead) {
    // Training origins o - 24k whose target hour is before the origin: only the past is read.
    int64_t first_k = (lead - 1) / 24 + 1;
    Eigen::MatrixXd x(options_.window_days, features);
    Eigen::VectorXd target(options_.window_days);
    int n = 0;
    for (int64_t k = first_k; k < first_k + options_.window_days; ++k) {
      int64_t o = origin - 24 * k;
      if (o - 24 < y.first_hour) break;
      double v = y.At(o + lead - 1);
      if (std::isnan(v)) continue;
      Features(input, o, lead, row.data());
      for (size_t j = 0; j < features; ++j) x(n, static_cast<Eigen::Index>(j)) = row[j];
      target(n) = v;
      ++n;
    }
    Lead& model = leads_[lead - 1];
    if (n < options_.min_samples) continue;
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
    // Standardized, missing -> 0 (the mean), constant -> 0: the penalty treats all alike.
    Eigen::MatrixXd z(n, features);
    for (int i = 0; i < n; ++i) {
      for (size_t j = 0; j < features; ++j) {
        double v = xs(i, j);
        z(i, j) = std::isnan(v) || model.scale(j) == 0 ? 0.0 : (v - model.mean(j)) / model.scale(j);
      }
    }
    Eigen::VectorXd t = target.head(n);
    model.intercept = t.mean();
    Eigen::MatrixXd gram = z.transpose() * z;
    gram.diagonal().array() += options_.lambda;
    model.weights = gram.ldlt().solve(z.transpose() * (t.array() - model.intercept).matrix());
    model.fitted = true;
    ++fitted;
  }
  if (fitted == 0) return Status::InvalidArgument("ridge: too little history");
  return Status::OK();
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
    double sum = model.intercept;
    for (size_t j = 0; j < features; ++j) {
      if (std::isnan(row[j]) || model.scale(j) == 0) continue;
      sum += model.weights(j) * (row[j] - model.mean(j)) / model.scale(j);
    }
    means[i] = sum;
  }
}

}  // namespace mare::forecast
