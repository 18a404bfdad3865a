// The batch layer's log side: the stream's rollups as the rollups topic holds them (the newest
// revision of each window), and how far back the raw topic still reaches, for reconcile when
// no MariaDB is configured and to judge the causes of differences.
#pragma once

#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "batch/reconcile.h"
#include "log/log.h"

namespace mare::batch {

// Reads the whole topic. Into *out (when given) the newest revision of each window with
// window_start in [from, to) of these sensors (empty: all) and resolutions; into *keys (when
// given) every such key.
Status ReadTopicRollups(log::Log& log, const std::string& topic, int64_t from_us, int64_t to_us,
                        const std::vector<uint32_t>& sensors, const std::vector<std::string>& resolutions,
                        RollupsByKey* out, std::set<std::string>* keys);

// The event time of the oldest record still in `topic` when its retention has dropped records
// (some partition starts after offset 0); nullopt when nothing was dropped.
Result<std::optional<int64_t>> RetainedSince(log::Log& log, const std::string& topic);

}  // namespace mare::batch
