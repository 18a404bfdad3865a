// Reading the rollup tables back (rollup_minute, rollup_hour, ...): the rows of one resolution
// over a period, exactly as stored (doubles through the binary protocol, bit for bit), for
// `mare batch reconcile` to compare with a recompute.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"
#include "sinks/mariadb/connection.h"
#include "sinks/rollup_message.h"

namespace mare::sinks {

// Appends to *out the rows of `resolution`'s table with window_start in [from_us, to_us), of
// these sensors (empty: all), as RollupMessages (revision, source as stored; final false). A
// table that does not exist holds no rows.
Status ReadRollupRows(Connection* conn, const std::string& resolution, int64_t from_us, int64_t to_us,
                      const std::vector<uint32_t>& sensors, std::vector<RollupMessage>* out);

}  // namespace mare::sinks
