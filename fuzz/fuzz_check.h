// What fuzz/'s targets share: how an invariant that does not hold ends the run (a finding), and
// how a checkpoint's header is made to fit the fuzzed body, so that the body itself is fuzzed.
#pragma once

#include <zlib.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

namespace mare::fuzz {

inline void Check(bool ok, const char* what) {
  if (!ok) {
    fprintf(stderr, "invariant broken: %s\n", what);
    abort();
  }
}

// The rollup and forecast checkpoints' header (docs/formats/rollup-checkpoint.md): magic and
// version, then the body's length at byte 12 and its crc32 at byte 20, 24 bytes in all. A
// mutation cannot keep those right: they are set from the body.
constexpr size_t kCheckpointHeaderSize = 24;
inline void SealCheckpoint(std::string* bytes) {
  uint64_t length = bytes->size() - kCheckpointHeaderSize;
  std::memcpy(bytes->data() + 12, &length, 8);
  uint32_t crc = static_cast<uint32_t>(::crc32(::crc32(0L, Z_NULL, 0),
                                               reinterpret_cast<const Bytef*>(bytes->data() + kCheckpointHeaderSize),
                                               static_cast<uInt>(length)));
  std::memcpy(bytes->data() + 20, &crc, 4);
}

}  // namespace mare::fuzz
