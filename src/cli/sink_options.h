// The MariaDB sink's options from the config ([sink.mariadb]), shared by `mare run` and
// `mare sink mariadb`. The password falls back to $MARE_MARIADB_PASSWORD; the readings table's
// typed columns and parse limit come from [ingest] (numeric_fields, max_reading_bytes).
#pragma once

#include "config/config.h"
#include "sinks/mariadb/mariadb_sink.h"

namespace mare::cli {

sinks::MariaDbSinkOptions MariaDbOptions(const Config& config);

}  // namespace mare::cli
