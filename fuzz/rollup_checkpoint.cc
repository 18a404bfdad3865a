// Fuzz target: the rollup checkpoint decoder (whole state and one partition's share), then the
// restored state encoded again, fed readings and emitted, as a restarted processor would.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "processors/rollup/checkpoint.h"
#include "processors/rollup/rollup_state.h"
#include "fuzz_check.h"

namespace rollup = mare::rollup;

using mare::fuzz::Check;

namespace {

// What a processor does next with a restored state: readings, the watermark, emission.
void Continue(rollup::RollupState& state) {
  int64_t t = state.watermark_us();
  if (t < 0 || t > 4'000'000'000'000'000) t = 1'705'831'200'000'000;
  for (int32_t p = 0; p < state.options().partitions; ++p) {
    mare::NumberField f[2] = {{"temperature", 20.5}, {"humidity", 60.0}};
    int64_t offset = state.next_offset(p);
    if (offset < 0 || offset > (int64_t{1} << 62)) continue;
    state.Add(p, offset, t + 1'000'000 * (p + 1), static_cast<uint32_t>(p + 1), f);
  }
  state.AdvanceWatermark();
  std::vector<rollup::RollupMessage> out;
  state.Emit(&out);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < mare::fuzz::kCheckpointHeaderSize) return 0;
  std::string bytes(reinterpret_cast<const char*>(data), size);
  mare::fuzz::SealCheckpoint(&bytes);

  rollup::RollupStateOptions options{.partitions = 4};  // the seeds' (mare run's default log.partitions)
  rollup::RollupState state(options);
  if (rollup::DecodeCheckpoint(bytes, -1, &state, "fuzz").ok()) {
    // What was restored encodes to bytes that restore the same state.
    std::string once, twice;
    rollup::EncodeCheckpoint(state, -1, &once);
    rollup::RollupState again(options);
    Check(rollup::DecodeCheckpoint(once, -1, &again, "fuzz").ok(), "a restored state's checkpoint restores");
    rollup::EncodeCheckpoint(again, -1, &twice);
    // (Sensors are encoded in hash-map order, so the bytes may differ in order, not in length.)
    Check(once.size() == twice.size(), "a checkpoint restores to a state of the same size");
    Check(again.held_windows() == state.held_windows() && again.open_windows() == state.open_windows() &&
              again.watermark_us() == state.watermark_us(),
          "the same windows and watermark");
    for (int32_t p = 0; p < options.partitions; ++p) Check(again.next_offset(p) == state.next_offset(p), "the same offsets");
    Continue(state);
  }
  // One partition's share, merged into an empty state as a Kafka group member does.
  rollup::RollupState share(options);
  int32_t partition = static_cast<int32_t>(size % 4);
  if (rollup::DecodeCheckpoint(bytes, partition, &share, "fuzz").ok()) Continue(share);
  return 0;
}
