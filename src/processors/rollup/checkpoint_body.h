// CheckpointBody: the RollupState as bytes and back (offsets, watermarks, every window's exact
// aggregates and flags), the body of a rollup checkpoint (docs/formats/rollup-checkpoint.md).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/status.h"
#include "processors/rollup/rollup_state.h"

namespace mare::rollup {

// RollupState's Encode, Decode, EncodePartition and DecodePartition call it; it reads and
// restores the state's internals, as its friend.
class CheckpointBody {
 public:
  // The whole state (only < 0), or one partition's share of it, the other partitions' entries
  // empty.
  static void Encode(const RollupState& state, int32_t only, std::string* out);
  // Replaces the state (only < 0), or merges one partition's share into it, which must hold
  // nothing of that partition. Fails if made with other resolutions, lateness or partitions.
  static Status Decode(std::string_view bytes, int32_t only, uint32_t version, RollupState& state);
};

}  // namespace mare::rollup
