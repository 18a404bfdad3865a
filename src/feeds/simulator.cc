#include "feeds/simulator.h"

#include <algorithm>
#include <cmath>
#include <numbers>

#include "common/mix64.h"

namespace mare::feeds {

namespace {

constexpr double kTwoPi = 2 * std::numbers::pi;
constexpr double kDaysPerYear = 365.2425;
constexpr double kMetersPerDegree = 111'320.0;
constexpr double kWatchCircleMeters = 50.0;
constexpr double kSpikeDegrees = 25.0;

uint64_t SplitMix64(uint64_t& x) { return Mix64(x += 0x9e3779b97f4a7c15ULL); }

uint64_t Rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

// Distinct streams from one seed: the buoy's physics, its faults, and the regional weather.
uint64_t StreamSeed(uint64_t seed, uint64_t sensor_id, uint64_t salt) {
  uint64_t x = seed;
  uint64_t a = SplitMix64(x);
  x = a ^ (sensor_id * 0xd1b54a32d192ed03ULL);
  uint64_t b = SplitMix64(x);
  x = b ^ (salt * 0x8cb92ba72f3d8dd7ULL);
  return SplitMix64(x);
}

// Air temperature without noise: ~10 degC around 26 January, ~24 degC around 27 July.
double SeasonalAir(double day_of_year) { return 17.0 - 7.0 * std::cos(kTwoPi * (day_of_year - 25) / kDaysPerYear); }

// Sea surface: ~13 degC mid-February, ~23 degC mid-August (the sea lags the air).
double SeasonalSea(double day_of_year) { return 18.0 - 5.0 * std::cos(kTwoPi * (day_of_year - 45) / kDaysPerYear); }

}  // namespace

Random::Random(uint64_t seed) {
  for (uint64_t& s : s_) s = SplitMix64(seed);
}

uint64_t Random::Next() {
  uint64_t result = Rotl(s_[1] * 5, 7) * 9;
  uint64_t t = s_[1] << 17;
  s_[2] ^= s_[0];
  s_[3] ^= s_[1];
  s_[1] ^= s_[2];
  s_[0] ^= s_[3];
  s_[2] ^= t;
  s_[3] = Rotl(s_[3], 45);
  return result;
}

double Random::Uniform() { return static_cast<double>(Next() >> 11) * 0x1.0p-53; }

double Random::Normal() {
  // Box-Muller; one of the pair is enough and keeps the stream simple.
  double u1 = 1.0 - Uniform();  // (0, 1]
  double u2 = Uniform();
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(kTwoPi * u2);
}

void Buoy::Ar1::Step(double dt, Random& random) {
  if (dt != cached_dt) {
    cached_dt = dt;
    phi = std::exp(-dt / tau_seconds);
    kick = sigma * std::sqrt(1 - phi * phi);
  }
  value = phi * value + kick * random.Normal();
}

Buoy::Buoy(uint64_t sensor_id, uint64_t seed, double fault_probability)
    : sensor_id_(sensor_id),
      fault_probability_(fault_probability),
      random_(StreamSeed(seed, sensor_id, 1)),
      fault_random_(StreamSeed(seed, sensor_id, 2)) {
  anchor_lat_ = random_.Between(42.45, 42.55);
  anchor_lon_ = random_.Between(3.18, 3.30);
  temperature_offset_ = random_.Between(-0.5, 0.5);
  diurnal_amplitude_ = random_.Between(2.5, 3.5);
  humidity_offset_ = random_.Between(-3, 3);
  pressure_offset_ = random_.Between(-0.5, 0.5);
  water_offset_ = random_.Between(-0.3, 0.3);
  wave_scale_ = random_.Between(0.6, 1.0);
  Random regional(StreamSeed(seed, 0, 3));
  front_phase_[0] = regional.Between(0, kTwoPi);
  front_phase_[1] = regional.Between(0, kTwoPi);
  // Start each noise process from its stationary distribution, not from zero.
  for (Ar1* ar : {&air_noise_, &humidity_noise_, &pressure_noise_, &sst_anomaly_, &wave_log_, &drift_x_, &drift_y_}) {
    ar->value = ar->sigma * random_.Normal();
  }
}

void Buoy::Read(int64_t time_micros, Reading* out) {
  double dt = started_ ? static_cast<double>(std::max<int64_t>(time_micros - last_time_, 0)) / 1e6 : 0;
  double days = static_cast<double>(time_micros) / 86'400e6;
  double day_of_year = std::fmod(days, kDaysPerYear);
  if (day_of_year < 0) day_of_year += kDaysPerYear;
  double hour = (days - std::floor(days)) * 24;

  if (dt > 0) {
    for (Ar1* ar : {&air_noise_, &humidity_noise_, &pressure_noise_, &sst_anomaly_, &wave_log_, &drift_x_, &drift_y_}) {
      ar->Step(dt, random_);
    }
  }
  double sea_target = SeasonalSea(day_of_year) + water_offset_ + sst_anomaly_.value;
  if (!started_) {
    water_ = sea_target;
  } else {
    water_ += (sea_target - water_) * (1 - std::exp(-dt / (4 * 86400.0)));
  }
  started_ = true;
  last_time_ = time_micros;

  double diurnal = std::cos(kTwoPi * (hour - 14) / 24);  // +1 at 14:00 UTC
  double temperature = SeasonalAir(day_of_year) + temperature_offset_ + diurnal_amplitude_ * diurnal + air_noise_.value;
  double humidity = std::clamp(72 + humidity_offset_ - 3.5 * diurnal_amplitude_ * diurnal + humidity_noise_.value, 0.0, 100.0);
  double pressure = 1013 + 6 * std::sin(kTwoPi * days / 4.3 + front_phase_[0]) +
                    4 * std::sin(kTwoPi * days / 7.7 + front_phase_[1]) + pressure_offset_ + pressure_noise_.value;
  double water = water_ + 0.15 * std::cos(kTwoPi * (hour - 16) / 24);
  double waves = wave_scale_ * (1 + 0.3 * std::cos(kTwoPi * day_of_year / kDaysPerYear)) * std::exp(wave_log_.value);

  double dx = drift_x_.value, dy = drift_y_.value;
  double radius = std::hypot(dx, dy);
  if (radius > kWatchCircleMeters) {
    dx *= kWatchCircleMeters / radius;
    dy *= kWatchCircleMeters / radius;
  }
  double lat = anchor_lat_ + dy / kMetersPerDegree;
  double lon = anchor_lon_ + dx / (kMetersPerDegree * std::cos(anchor_lat_ * std::numbers::pi / 180));

  // Faults draw from their own stream, so turning them on leaves the physics unchanged.
  if (fault_left_ == 0) fault_ = Fault::kNone;
  if (fault_ == Fault::kNone && fault_probability_ > 0 && fault_random_.Uniform() < fault_probability_) {
    switch (fault_random_.Next() % 3) {
      case 0:
        fault_ = Fault::kStuck;
        fault_left_ = 20 + static_cast<int>(fault_random_.Next() % 101);
        stuck_temperature_ = started_once_ ? last_temperature_ : RoundTo(temperature, 2);
        break;
      case 1:
        fault_ = Fault::kSpike;
        fault_left_ = 1;
        break;
      default:
        fault_ = Fault::kMissing;
        fault_left_ = 10 + static_cast<int>(fault_random_.Next() % 51);
        break;
    }
  }

  double temperature_out = RoundTo(temperature, 2);
  const char* status = "ok";
  switch (fault_) {
    case Fault::kNone: break;
    case Fault::kStuck:
      temperature_out = stuck_temperature_;
      status = "stuck";
      break;
    case Fault::kSpike:
      temperature_out = RoundTo(temperature + kSpikeDegrees, 2);
      status = "spike";
      break;
    case Fault::kMissing: status = "missing"; break;
  }
  if (fault_ == Fault::kNone) last_temperature_ = temperature_out;
  started_once_ = true;
  if (fault_left_ > 0) --fault_left_;

  out->Clear();
  out->time_micros = time_micros;
  out->sensor_id = sensor_id_;
  out->numbers.push_back({"temperature", temperature_out});
  if (fault_ != Fault::kMissing) out->numbers.push_back({"humidity", RoundTo(humidity, 2)});
  out->numbers.push_back({"pressure", RoundTo(pressure, 2)});
  out->numbers.push_back({"water_temperature", RoundTo(water, 2)});
  out->numbers.push_back({"wave_height", RoundTo(waves, 2)});
  out->texts.push_back({"status", status});
  out->location = Location{RoundTo(lat, 6), RoundTo(lon, 6)};
}

}  // namespace mare::feeds
