#include "log/partitioner.h"

#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

namespace mare::log {
namespace {

// Published values of the Java client's Utils.murmur2: Kafka's own UtilsTest.testMurmur2, and
// decimal keys as mare's sensors give them (quoted by Akka's Kafka sharding tests).
const std::vector<std::pair<std::string, int32_t>> kJavaMurmur2 = {
    {"21", -973932308},
    {"foobar", -790332482},
    {"a-little-bit-long-string", -985981536},
    {"a-little-bit-longer-string", -1486304829},
    {"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971},
    {"abc", 479470107},
    {"1", -1993445489},
    {"12", 126087238},
    {"123", -267702483},
    {"1234", -1614185708},
    {"12345", -1188365604},
};

TEST(Partitioner, Murmur2MatchesTheJavaClient) {
  for (const auto& [key, hash] : kJavaMurmur2) EXPECT_EQ(Murmur2(key), hash) << key;
}

TEST(Partitioner, KeyPartitionClearsTheSignBitAsJavaToPositive) {
  // "1" hashes negative: toPositive gives 154038159, so partition 3 of 4; the absolute value
  // (1993445489) would give 1, which is not what Kafka's producers do.
  EXPECT_EQ(KeyPartition("1", 4), 3);
  EXPECT_EQ(KeyPartition("1", 1), 0);
  for (const auto& [key, hash] : kJavaMurmur2) {
    uint32_t positive = static_cast<uint32_t>(hash) & 0x7fffffffU;
    for (int32_t n : {1, 2, 3, 4, 7, 12, 100}) {
      EXPECT_EQ(KeyPartition(key, n), static_cast<int32_t>(positive % static_cast<uint32_t>(n))) << key << " of " << n;
    }
  }
}

TEST(Partitioner, SensorIdIsHashedAsItsDecimalKey) {
  for (uint64_t sensor : {0ULL, 1ULL, 12ULL, 123ULL, 1234ULL, 12345ULL, 4294967295ULL, 18446744073709551615ULL}) {
    std::string key = std::to_string(sensor);
    for (int32_t n : {1, 4, 7}) EXPECT_EQ(PartitionFor(Partitioner::kMurmur2, sensor, n), KeyPartition(key, n)) << sensor;
  }
  EXPECT_EQ(PartitionFor(Partitioner::kMurmur2, 1, 4), 3);
}

TEST(Partitioner, ModuloKeepsOldTopicsWhereTheyWere) {
  EXPECT_EQ(PartitionFor(Partitioner::kModulo, 1, 4), 1);
  EXPECT_EQ(PartitionFor(Partitioner::kModulo, 21, 4), 1);
  EXPECT_EQ(PartitionFor(Partitioner::kModulo, 18446744073709551615ULL, 7), static_cast<int32_t>(18446744073709551615ULL % 7));
}

}  // namespace
}  // namespace mare::log
