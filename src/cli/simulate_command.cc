// mare simulate: readings from simulated buoys off Banyuls-sur-Mer (see docs/feeds.md).
#include <fmt/format.h>

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>

#include "cli/commands.h"
#include "cli/feed_flags.h"
#include "common/time.h"
#include "feeds/feed.h"
#include "reading/timestamp.h"
#include "feeds/simulate.h"

namespace mare::cli {

namespace {

struct SimulateFlags {
  feeds::SimulateConfig config;
  std::string start;
  uint64_t count = 0;
  std::string duration;
  bool no_faults = false;
};

int RunSimulateCommand(const SimulateFlags& flags, bool has_count) {
  feeds::SimulateConfig config = flags.config;
  if (!flags.start.empty()) {
    Result<int64_t> start = mare::ParseTimestampLoose(flags.start);
    if (!start) {
      fmt::print(stderr, "simulate: --start: {}\n", start.status().message());
      return 2;
    }
    config.start_micros = *start;
  }
  if (has_count) config.count = flags.count;
  if (!flags.duration.empty()) {
    Result<int64_t> duration = ParseDurationMicros(flags.duration);
    if (!duration) {
      fmt::print(stderr, "simulate: --duration: {}\n", duration.status().message());
      return 2;
    }
    config.duration_micros = *duration;
  }
  if (flags.no_faults) config.fault_probability = 0;
  Status valid = feeds::ValidateSimulateConfig(config);
  if (!valid.ok()) {
    fmt::print(stderr, "simulate: {}\n", valid.message());
    return 2;
  }
  feeds::InstallStopHandlers();
  Result<feeds::FeedOutcome> outcome = feeds::RunSimulate(config, feeds::StopRequested());
  if (!outcome) {
    fmt::print(stderr, "simulate: {}\n", outcome.status().message());
    return 1;
  }
  fmt::print(stderr, "{}\n", outcome->summary);
  return outcome->send_errors == 0 ? 0 : 1;
}

}  // namespace

void AddSimulateCommand(CLI::App& app, int* exit_code) {
  auto* cmd = app.add_subcommand("simulate", "Send readings from simulated buoys off Banyuls-sur-Mer");
  auto flags = std::make_shared<SimulateFlags>();
  feeds::SimulateConfig& c = flags->config;
  AddFeedTargetFlags(cmd, &c.targets, &c.sender);
  cmd->add_option("--sensors", c.sensors, "Number of buoys; sensor ids are 1..N")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  cmd->add_option("--rate", c.rate, "Readings per second per sensor (fractions allowed, e.g. 0.1)")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  cmd->add_option("--seed", c.seed, "Random seed: the same seed, start and options give the same readings")
      ->capture_default_str();
  cmd->add_option("--start", flags->start,
                  "Simulated time of the first reading, UTC: \"2024-01-21 10:00:00\" or 2024-01-21T10:00:00Z "
                  "(default: now; with --flat-out, now minus the span of readings to send)");
  auto* count = cmd->add_option("--count", flags->count, "Readings per sensor, then stop (default: unlimited)");
  cmd->add_option("--duration", flags->duration, "Stop after this much wall time, e.g. 60s, 5m, 1h");
  cmd->add_flag("--flat-out", c.flat_out,
                "No pacing: send as fast as the targets take readings (load tests; UDP uses sendmmsg)");
  cmd->add_option("--max-rate", c.max_rate, "With --flat-out: cap on total readings per second (0 = no cap)")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--batch", c.batch,
                  "Readings per UDP datagram / per HTTP POST / per write (default: 1 per datagram, each line as "
                  "it comes on tcp/unix/file (1000 per write with --flat-out), one tick's readings per POST)");
  cmd->add_option("--faults", c.fault_probability,
                  "Probability per reading that a fault (stuck, spike, missing) starts; 0 disables")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 1.0));
  cmd->add_flag("--no-faults", flags->no_faults, "Disable faults (same as --faults 0)");
  cmd->callback([flags, count, exit_code] { *exit_code = RunSimulateCommand(*flags, count->count() > 0); });
}

}  // namespace mare::cli
