// mare replay FILE: an NDBC or CSV archive sent as readings (see docs/feeds.md).
#include <fmt/format.h>

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>

#include "cli/commands.h"
#include "cli/feed_flags.h"
#include "common/time.h"
#include "feeds/feed.h"
#include "feeds/replay.h"

namespace mare::cli {

namespace {

struct ReplayFlags {
  feeds::ReplayConfig config;
  uint64_t sensor_id = 0;
  std::string location;
  std::string missing;
  std::string feed_interval;
};

int RunReplayCommand(const ReplayFlags& flags, bool has_sensor_id) {
  feeds::ReplayConfig config = flags.config;
  if (has_sensor_id) config.sensor_id = flags.sensor_id;
  if (!flags.location.empty()) {
    Result<feeds::Location> location = feeds::ParseLocation(flags.location);
    if (!location) {
      fmt::print(stderr, "replay: --location: {}\n", location.status().message());
      return 2;
    }
    config.location = *location;
  }
  if (!flags.missing.empty()) {
    Result<std::vector<double>> codes = feeds::ParseMissingCodes(flags.missing);
    if (!codes) {
      fmt::print(stderr, "replay: --missing: {}\n", codes.status().message());
      return 2;
    }
    config.missing_codes = *codes;
  }
  if (!flags.feed_interval.empty()) {
    Result<int64_t> interval = ParseDurationMicros(flags.feed_interval);
    if (!interval || *interval <= 0) {
      fmt::print(stderr, "replay: --feed-interval: {}\n",
                 interval ? std::string("must be positive") : interval.status().message());
      return 2;
    }
    config.feed_interval_micros = *interval;
  }
  feeds::InstallStopHandlers();
  Result<feeds::FeedOutcome> outcome = feeds::RunReplay(config, feeds::StopRequested());
  if (!outcome) {
    fmt::print(stderr, "replay: {}\n", outcome.status().message());
    return 1;
  }
  fmt::print(stderr, "{}\n", outcome->summary);
  return outcome->send_errors == 0 && outcome->archive_status.ok() ? 0 : 1;
}

}  // namespace

void AddReplayCommand(CLI::App& app, int* exit_code) {
  auto* cmd = app.add_subcommand("replay", "Send an archive (NDBC standard meteorological or CSV) as readings");
  auto flags = std::make_shared<ReplayFlags>();
  feeds::ReplayConfig& c = flags->config;
  cmd->add_option("file", c.path, "The archive to replay, e.g. ndbc_44005_2012.txt or readings.csv")
      ->required()
      ->check(CLI::ExistingFile);
  AddFeedTargetFlags(cmd, &c.targets, &c.sender);
  cmd->add_option("--format", c.format, "Archive format: ndbc, csv or ndjson (default: detected from the first line)")
      ->check(CLI::IsMember({"ndbc", "csv", "ndjson"}));
  auto* sensor = cmd->add_option(
      "--sensor-id", flags->sensor_id,
      "sensor_id of the readings (default: the station number in a name like ndbc_44005_2012.txt, else 1; "
      "a CSV sensor_id column wins)");
  cmd->add_option("--location", flags->location,
                  "Station position as lat,lon, e.g. 43.20,-69.13 (default: no location; CSV lat/lon columns win)");
  cmd->add_option("--missing", flags->missing,
                  "CSV: extra numeric codes meaning 'no value', comma-separated, e.g. 99.0,999 (empty, NA, NaN "
                  "and null always are)");
  cmd->add_option("--speed", c.speed,
                  "Time acceleration: archive seconds per wall second, e.g. 3600 = one hour per second "
                  "(0 = as fast as possible)")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--feed-interval", flags->feed_interval,
                  "Feed mode: collect readings and send them as one batch every interval of wall time, e.g. 30s");
  cmd->add_option("--batch", c.batch,
                  "Readings per UDP datagram / per HTTP POST / per write (default: 1 per datagram and POST, "
                  "each line as it comes on tcp/unix/file; 1000 per write with --speed 0)");
  cmd->callback([flags, sensor, exit_code] { *exit_code = RunReplayCommand(*flags, sensor->count() > 0); });
}

}  // namespace mare::cli
