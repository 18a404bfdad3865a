// `mare replay FILE`: an archive's rows sent as readings, at archive pace times --speed (or
// as fast as the targets take them), or in feed mode: collected and sent as one batch every
// --feed-interval of wall time, the way the observatory's stations upload.
#pragma once

#include <atomic>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"
#include "archive/archive.h"
#include "feeds/feed.h"

namespace mare::feeds {

struct ReplayConfig {
  std::string path;
  std::vector<std::string> targets{"udp://127.0.0.1:20001"};
  std::string format;                      // "ndbc", "csv", or empty: detect
  std::optional<uint64_t> sensor_id;       // default: station number in the file name, else 1
  std::optional<Location> location;
  std::vector<double> missing_codes;       // CSV only
  double speed = 0;                        // archive seconds per wall second; 0 = no pacing
  std::optional<int64_t> feed_interval_micros;
  size_t batch = 0;                        // 0 = the transport's default (see feed.h)
  SenderOptions sender;                    // --token, --cacert
};

// Parses "42.4886,3.1858" (lat,lon).
Result<Location> ParseLocation(std::string_view text);
// Parses "99.0,999,9999".
Result<std::vector<double>> ParseMissingCodes(std::string_view text);

// Runs to the end of the file or `stop`. Skipped rows are reported on stderr with their line
// number and counted. An error Status means nothing was sent (bad options, unreadable file,
// a target that cannot be reached), or a target refused the feed for good (Feed::refusal).
Result<FeedOutcome> RunReplay(const ReplayConfig& config, const std::atomic<bool>& stop);

}  // namespace mare::feeds
