// Additive Holt–Winters with a daily season: exponential smoothing of a level, a damped trend
// and 24 hourly offsets, its parameters fitted to the recent past by one-step squared error
// (a coarse grid, then Nelder–Mead: deterministic).
#pragma once

#include <array>
#include <cstdint>
#include <limits>

#include "processors/forecast/model.h"

namespace mare::forecast {

struct HoltWintersParams {
  double alpha = 0.3;  // level
  double beta = 0.01;  // trend
  double gamma = 0.1;  // season
  double phi = 0.9;    // trend damping
};

class HoltWintersModel : public ForecastModel {
 public:
  // Fits on the last window_days before the origin (the first two days start the state).
  explicit HoltWintersModel(int window_days = 28) : window_days_(window_days) {}
  std::string_view name() const override { return "holt_winters"; }
  Status Fit(const ForecastInput& input, int64_t origin) override;
  void Forecast(const ForecastInput& input, int64_t origin, std::span<double> means) const override;
  const HoltWintersParams& params() const { return params_; }
  bool fitted() const { return fitted_; }
  // Takes a fit saved from another instance (a checkpoint's) as its own.
  void SetFit(const HoltWintersParams& params, bool fitted) {
    params_ = params;
    fitted_ = fitted;
    ahead_.origin = kNoOrigin;
  }
  // Runs Forecast(origin)'s recursion now, over the hours before origin - 1 (which need not be
  // in y yet): Forecast at that origin, with the same fit, then runs only hour origin - 1, and
  // gives the same bits as a whole run (the same operations in the same order). Any other
  // origin, or a new fit, runs the whole window as before.
  void Prepare(const HourlySeries& y, int64_t origin);

 private:
  struct State {
    double level = 0, trend = 0;
    std::array<double, 24> season{};
  };
  // Runs the recursion over [origin - window, origin); *sse: one-step squared errors after the
  // first two days. False when the window has too little data to start.
  bool Run(const HourlySeries& y, int64_t origin, const HoltWintersParams& p, State* state, double* sse) const;
  // The state at the window's start (*start); false as Run says.
  bool Start(const HourlySeries& y, int64_t origin, int64_t* start, State* state) const;

  static constexpr int64_t kNoOrigin = std::numeric_limits<int64_t>::min();
  int window_days_;
  bool fitted_ = false;
  HoltWintersParams params_;
  struct Ahead {  // Prepare's run: the state before hour origin - 1 of the window from start
    int64_t origin = kNoOrigin;
    int64_t start = 0;
    State state;
  };
  Ahead ahead_;
};

}  // namespace mare::forecast
