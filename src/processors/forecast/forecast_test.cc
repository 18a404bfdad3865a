// The forecast models on series with known answers, the residual book, the ensemble and the
// backtest's bookkeeping; the work a series' forecaster does ahead changes nothing it issues.
#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <limits>
#include <map>
#include <cstring>
#include <numbers>

#include "processors/forecast/backtest.h"
#include "processors/forecast/climatology.h"
#include "processors/forecast/ensemble.h"
#include "processors/forecast/holt_winters.h"
#include "processors/forecast/last_value.h"
#include "processors/forecast/nelder_mead.h"
#include "processors/forecast/persistence.h"
#include "processors/forecast/residual_book.h"
#include "processors/forecast/ridge.h"
#include "processors/forecast/selection.h"
#include "processors/forecast/series_forecaster.h"

namespace mare::forecast {
namespace {

constexpr int64_t kStart = 24 * 19000;  // 00:00 UTC of a day in 2022
constexpr int64_t kHourMicros = 3'600'000'000;

double DailySine(int64_t hour) { return 10 + 4 * std::sin(2 * std::numbers::pi * static_cast<double>(hour % 24) / 24); }

HourlySeries Series(int days, double (*f)(int64_t)) {
  HourlySeries s;
  s.first_hour = kStart;
  for (int64_t h = kStart; h < kStart + 24 * days; ++h) s.values.push_back(f(h));
  return s;
}

TEST(HourlyMeansTest, MeanPerUtcHourWithGapsAsNaN) {
  HourlyMeans means;
  means.Add(kStart * kHourMicros + 50 * 60'000'000LL, 1.0);
  means.Add(kStart * kHourMicros + 10 * 60'000'000LL, 3.0);
  means.Add((kStart + 3) * kHourMicros, 5.0);
  means.Add((kStart - 1) * kHourMicros + 1, 7.0);  // earlier than the first: the series grows back
  means.Add((kStart + 1) * kHourMicros, std::nan(""));
  HourlySeries s = means.Build();
  ASSERT_EQ(s.first_hour, kStart - 1);
  ASSERT_EQ(s.values.size(), 5u);
  EXPECT_EQ(s.At(kStart - 1), 7.0);
  EXPECT_EQ(s.At(kStart), 2.0);
  EXPECT_TRUE(std::isnan(s.At(kStart + 1)));
  EXPECT_TRUE(std::isnan(s.At(kStart + 2)));
  EXPECT_EQ(s.At(kStart + 3), 5.0);
  EXPECT_TRUE(std::isnan(s.At(kStart + 4)));
  EXPECT_EQ(HourOf(-1), -1);  // before 1970 rounds down
  EXPECT_EQ(s.LastBefore(kStart + 3, 168), 2.0);
  EXPECT_TRUE(std::isnan(s.LastBefore(kStart + 3, 2)));
}

TEST(NaiveModelsTest, KnownAnswers) {
  // Day d, hour h: 100 d + h; one hour of yesterday missing.
  HourlySeries s = Series(10, [](int64_t t) { return 100.0 * ((t - kStart) / 24) + static_cast<double>(t % 24); });
  const int64_t origin = kStart + 24 * 9;
  s.values[static_cast<size_t>(origin - 24 + 5 - kStart)] = kMissing;
  s.values[static_cast<size_t>(origin - 1 - kStart)] = kMissing;  // the last hour: last value is 22's
  ForecastInput input{&s, {}};
  std::vector<double> out(26);
  PersistenceModel().Forecast(input, origin, out);
  EXPECT_EQ(out[0], 800.0);
  EXPECT_EQ(out[5], 822.0);   // yesterday's 05:00 missing: the last value
  EXPECT_EQ(out[24], 800.0);  // lead 25: two days back is the latest before the origin
  LastValueModel().Forecast(input, origin, out);
  EXPECT_EQ(out[0], 822.0);
  EXPECT_EQ(out[25], 822.0);
  ClimatologyModel().Forecast(input, origin, out);
  EXPECT_DOUBLE_EQ(out[0], (200 + 300 + 400 + 500 + 600 + 700 + 800) / 7.0);
  EXPECT_DOUBLE_EQ(out[5], (205 + 305 + 405 + 505 + 605 + 705) / 6.0);  // the missing one left out
}

TEST(NelderMeadTest, FindsAQuadraticsMinimumDeterministically) {
  auto f = [](const std::vector<double>& x) { return (x[0] - 1) * (x[0] - 1) + 10 * (x[1] + 2) * (x[1] + 2); };
  NelderMeadOptions options;
  options.max_evaluations = 500;
  options.tolerance = 1e-14;
  NelderMeadResult a = MinimizeNelderMead(f, {0, 0}, options);
  NelderMeadResult b = MinimizeNelderMead(f, {0, 0}, options);
  EXPECT_NEAR(a.x[0], 1, 1e-4);
  EXPECT_NEAR(a.x[1], -2, 1e-4);
  EXPECT_EQ(a.x, b.x);
}

TEST(HoltWintersTest, RecoversAPureDailySine) {
  HourlySeries s = Series(40, DailySine);
  ForecastInput input{&s, {}};
  HoltWintersModel model;
  const int64_t origin = kStart + 24 * 35;
  ASSERT_TRUE(model.Fit(input, origin).ok());
  std::vector<double> out(24);
  model.Forecast(input, origin, out);
  for (int i = 0; i < 24; ++i) EXPECT_NEAR(out[i], DailySine(origin + i), 0.05) << "lead " << i + 1;
}

TEST(HoltWintersTest, FollowsALevelShiftWithTheSeason) {
  // A sine whose level jumps by 5 ten days before the origin: the fitted level follows it.
  HourlySeries s = Series(40, [](int64_t t) { return DailySine(t) + (t >= kStart + 24 * 25 ? 5.0 : 0.0); });
  ForecastInput input{&s, {}};
  HoltWintersModel model;
  const int64_t origin = kStart + 24 * 35;
  ASSERT_TRUE(model.Fit(input, origin).ok());
  std::vector<double> out(24);
  model.Forecast(input, origin, out);
  for (int i = 0; i < 24; ++i) EXPECT_NEAR(out[i], DailySine(origin + i) + 5, 0.1) << "lead " << i + 1;
}

TEST(HoltWintersTest, TooLittleHistoryIsAnErrorNotAForecast) {
  HourlySeries s = Series(2, DailySine);
  ForecastInput input{&s, {}};
  HoltWintersModel model;
  EXPECT_FALSE(model.Fit(input, kStart + 48).ok());
  std::vector<double> out(3);
  model.Forecast(input, kStart + 48, out);
  EXPECT_TRUE(std::isnan(out[0]));
}

TEST(RidgeTest, RecoversAPureDailySine) {
  HourlySeries s = Series(60, DailySine);
  ForecastInput input{&s, {}};
  RidgeModel model;
  const int64_t origin = kStart + 24 * 50;
  ASSERT_TRUE(model.Fit(input, origin).ok());
  std::vector<double> out(24);
  model.Forecast(input, origin, out);
  for (int i = 0; i < 24; ++i) EXPECT_NEAR(out[i], DailySine(origin + i), 0.05) << "lead " << i + 1;
}

// The ridge's day-ahead MAE over days 100 to 109 of a series from kStart (ten days, so no lucky
// day decides), fitted afresh at each.
double RidgeMaeOfDays100To109(const ForecastInput& input, const RidgeOptions& options = {}) {
  std::vector<double> out(24);
  double err = 0;
  for (int64_t day = 100; day < 110; ++day) {
    const int64_t origin = kStart + 24 * day;
    RidgeModel model(options);
    EXPECT_TRUE(model.Fit(input, origin).ok());
    model.Forecast(input, origin, out);
    for (int i = 0; i < 24; ++i) err += std::fabs(out[i] - input.target->At(origin + i)) / 240;
  }
  return err;
}

// Tomorrow's level is today's covariate (say, the water temperature the air comes to): no lag
// of the target knows it, the covariate's last value does.
TEST(RidgeTest, LearnsFromACovariate) {
  auto level = [](int64_t day) { return 5.0 * std::sin(static_cast<double>(day * day % 17)); };
  HourlySeries y, c;
  y.first_hour = c.first_hour = kStart;
  for (int64_t h = kStart; h < kStart + 24 * 120; ++h) {
    int64_t day = (h - kStart) / 24;
    y.values.push_back(level(day));
    c.values.push_back(level(day + 1));
  }
  const double err_with = RidgeMaeOfDays100To109({&y, {&c}}), err_without = RidgeMaeOfDays100To109({&y, {}});
  EXPECT_GT(err_without, 1.0);
  EXPECT_LT(err_with, 0.1 * err_without);
}

// Tomorrow's level follows the class of this evening's readings (say, the wind turning
// north-west before a cold day): only the class's share of the last 6 hours knows it.
TEST(RidgeTest, LearnsFromAClassShare) {
  auto cold = [](int64_t day) { return (day * day % 7) < 3; };
  HourlySeries y, share;
  y.first_hour = share.first_hour = kStart;
  for (int64_t h = kStart; h < kStart + 24 * 120; ++h) {
    int64_t day = (h - kStart) / 24, hour = (h - kStart) % 24;
    y.values.push_back(cold(day) ? -4.0 : 4.0);
    share.values.push_back(hour >= 18 && cold(day + 1) ? 1.0 : 0.0);
  }
  const double err_with = RidgeMaeOfDays100To109({&y, {}, {&share}}), err_without = RidgeMaeOfDays100To109({&y, {}, {}});
  // Not exact: the penalty (λ 2) shrinks the share's large weight, split with the lags that
  // move with it (0.60 against 2.48; with λ 0.01, a numpy copy's 0.0003).
  EXPECT_GT(err_without, 1.0);
  EXPECT_LT(err_with, 0.3 * err_without);
}

// Tomorrow's change follows this evening's tendency, up on days of one wind class and down on
// the other's: an interaction no linear fit over all days has, but each class's days alone are
// linear. The local fit weighs the days alike at 23:00 (the class's share among what they
// compare), so it finds it where the global fit cannot; analogs alone (the median of the most
// alike days) come near it too.
TEST(RidgeTest, ALocalFitLearnsWhatTheGlobalOneCannot) {
  HourlySeries y, share;
  y.first_hour = share.first_hour = kStart;
  double level = 0;
  uint64_t x = 12345;
  auto next = [&x] {  // deterministic, in [0, 1)
    x = x * 6364136223846793005ULL + 1442695040888963407ULL;
    return static_cast<double>(x >> 11) / 9007199254740992.0;
  };
  for (int64_t day = 0; day < 120; ++day) {
    const double g = 2 * next() - 1;          // this evening's tendency, per hour
    const bool up = next() < 0.5;             // the day's class
    for (int hour = 0; hour < 24; ++hour) {
      y.values.push_back(level + (hour >= 18 ? g * (hour - 18) : 0.0));
      share.values.push_back(up ? 1.0 : 0.0);
    }
    level += 5 * g + (up ? 6 : -6) * g;       // from the last value: +-6 g
  }
  RidgeOptions local;
  local.likeness_bandwidth = 0.3;
  RidgeOptions blend = local;
  blend.analogs = 10;
  blend.analog_share = 0.2;
  const ForecastInput input{&y, {}, {&share}};
  const double global = RidgeMaeOfDays100To109(input), fitted_locally = RidgeMaeOfDays100To109(input, local),
               blended = RidgeMaeOfDays100To109(input, blend);
  EXPECT_GT(global, 1.0);
  EXPECT_LT(fitted_locally, 0.5 * global);
  EXPECT_LT(blended, 0.6 * global);
  // Without the class among its inputs, the local fit has nothing but the tendency's size to
  // tell the days apart by (0.75 of the global fit's MAE).
  EXPECT_GT(RidgeMaeOfDays100To109({&y, {}, {}}, local), 1.5 * fitted_locally);
}

TEST(RidgeTest, ForecastsOnlyFromThePast) {
  // Changing hours at and after the origin changes nothing the model fits or forecasts.
  HourlySeries s = Series(60, DailySine);
  HourlySeries changed = s;
  const int64_t origin = kStart + 24 * 50;
  for (int64_t h = origin; h < changed.end_hour(); ++h) changed.values[static_cast<size_t>(h - kStart)] += 100;
  std::vector<double> a(24), b(24);
  RidgeModel m1, m2;
  ForecastInput i1{&s, {}}, i2{&changed, {}};
  ASSERT_TRUE(m1.Fit(i1, origin).ok());
  m1.Forecast(i1, origin, a);
  ASSERT_TRUE(m2.Fit(i2, origin).ok());
  m2.Forecast(i2, origin, b);
  EXPECT_EQ(a, b);
}

double Noisy(int64_t hour) {
  uint64_t x = static_cast<uint64_t>(hour) * 6364136223846793005ULL + 1442695040888963407ULL;
  return DailySine(hour) + 2 * std::sin(static_cast<double>(hour) / 300.0) + static_cast<double>((x >> 33) % 1000) / 500.0;
}

TEST(RidgeTest, PreparedAheadFitsTheSameModelsAsOneFit) {
  HourlySeries s = Series(80, Noisy);
  s.values[static_cast<size_t>(24 * 70 + 5)] = kMissing;
  const int64_t origin = kStart + 24 * 75;
  // Prepared from hours of which those from origin - 1 on are wrong: its 23 leads read none.
  HourlySeries early = s;
  for (int64_t h = origin - 1; h < early.end_hour(); ++h) early.values[static_cast<size_t>(h - kStart)] += 100;
  RidgeModel plain, prepared, dropped;
  ForecastInput full{&s, {}}, ahead{&early, {}};
  prepared.Prepare(ahead, origin, RidgeModel::kLeads - 1);
  dropped.Prepare(ahead, origin - 24, RidgeModel::kLeads - 1);  // another origin: Fit drops it
  ASSERT_TRUE(plain.Fit(full, origin).ok());
  ASSERT_TRUE(prepared.Fit(full, origin).ok());
  ASSERT_TRUE(dropped.Fit(full, origin).ok());
  std::vector<double> a(24), b(24), c(24);
  plain.Forecast(full, origin, a);
  prepared.Forecast(full, origin, b);
  dropped.Forecast(full, origin, c);
  for (double v : a) EXPECT_FALSE(std::isnan(v));
  EXPECT_EQ(a, b);  // bit for bit
  EXPECT_EQ(a, c);
}

TEST(RidgeTest, ALocalFitPreparedAheadIsTheSameAsOneFit) {
  HourlySeries s = Series(80, Noisy), share = Series(80, [](int64_t h) { return (h / 24) % 3 == 0 ? 1.0 : 0.0; });
  s.values[static_cast<size_t>(24 * 70 + 5)] = kMissing;
  const int64_t origin = kStart + 24 * 75;
  // Its likeness is as of 23:00 and its analogs two days back: hours from origin - 1 on are
  // read by the last lead only.
  HourlySeries early = s;
  for (int64_t h = origin - 1; h < early.end_hour(); ++h) early.values[static_cast<size_t>(h - kStart)] += 100;
  RidgeOptions options{.window_days = 1460, .lambda = 4, .likeness_bandwidth = 0.7, .likeness_lag = 1, .analogs = 40,
                       .analog_share = 0.2, .name = "local_ridge"};
  RidgeModel plain(options), prepared(options), global;
  ForecastInput full{&s, {}, {&share}}, ahead{&early, {}, {&share}};
  prepared.Prepare(ahead, origin, RidgeModel::kLeads - 1);
  ASSERT_TRUE(plain.Fit(full, origin).ok());
  ASSERT_TRUE(prepared.Fit(full, origin).ok());
  ASSERT_TRUE(global.Fit(full, origin).ok());
  std::vector<double> a(24), b(24), c(24);
  plain.Forecast(full, origin, a);
  prepared.Forecast(full, origin, b);
  global.Forecast(full, origin, c);
  for (double v : a) EXPECT_FALSE(std::isnan(v));
  EXPECT_EQ(a, b);  // bit for bit
  EXPECT_NE(a, c);  // and not the global ridge's
  EXPECT_EQ(plain.name(), "local_ridge");
}

TEST(HoltWintersTest, PreparedAheadForecastsTheSameBits) {
  HourlySeries s = Series(40, Noisy);
  s.values[static_cast<size_t>(24 * 30 + 5)] = kMissing;
  const int64_t origin = kStart + 24 * 35 + 9;
  // Prepared from hours that end before origin - 1, the one hour it leaves to Forecast.
  HourlySeries early = s;
  early.values.resize(static_cast<size_t>(origin - 1 - kStart));
  HoltWintersModel plain, prepared;
  ForecastInput full{&s, {}};
  ASSERT_TRUE(plain.Fit(full, origin - 5).ok());
  ASSERT_TRUE(prepared.Fit(full, origin - 5).ok());
  prepared.Prepare(early, origin);
  std::vector<double> a(24), b(24), c(24);
  plain.Forecast(full, origin, a);
  prepared.Forecast(full, origin, b);
  for (double v : a) EXPECT_FALSE(std::isnan(v));
  EXPECT_EQ(a, b);  // bit for bit
  prepared.Forecast(full, origin + 1, c);  // another origin: the whole run
  plain.Forecast(full, origin + 1, a);
  EXPECT_EQ(a, c);
}

TEST(SeriesForecasterTest, PrepareChangesNothingTheDayAheadIssues) {
  SeriesOptions options;
  options.history_days = 30;
  options.refit_phase = 7;
  HourlySeries h = Series(40, Noisy);
  h.values.resize(h.values.size() - 1);  // up to 22:00: 23:00 closes next, then 00:00 is issued
  SeriesForecaster plain(options), ahead(options);
  plain.Restore(h);
  ahead.Restore(h);
  EXPECT_TRUE(ahead.Prepare());
  const int64_t last = h.end_hour();
  ForecastIssue a, b;
  ASSERT_TRUE(plain.Close(last, Noisy(last), &a));
  ASSERT_TRUE(ahead.Close(last, Noisy(last), &b));
  EXPECT_TRUE(a.day_ahead);
  EXPECT_TRUE(ahead.Prepare());  // 00:00 closes next: its books' answers (no ridge)
  EXPECT_FALSE(SeriesForecaster(options).Prepare());  // nothing closed: nothing to do
  auto bits = [](const std::vector<double>& v) {  // NaN where none: compared as bits
    std::vector<uint64_t> out(v.size());
    std::memcpy(out.data(), v.data(), v.size() * sizeof(double));
    return out;
  };
  EXPECT_FALSE(std::isnan(a.mean[0]));
  EXPECT_EQ(bits(a.mean), bits(b.mean));
  EXPECT_EQ(bits(a.lower), bits(b.lower));
  EXPECT_EQ(bits(a.upper), bits(b.upper));
  // Then a day of hours, prepared before each close or not: the same issues, the refit at
  // 07:00 (made ahead by Prepare) and Holt–Winters' run ahead among them.
  for (int64_t hour = last + 1; hour < last + 27; ++hour) {
    ASSERT_TRUE(plain.Close(hour, Noisy(hour), &a));
    ASSERT_TRUE(ahead.Close(hour, Noisy(hour), &b));
    EXPECT_TRUE(ahead.Prepare());
    EXPECT_EQ(a.day_ahead, hour == last + 24);
    EXPECT_FALSE(std::isnan(a.lower[3]));
    EXPECT_EQ(bits(a.mean), bits(b.mean));
    EXPECT_EQ(bits(a.lower), bits(b.lower));
    EXPECT_EQ(bits(a.upper), bits(b.upper));
  }
}

TEST(ResidualBookTest, IntervalIsTheEmpiricalQuantilesOfEarlierErrors) {
  ResidualOptions options;
  options.lead_pool = 0;
  options.min_errors = 10;
  ResidualBook book(24, options);
  // Errors 1..50 at lead 3 on 50 consecutive days; numpy's quantiles of 1..50: 5.9 and 45.1.
  for (int d = 0; d < 50; ++d) book.Add(24 * d, 3, d + 1.0);
  double lo = 0, hi = 0;
  ASSERT_TRUE(book.Interval(24 * 50, 3, &lo, &hi));
  EXPECT_NEAR(lo, 5.9, 1e-9);
  EXPECT_NEAR(hi, 45.1, 1e-9);
  EXPECT_FALSE(book.Interval(24 * 50, 4, &lo, &hi));  // nothing at lead 4
  EXPECT_FALSE(book.Interval(24 * 5, 3, &lo, &hi));   // the origin's own and later errors are not its past
  EXPECT_NEAR(book.RecentMae(24 * 50, 3, 10), (41 + 50) / 2.0, 1e-9);  // the last 10 days: 41..50
}

// A book keeps the errors of its last keep_days (interval window + 2 by default): a year of
// daily errors leaves that many, and the windows its readers ask for answer as if it kept all.
TEST(ResidualBookTest, KeepsOnlyTheDaysItsReadersAskFor) {
  ResidualOptions options;
  options.interval_window_days = 56;
  ResidualBook book(24, options), wide(24, ResidualOptions{.keep_days = 1000});
  for (int d = 0; d < 365; ++d) {
    book.Add(24 * d, 1, (d % 17) - 8.0);
    wide.Add(24 * d, 1, (d % 17) - 8.0);
  }
  std::vector<ResidualBook::Errors> saved = book.Save(0);
  ASSERT_EQ(saved[0].size(), 59u);  // origins 306..364: the newest's 58 days before it, and itself
  EXPECT_EQ(saved[0].front().first, 24 * 306);
  EXPECT_EQ(wide.Save(0)[0].size(), 365u);
  double lo = 0, hi = 0, wide_lo = 0, wide_hi = 0;
  ASSERT_TRUE(book.Interval(24 * 365, 1, &lo, &hi));
  ASSERT_TRUE(wide.Interval(24 * 365, 1, &wide_lo, &wide_hi));
  EXPECT_EQ(lo, wide_lo);
  EXPECT_EQ(hi, wide_hi);
  EXPECT_EQ(book.RecentMae(24 * 365, 1, 30), wide.RecentMae(24 * 365, 1, 30));
}

// A book holds its leads only from its first error (empty deques allocate); before that it
// answers as an empty one, and saves and loads one entry per lead.
TEST(ResidualBookTest, AnEmptyBookAnswersSavesAndLoadsAsOne) {
  ResidualBook book(24);
  double lo = 0, hi = 0;
  EXPECT_FALSE(book.Interval(240, 24, &lo, &hi));
  EXPECT_TRUE(std::isnan(book.RecentMae(240, 24, 7)));
  int64_t count = -1;
  EXPECT_TRUE(std::isnan(book.MeanAbsError(240, 7, &count)));
  EXPECT_EQ(count, 0);
  EXPECT_EQ(book.Save(0), std::vector<ResidualBook::Errors>(24));
  book.Add(0, 24, 1.5);
  std::vector<ResidualBook::Errors> saved = book.Save(0);
  ASSERT_EQ(saved.size(), 24u);
  EXPECT_EQ(saved[23], (ResidualBook::Errors{{0, 1.5}}));
  ResidualBook back(24);
  back.Load(saved);
  EXPECT_EQ(back.Save(0), saved);
  back.Load(std::vector<ResidualBook::Errors>(24));  // all empty: the book is empty again
  EXPECT_EQ(back.Save(0), std::vector<ResidualBook::Errors>(24));
  EXPECT_TRUE(std::isnan(back.RecentMae(240, 24, 7)));
}

// A checkpoint's origins are anything a file can hold: those near the ends of int64 are refused
// (not at 00:00) or kept, never overflowed (fuzz_forecast_checkpoint found FloorDiv * 24 wrap).
TEST(ResidualBookTest, LoadsOriginsAtTheEndsOfInt64WithoutOverflow) {
  constexpr int64_t kMin = std::numeric_limits<int64_t>::min();
  constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
  const int64_t min_day = kMin / 24 * 24;  // the smallest 00:00 origin
  std::vector<ResidualBook::Errors> saved(24);
  saved[0] = {{kMin + 1, 1.0}, {kMax, 2.0}, {kMin + 23, 3.0}};
  ResidualBook book(24);
  book.Load(saved);
  EXPECT_EQ(book.Save(kMin), std::vector<ResidualBook::Errors>(24));  // none at 00:00: empty
  saved[0] = {{min_day, 4.0}};
  book.Load(saved);
  EXPECT_EQ(book.Save(kMin)[0], (ResidualBook::Errors{{min_day, 4.0}}));
  ResidualBook added(24);
  added.Add(kMin + 1, 1, 1.0);
  added.Add(kMax, 1, 1.0);
  EXPECT_EQ(added.Save(kMin), std::vector<ResidualBook::Errors>(24));
}

// Errors are kept by day (the origin given by the place): only 00:00 origins are kept, a day
// without an error (a gap) is none, and the answers are those of every error in the window.
TEST(ResidualBookTest, KeepsTheErrorsOf0000OriginsByDay) {
  ResidualOptions options;
  options.lead_pool = 0;
  options.min_errors = 3;
  ResidualBook book(24, options);
  book.Add(24 * 10 + 5, 2, 100.0);  // not a 00:00 origin: not kept
  EXPECT_EQ(book.Save(0), std::vector<ResidualBook::Errors>(24));
  for (int d : {10, 11, 13, 14}) book.Add(24 * d, 2, d * 1.0);  // day 12 has none
  EXPECT_EQ(book.Save(0)[1], (ResidualBook::Errors{{240, 10.0}, {264, 11.0}, {312, 13.0}, {336, 14.0}}));
  EXPECT_EQ(book.Save(24 * 12)[1], (ResidualBook::Errors{{312, 13.0}, {336, 14.0}}));
  EXPECT_EQ(book.RecentMae(24 * 15, 2, 3), (14 + 13) / 2.0);  // origins 12..14: two errors
  int64_t count = 0;
  EXPECT_EQ(book.MeanAbsError(24 * 14, 30, &count), (10 + 11 + 13) / 3.0);  // before day 14
  EXPECT_EQ(count, 3);
  double lo = 0, hi = 0;
  ASSERT_TRUE(book.Interval(24 * 15, 2, &lo, &hi));
  EXPECT_NEAR(lo, 10.3, 1e-9);  // numpy's 10 % and 90 % of 10, 11, 13, 14
  EXPECT_NEAR(hi, 13.7, 1e-9);
  // An answer given before a change is not given after it.
  book.Add(24 * 12, 2, 12.0);
  EXPECT_EQ(book.RecentMae(24 * 15, 2, 3), (14 + 13 + 12) / 3.0);
  // A jump past the days kept leaves only the newest day.
  book.Add(24 * 200, 2, 1.0);
  EXPECT_EQ(book.Save(0)[1], (ResidualBook::Errors{{24 * 200, 1.0}}));
  EXPECT_TRUE(std::isnan(book.RecentMae(24 * 200, 2, 56)));
  ResidualBook back(24, options);
  back.Load(book.Save(0));
  EXPECT_EQ(back.Save(0), book.Save(0));
}

// What a book answers, computed from every error it was given (by lead and day) the way the
// whole-window rings did: the pooled leads in order, each newest day first, quantiles by sorting.
uint64_t Bits(double v) { return std::bit_cast<uint64_t>(v); }  // NaN compares equal to NaN

struct NaiveBook {
  std::map<std::pair<int, int64_t>, double> errors;  // (lead, day): the last error given
  ResidualOptions options;
  std::vector<double> Pooled(int64_t origin, int lead, int days, int64_t newest) const {
    std::vector<double> out;
    const int64_t end = origin / 24, first = std::max(end - days, newest - options.interval_window_days - 2);
    for (int l = std::max(1, lead - options.lead_pool); l <= std::min(24, lead + options.lead_pool); ++l) {
      for (int64_t d = std::min(end, newest + 1) - 1; d >= first; --d) {
        auto it = errors.find({l, d});
        if (it != errors.end()) out.push_back(it->second);
      }
    }
    return out;
  }
  double Mae(int64_t origin, int lead, int days, int64_t newest) const {
    std::vector<double> v = Pooled(origin, lead, days, newest);
    double sum = 0;
    for (double e : v) sum += std::fabs(e);
    return v.empty() ? std::nan("") : sum / static_cast<double>(v.size());
  }
  bool Interval(int64_t origin, int lead, int64_t newest, double* lo, double* hi) const {
    std::vector<double> v = Pooled(origin, lead, options.interval_window_days, newest);
    if (static_cast<int>(v.size()) < options.min_errors) return false;
    std::sort(v.begin(), v.end());
    auto q = [&](double p) {
      double pos = p * static_cast<double>(v.size() - 1);
      size_t i = static_cast<size_t>(std::floor(pos));
      return i + 1 >= v.size() ? v[i] : v[i] + (pos - static_cast<double>(i)) * (v[i + 1] - v[i]);
    };
    *lo = q((1 - options.coverage) / 2);
    *hi = q(1 - (1 - options.coverage) / 2);
    return true;
  }
};

// A book's memory follows the days it has errors of (8 bytes a lead and day, up to the days it
// keeps), not a whole window at its first error; its answers stay those of every error kept,
// bit for bit, through gaps, a late error of an older day, a jump past the days kept and a load.
TEST(ResidualBookTest, GrowsWithItsDaysAndAnswersAsTheWholeWindowDid) {
  ResidualOptions options;
  options.min_errors = 5;
  ResidualBook book(24, options);
  NaiveBook naive{.options = options};
  EXPECT_EQ(book.ErrorBytes(), 0u);
  uint64_t x = 12345;
  auto error = [&] {
    x = x * 6364136223846793005ULL + 1442695040888963407ULL;
    return static_cast<double>(x >> 40) / 65536.0 - 128.0;
  };
  auto add = [&](int64_t day, int lead) {
    double e = error();
    book.Add(24 * day, lead, e);
    naive.errors[{lead, day}] = e;
  };
  auto same = [&](int64_t origin, int64_t newest) {
    for (int lead : {1, 2, 12, 23, 24}) {
      EXPECT_EQ(Bits(book.RecentMae(origin, lead, 7)), Bits(naive.Mae(origin, lead, 7, newest))) << origin << " " << lead;
      EXPECT_EQ(Bits(book.RecentMae(origin, lead, 56)), Bits(naive.Mae(origin, lead, 56, newest))) << origin;
      double lo = 0, hi = 0, nlo = 0, nhi = 0;
      ASSERT_EQ(book.Interval(origin, lead, &lo, &hi), naive.Interval(origin, lead, newest, &nlo, &nhi)) << origin;
      EXPECT_EQ(Bits(lo), Bits(nlo)) << origin << " " << lead;
      EXPECT_EQ(Bits(hi), Bits(nhi)) << origin << " " << lead;
    }
  };
  const int64_t first = 19000;
  for (int64_t d = first; d < first + 80; ++d) {
    if (d % 9 == 4) continue;  // a day without errors now and then
    for (int lead = 1; lead <= 24; ++lead) add(d, lead);
    const int64_t days = std::min<int64_t>(d - first + 1, 59);
    EXPECT_EQ(book.ErrorBytes(), static_cast<size_t>(24 * 8 * days)) << d - first;
    same(24 * (d + 1), d);
  }
  // A late error of a day before the others (a restart's replay, say) and a load of the saved book.
  ResidualBook fresh(24, options);
  NaiveBook fresh_naive{.options = options};
  std::swap(book, fresh);
  std::swap(naive, fresh_naive);
  for (int64_t d = first + 10; d < first + 14; ++d) add(d, 3);
  EXPECT_EQ(book.ErrorBytes(), 24u * 8 * 4);
  add(first + 2, 3);
  EXPECT_EQ(book.ErrorBytes(), 24u * 8 * 12);
  same(24 * (first + 14), first + 13);
  ResidualBook loaded(24, options);
  loaded.Load(fresh.Save(0));
  EXPECT_EQ(loaded.Save(0), fresh.Save(0));
  EXPECT_EQ(loaded.ErrorBytes(), 24u * 8 * 58);  // its oldest day, first + 21, had no errors
  double lo = 0, hi = 0, flo = 0, fhi = 0;
  ASSERT_TRUE(loaded.Interval(24 * (first + 80), 12, &lo, &hi));
  ASSERT_TRUE(fresh.Interval(24 * (first + 80), 12, &flo, &fhi));
  EXPECT_EQ(Bits(lo), Bits(flo));
  EXPECT_EQ(Bits(hi), Bits(fhi));
  // A jump past the days kept: only the newest day's errors stay, in the rings already there.
  for (int lead = 1; lead <= 24; ++lead) add(first + 300, lead);
  EXPECT_EQ(book.ErrorBytes(), 24u * 8 * 12);
  EXPECT_EQ(book.Save(0)[2].size(), 1u);
  same(24 * (first + 301), first + 300);
}

TEST(EnsembleTest, WeighsByRecentMaeAndSharesWhileThereIsNone) {
  std::vector<ResidualBook> books(3, ResidualBook(24));
  std::vector<double> forecasts = {1, 2, 3}, weights(3);
  EnsembleWeights(books, forecasts, 24 * 10, 1, {}, weights);
  EXPECT_EQ(weights, (std::vector<double>{1 / 3.0, 1 / 3.0, 1 / 3.0}));
  for (int d = 0; d < 10; ++d) {
    books[0].Add(24 * d, 1, 1.0);
    books[1].Add(24 * d, 1, -2.0);
    books[2].Add(24 * d, 1, 4.0);
  }
  EnsembleOptions options;
  options.top = 2;
  options.power = 2;
  EnsembleWeights(books, forecasts, 24 * 10, 1, options, weights);
  EXPECT_NEAR(weights[0], 0.8, 1e-12);  // 1/1^2 : 1/2^2 = 4 : 1
  EXPECT_NEAR(weights[1], 0.2, 1e-12);
  EXPECT_EQ(weights[2], 0.0);           // not in the top 2
  forecasts[0] = kMissing;               // a model without a forecast takes no part
  EnsembleWeights(books, forecasts, 24 * 10, 1, options, weights);
  EXPECT_EQ(weights[0], 0.0);
  EXPECT_NEAR(weights[1] + weights[2], 1.0, 1e-12);
}

TEST(SelectionTest, PicksTheWeightWhoseBlendHadTheLowerMaeFromEnoughErrors) {
  // The ensemble errs by +1 or -1 on alternate days, the model by -1 or +1: their mean is exact.
  ResidualBook ensemble(24), opposite(24), same(24);
  for (int d = 0; d < 20; ++d) {
    for (int lead = 1; lead <= 24; ++lead) {
      ensemble.Add(24 * d, lead, d % 2 ? 1.0 : -1.0);
      opposite.Add(24 * d, lead, d % 2 ? -1.0 : 1.0);
      same.Add(24 * d, lead, d % 2 ? 3.0 : -3.0);  // three times the ensemble's: less of it is better
    }
  }
  const int64_t origin = 24 * 20;
  int64_t n = 0;
  EXPECT_EQ(opposite.BlendMae(ensemble, 0.5, origin, 42, &n), 0.0);
  EXPECT_EQ(n, 20 * 24);
  EXPECT_EQ(opposite.BlendMae(ensemble, 0.75, origin, 42, &n), 0.5);
  EXPECT_EQ(same.BlendMae(ensemble, 0.5, origin, 42, &n), 2.0);
  SelectionOptions options;
  options.weights = {0, 0.5, 0.75, 1};
  EXPECT_EQ(SelectWeight(ensemble, opposite, origin, options), 0.5);
  EXPECT_EQ(SelectWeight(ensemble, same, origin, options), 0.0);   // the ensemble alone
  options.weights = {0.75, 1};
  EXPECT_EQ(SelectWeight(ensemble, opposite, origin, options), 0.75);
  EXPECT_EQ(SelectWeight(ensemble, same, origin, options), 0.75);  // the better of those asked
  // Fewer than min_errors pairs: the ensemble alone.
  options.window_days = 10;  // 240 pairs, fewer than two weeks' 336
  EXPECT_EQ(SelectWeight(ensemble, opposite, origin, options), 0.0);
  options.min_errors = 240;
  EXPECT_EQ(SelectWeight(ensemble, opposite, origin, options), 0.75);
  ResidualBook empty(24);
  EXPECT_EQ(SelectWeight(ensemble, empty, origin, options), 0.0);
}

TEST(BacktestTest, PureDailySine) {
  HourlySeries s = Series(40, DailySine);
  ForecastInput input{&s, {}};
  Result<BacktestReport> r = RunBacktest(input);
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->first_origin, kStart + 24 * 7);
  EXPECT_EQ(r->days, 33);
  ASSERT_EQ(r->models.size(), 8u);
  EXPECT_EQ(r->models[6].model, "ensemble");
  EXPECT_EQ(r->models.back().model, "selected");
  int64_t days = 0;
  for (const auto& [w, d] : r->weight_days) days += d;
  EXPECT_EQ(days, 33);
  EXPECT_EQ(r->weight_days.begin()->first, 0.0);  // its first two weeks: the ensemble alone
  for (const ModelScore& m : r->models) {
    EXPECT_EQ(m.hours, 33 * 24) << m.model;
    if (m.model == "persistence" || m.model == "climatology_7d") {
      EXPECT_NEAR(m.mae, 0, 1e-9) << m.model;
    }
    if (m.model == "holt_winters" || m.model == "ridge" || m.model == "local_ridge" || m.model == "ensemble" ||
        m.model == "selected") {
      EXPECT_LT(m.mae, 0.1) << m.model;
    }
  }
  const ModelScore& last = r->models[1];
  EXPECT_EQ(last.model, "last_value");
  // 4 sin(2 pi h / 24) against its value at 23:00 on average over a day: 4 * mean |sin - sin(-pi/12)|.
  double expected = 0;
  for (int h = 0; h < 24; ++h) expected += std::fabs(4 * std::sin(2 * std::numbers::pi * h / 24) - 4 * std::sin(-std::numbers::pi / 12));
  EXPECT_NEAR(last.mae, expected / 24, 1e-9);
  EXPECT_TRUE(r->best_naive == "persistence" || r->best_naive == "climatology_7d");
}

TEST(BacktestTest, DeterministicAndJudgesOnlyObservedHours) {
  HourlySeries s = Series(30, [](int64_t t) { return DailySine(t) + 0.5 * std::sin(static_cast<double>(t) * 0.37); });
  for (int64_t h = kStart + 24 * 12; h < kStart + 24 * 12 + 30; ++h) s.values[static_cast<size_t>(h - kStart)] = kMissing;
  ForecastInput input{&s, {}};
  Result<BacktestReport> a = RunBacktest(input), b = RunBacktest(input);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->models[0].hours, (30 - 7) * 24 - 30);
  for (size_t m = 0; m < a->models.size(); ++m) {
    EXPECT_EQ(a->models[m].mae, b->models[m].mae);
    EXPECT_EQ(a->models[m].coverage, b->models[m].coverage);
  }
}

}  // namespace
}  // namespace mare::forecast
