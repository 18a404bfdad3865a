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

// The checkpoint's bytes (header and body) for the whole state, or for one partition's share
// of it (partition >= 0), as a processor of a Kafka group keeps it in topic rollup-state; and
// back, into *state (one partition: merged into it). `where` names the source in errors.
void EncodeCheckpoint(const RollupState& state, int32_t partition, std::string* out);
Status DecodeCheckpoint(std::string_view bytes, int32_t partition, RollupState* state, const std::string& where);

// Loads path into *state. NotFound if there is no checkpoint; Corruption if it is damaged;
// InvalidArgument if it was made with other resolutions, lateness or partition count.
Status ReadCheckpoint(const std::string& path, RollupState* state);

}  // namespace mare::rollup
