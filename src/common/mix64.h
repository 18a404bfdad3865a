// Mix64: splitmix64's finaliser, a cheap bijective scramble of 64 bits, for the hashes that
// the consumers' duplicate filter and the simulator's random numbers build on.
#pragma once

#include <cstdint>

namespace mare {

inline uint64_t Mix64(uint64_t x) {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

}  // namespace mare
