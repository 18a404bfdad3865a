#include "feeds/replay.h"

#include <fmt/format.h>

#include <cmath>
#include <cstdio>
#include <memory>

#include "common/time.h"
#include "archive/open_archive.h"
#include "feeds/feed.h"

namespace mare::feeds {

namespace {

constexpr int64_t kReplayMinSleepMicros = 1000;
// Skipped rows are listed one by one up to this many; the rest only counted.
constexpr uint64_t kMaxSkipReports = 20;

std::vector<std::string_view> SplitComma(std::string_view text) {
  std::vector<std::string_view> parts;
  size_t start = 0;
  for (;;) {
    size_t comma = text.find(',', start);
    std::string_view part = text.substr(start, comma == std::string_view::npos ? std::string_view::npos : comma - start);
    while (!part.empty() && part.front() == ' ') part.remove_prefix(1);
    while (!part.empty() && part.back() == ' ') part.remove_suffix(1);
    parts.push_back(part);
    if (comma == std::string_view::npos) return parts;
    start = comma + 1;
  }
}

}  // namespace

Result<Location> ParseLocation(std::string_view text) {
  std::vector<std::string_view> parts = SplitComma(text);
  double lat = 0, lon = 0;
  if (parts.size() != 2 || !archive::ParseNumber(parts[0], &lat) || !archive::ParseNumber(parts[1], &lon) || lat < -90 || lat > 90 ||
      lon < -180 || lon > 180) {
    return Status::InvalidArgument(fmt::format("invalid location '{}': expected lat,lon such as 42.4886,3.1858", text));
  }
  return Location{lat, lon};
}

Result<std::vector<double>> ParseMissingCodes(std::string_view text) {
  std::vector<double> codes;
  for (std::string_view part : SplitComma(text)) {
    double v = 0;
    if (!archive::ParseNumber(part, &v)) {
      return Status::InvalidArgument(fmt::format("invalid missing-value code '{}' in '{}'", part, text));
    }
    codes.push_back(v);
  }
  return codes;
}

Result<FeedOutcome> RunReplay(const ReplayConfig& c, const std::atomic<bool>& stop) {
  if (c.speed < 0 || !std::isfinite(c.speed)) return Status::InvalidArgument("--speed must be 0 or positive");
  if (c.feed_interval_micros && *c.feed_interval_micros <= 0) {
    return Status::InvalidArgument("--feed-interval must be positive");
  }
  if (c.sensor_id && *c.sensor_id > kMaxSensorId) {
    return Status::InvalidArgument(fmt::format("--sensor-id must be at most {}", kMaxSensorId));
  }
  archive::ArchiveOptions options;
  options.format = c.format;
  options.sensor_id = c.sensor_id ? *c.sensor_id : archive::StationFromFileName(c.path).value_or(1);
  options.location = c.location;
  options.missing_codes = c.missing_codes;
  Result<std::unique_ptr<archive::ArchiveReader>> opened_reader = archive::OpenArchive(c.path, options);
  if (!opened_reader) return opened_reader.status();
  archive::ArchiveReader& reader = **opened_reader;

  BatchPolicy policy;
  policy.batch = c.batch;
  policy.feed_mode = c.feed_interval_micros.has_value();
  policy.flat_out = c.speed == 0 && !policy.feed_mode;
  Result<std::unique_ptr<Feed>> opened_feed = Feed::Open("replay", c.targets, policy, c.sender);
  if (!opened_feed) return opened_feed.status();
  Feed& feed = **opened_feed;

  const bool feed_mode = policy.feed_mode;
  const int64_t wall_start = MonotonicMicros();
  int64_t next_batch = feed_mode ? wall_start + *c.feed_interval_micros : INT64_MAX;
  auto send_batch_if_due = [&] {
    int64_t now = MonotonicMicros();
    if (now < next_batch) return;
    feed.Flush();
    while (next_batch <= now) next_batch += *c.feed_interval_micros;
  };

  Reading reading;
  std::optional<int64_t> first_time;
  uint64_t skipped = 0;
  while (!stop.load(std::memory_order_relaxed) && feed.refusal().ok()) {
    archive::ArchiveReader::Row row = reader.Next(&reading);
    if (row == archive::ArchiveReader::Row::kEnd) break;
    if (row == archive::ArchiveReader::Row::kSkipped) {
      if (++skipped <= kMaxSkipReports) {
        fmt::print(stderr, "replay: {}:{}: {}; row skipped\n", c.path, reader.line(), reader.why());
      }
      continue;
    }
    if (!first_time) first_time = reading.time_micros;
    if (c.speed > 0) {
      // Archive time since the first row, compressed by --speed; rows out of order go at once.
      double offset = static_cast<double>(reading.time_micros - *first_time) / c.speed;
      int64_t due = wall_start + static_cast<int64_t>(offset);
      while (MonotonicMicros() + kReplayMinSleepMicros <= due) {
        if (!feed_mode) feed.Flush();
        if (!SleepUntil(std::min(due, next_batch), stop)) break;
        if (feed_mode) send_batch_if_due();
      }
      if (stop.load(std::memory_order_relaxed)) break;
    }
    feed.Add(reading);
    if (feed_mode) {
      send_batch_if_due();
    } else {
      feed.EndTick();
    }
    feed.MaybeReportProgress();
  }
  if (feed.refusal().ok()) feed.Flush();
  if (!feed.refusal().ok()) return feed.refusal();
  if (skipped > kMaxSkipReports) {
    fmt::print(stderr, "replay: {} more rows skipped (not listed)\n", skipped - kMaxSkipReports);
  }
  if (!reader.status().ok()) fmt::print(stderr, "replay: {}\n", reader.status().ToString());

  FeedOutcome outcome;
  outcome.readings = feed.readings();
  outcome.send_errors = feed.send_errors();
  outcome.skipped_rows = skipped;
  outcome.summary = feed.Summary();
  if (skipped > 0) outcome.summary += fmt::format(", {} rows skipped", skipped);
  outcome.archive_status = reader.status();
  return outcome;
}

}  // namespace mare::feeds
