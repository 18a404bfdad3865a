#include "log/partitioner.h"

#include <charconv>

namespace mare::log {

int32_t Murmur2(std::string_view key) {
  constexpr uint32_t m = 0x5bd1e995;
  constexpr int r = 24;
  const auto* data = reinterpret_cast<const unsigned char*>(key.data());
  const size_t length = key.size();
  // The Java client hashes an int length: keys past 2 GiB do not occur.
  uint32_t h = 0x9747b28cU ^ static_cast<uint32_t>(length);
  const size_t whole = length & ~size_t{3};
  for (size_t i = 0; i < whole; i += 4) {
    uint32_t k = static_cast<uint32_t>(data[i]) | static_cast<uint32_t>(data[i + 1]) << 8 |
                 static_cast<uint32_t>(data[i + 2]) << 16 | static_cast<uint32_t>(data[i + 3]) << 24;
    k *= m;
    k ^= k >> r;
    k *= m;
    h *= m;
    h ^= k;
  }
  switch (length & 3) {
    case 3:
      h ^= static_cast<uint32_t>(data[whole + 2]) << 16;
      [[fallthrough]];
    case 2:
      h ^= static_cast<uint32_t>(data[whole + 1]) << 8;
      [[fallthrough]];
    case 1:
      h ^= static_cast<uint32_t>(data[whole]);
      h *= m;
  }
  h ^= h >> 13;
  h *= m;
  h ^= h >> 15;
  return static_cast<int32_t>(h);
}

int32_t KeyPartition(std::string_view key, int32_t partitions) {
  // Java's Utils.toPositive: the sign bit cleared (not the absolute value).
  uint32_t positive = static_cast<uint32_t>(Murmur2(key)) & 0x7fffffffU;
  return static_cast<int32_t>(positive % static_cast<uint32_t>(partitions));
}

int32_t PartitionFor(Partitioner partitioner, uint64_t sensor_id, int32_t partitions) {
  if (partitioner == Partitioner::kModulo) return static_cast<int32_t>(sensor_id % static_cast<uint64_t>(partitions));
  char key[20];
  auto end = std::to_chars(key, key + sizeof key, sensor_id).ptr;
  return KeyPartition(std::string_view(key, static_cast<size_t>(end - key)), partitions);
}

}  // namespace mare::log
