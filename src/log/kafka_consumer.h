// A Kafka consumer of every partition of one topic, as log::Consumer: assigned them all (no group
// rebalancing: mare's processors keep their own positions and Seek), committing with the group's
// coordinator, where Kafka's own tools see the offsets.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "log/kafka_options.h"
#include "log/log.h"

namespace mare::log::kafka {

// Starts at the group's committed offsets, or the oldest retained. topic: mare's name (without
// the prefix) of a topic with `partitions` partitions.
Result<std::unique_ptr<Consumer>> Subscribe(const KafkaLogOptions& options, const std::string& group,
                                            std::string_view topic, int32_t partitions);

}  // namespace mare::log::kafka
