// The rollup checkpoint: the RollupState (input offsets, watermarks, every window's exact
// aggregates and what is still to emit) in one file, replaced atomically (temp file, fsync,
// rename, fsync directory), so that a crash leaves the previous checkpoint or the new one.
// Format: docs/formats/rollup-checkpoint.md.
#pragma once

#include <string>

#include "common/status.h"
#include "processors/rollup/rollup_state.h"

namespace mare::rollup {

// Writes the state to path. *scratch is reused between calls to avoid re-allocating.
Status WriteCheckpoint(const std::string& path, const RollupState& state, std::string* scratch);

// Loads path into *state. NotFound if there is no checkpoint; Corruption if it is damaged;
// InvalidArgument if it was made with other resolutions, lateness or partition count.
Status ReadCheckpoint(const std::string& path, RollupState* state);

}  // namespace mare::rollup
