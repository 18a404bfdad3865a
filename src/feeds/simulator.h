// Moored buoys off Banyuls-sur-Mer (42.4886 N, 3.1858 E), each one a small physical model
// that turns a timestamp into a plausible reading. `mare simulate` drives a fleet of them.
//
// Per buoy, from its own seeded generator (one buoy's stream never depends on another's):
//   temperature        air, degC: seasonal base (~10 in late January, ~24 in late July/August)
//                      + diurnal cycle (+-2.5..3.5, warmest at 14:00 UTC) + AR(1) noise
//   humidity           %, ~72 falling as the day warms, AR(1) noise, clamped to [0, 100]
//   pressure           hPa, 1013 + regional fronts (4.3- and 7.7-day waves, +-10 together,
//                      shared by the fleet) + small local noise
//   water_temperature  sea surface, degC: first-order lag (4 days) toward a seasonal SST
//                      (~13 in February, ~23 in August), tiny diurnal ripple
//   wave_height        m, log-normal mean-reverting (6 h), always > 0
//   location           anchor in lat 42.45..42.55, lon 3.18..3.30 (open sea), drifting in a
//                      50 m watch circle (mean-reverting random walk)
//   status             "ok", or the name of the fault under way
// Faults start with probability fault_probability per reading (when none is under way):
//   stuck    temperature repeats its last good value for 20..120 readings
//   spike    one reading's temperature jumps by +25 degC
//   missing  humidity is absent for 10..60 readings
// Measurements are rounded to 0.01, positions to 1e-6 degrees (about 0.1 m).
#pragma once

#include <cstdint>

#include "feeds/reading_json.h"

namespace mare::feeds {

// xoshiro256** seeded through splitmix64: fast, small, and the same on every platform.
class Random {
 public:
  explicit Random(uint64_t seed);
  uint64_t Next();
  double Uniform();  // [0, 1)
  double Normal();   // mean 0, standard deviation 1
  double Between(double lo, double hi) { return lo + (hi - lo) * Uniform(); }

 private:
  uint64_t s_[4];
};

class Buoy {
 public:
  // The buoy's parameters and noise come from (seed, sensor_id) only.
  Buoy(uint64_t sensor_id, uint64_t seed, double fault_probability);

  // Fills *out with the reading at time_micros. Times must not go backwards; the state
  // advances by the time since the previous reading, so any rate works.
  void Read(int64_t time_micros, Reading* out);

  double anchor_lat() const { return anchor_lat_; }
  double anchor_lon() const { return anchor_lon_; }

 private:
  // x <- phi * x + sigma * sqrt(1 - phi^2) * N(0,1), phi = exp(-dt / tau): an AR(1) process
  // with stationary deviation sigma whatever the step.
  struct Ar1 {
    double tau_seconds;
    double sigma;
    double value = 0;
    double cached_dt = -1, phi = 0, kick = 0;
    void Step(double dt, Random& random);
  };
  enum class Fault { kNone, kStuck, kSpike, kMissing };

  uint64_t sensor_id_;
  double fault_probability_;
  Random random_;
  Random fault_random_;
  // Fixed per buoy.
  double anchor_lat_, anchor_lon_;
  double temperature_offset_, diurnal_amplitude_, humidity_offset_, pressure_offset_;
  double water_offset_, wave_scale_;
  double front_phase_[2];  // shared by every buoy of a seed: the weather is regional
  // State.
  bool started_ = false;
  int64_t last_time_ = 0;
  double water_ = 0;
  Ar1 air_noise_{3 * 3600.0, 0.8};
  Ar1 humidity_noise_{2 * 3600.0, 4.0};
  Ar1 pressure_noise_{1800.0, 0.3};
  Ar1 sst_anomaly_{5 * 86400.0, 0.4};
  Ar1 wave_log_{6 * 3600.0, 0.45};
  Ar1 drift_x_{1200.0, 15.0};
  Ar1 drift_y_{1200.0, 15.0};
  Fault fault_ = Fault::kNone;
  int fault_left_ = 0;
  bool started_once_ = false;
  double last_temperature_ = 0;
  double stuck_temperature_ = 0;
};

}  // namespace mare::feeds
