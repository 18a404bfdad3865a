// Which partition of a topic a sensor's records go to: always the same one for a sensor, so that
// its readings stay in order, and by default the one any other Kafka producer keyed by the sensor
// would choose (the Java client's default partitioner, librdkafka's murmur2_random).
//
//   int32_t p = log::PartitionFor(log->TopicPartitioner("raw"), sensor_id, partitions);
#pragma once

#include <cstdint>
#include <string_view>

namespace mare::log {

enum class Partitioner : int32_t {
  kModulo = 0,   // sensor_id mod partitions: embedded topics created before mare used murmur2
  kMurmur2 = 1,  // murmur2 of the key (the sensor id in decimal), as every Kafka producer does
};

// Kafka's murmur2 (org.apache.kafka.common.utils.Utils.murmur2: seed 0x9747b28c), as the signed
// 32-bit value the Java client computes.
int32_t Murmur2(std::string_view key);

// The partition Kafka's producers give a record with this key: (murmur2 & 0x7fffffff) % partitions.
int32_t KeyPartition(std::string_view key, int32_t partitions);

// The partition of a sensor's records under the topic's partitioner; the key is its id in decimal.
int32_t PartitionFor(Partitioner partitioner, uint64_t sensor_id, int32_t partitions);

}  // namespace mare::log
