// A transactional member of a Kafka consumer group, as log::GroupMember: it shares a topic's
// partitions with the group's other members and commits what it produces with its input offsets.
#pragma once

#include <cstdint>
#include <memory>

#include "log/kafka_options.h"
#include "log/log.h"

namespace mare::log::kafka {

// Joins the group of options.group on options.topic (which has `partitions` partitions).
Result<std::unique_ptr<GroupMember>> JoinGroup(const KafkaLogOptions& options, const GroupOptions& group,
                                               int32_t partitions);

}  // namespace mare::log::kafka
