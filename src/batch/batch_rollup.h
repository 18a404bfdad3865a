// What a recomputed rollup becomes on the stream's paths: the rollups topic's key and JSON
// (docs/formats/rollups.md, with "source":"batch" and "final":true), and the MariaDB sink's
// RollupMessage (its upsert writes the rollup tables).
#pragma once

#include <string>

#include "batch/recompute.h"
#include "processors/rollup/window.h"
#include "sinks/rollup_message.h"

namespace mare::batch {

// "<sensor_id>/<field>/<resolution>/<window_start_us>", as the stream's.
std::string RollupKey(const BatchRollup& rollup, const rollup::Resolution& resolution);
// Appends the rollups topic's JSON value, the stream's fields in the stream's order, then
// "source":"batch". The revision is the count, as the stream's; final is true.
void AppendRollupJson(const BatchRollup& rollup, const rollup::Resolution& resolution, std::string* out);
sinks::RollupMessage ToSinkMessage(const BatchRollup& rollup, const rollup::Resolution& resolution);

}  // namespace mare::batch
